"""DataForge seeds: loaders, cleaning, licences, and the three deduplication stages (exact, MinHash with
datasketch, semantic with the offline MiniLM model), with the semantic threshold's calibration."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datagen.seeds import (CleanConfig, DedupConfig, SeedReport, SeedSource, calibrate, clean, clean_text, dedup, embed,
                           load_seeds, near_duplicates, prepare_seeds)
from datagen.state import Seed

PAIRS = [json.loads(line) for line in (Path(__file__).parent / "data" / "semantic_pairs.jsonl").read_text().splitlines()]
PASSAGE = ("The Romans built more than 80,000 kilometres of paved roads. A typical road had several layers: a "
           "foundation of large stones, a middle layer of gravel and lime mortar, and a surface of fitted stone slabs.")


def test_loaders_carry_ids_kinds_and_licences(tmp_path):
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(json.dumps({"id": "r1", "body": PASSAGE}) + "\n" + json.dumps({"body": "Cooking", "type": "domain"}) + "\n")
    pq.write_table(pa.table({"text": [PASSAGE + " Parquet."]}), tmp_path / "b.parquet")
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "sub" / "one.md").write_text(PASSAGE + " Markdown.")
    (tmp_path / "docs" / "skip.bin").write_text("x")
    seeds = load_seeds([
        SeedSource(path=str(jsonl), text_field="body", kind_field="type", license="CC-BY-SA-4.0"),
        SeedSource(path=str(tmp_path / "b.parquet"), license="CC0-1.0"),
        SeedSource(path=str(tmp_path / "docs"), license="MIT"),
        SeedSource(path="builtin", license="CC0-1.0", limit=2)])
    assert [(s.seed_id, s.kind, s.license) for s in seeds[:2]] == [("r1", "passage", "CC-BY-SA-4.0"),
                                                                   (seeds[1].seed_id, "domain", "CC-BY-SA-4.0")]
    assert len(seeds[1].seed_id) == 16 and seeds[2].license == "CC0-1.0"  # no id column: a hash of the text
    assert seeds[3].seed_id == "sub/one.md" and seeds[3].license == "MIT" and len(seeds) == 6
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "train.jsonl").write_text(json.dumps({"text": PASSAGE + " Datasets."}) + "\n")
    (tmp_path / "c.json").write_text(json.dumps([{"text": PASSAGE + " Array."}]))
    more = load_seeds([SeedSource(path=str(tmp_path / "hub"), format="datasets", license="CC-BY-4.0"),
                       SeedSource(path=str(tmp_path / "c.json"))])
    assert [s.text[-9:] for s in more] == ["Datasets.", "s. Array."] and more[0].license == "CC-BY-4.0"
    with pytest.raises(ValueError, match=r"no field 'content'"):
        load_seeds([SeedSource(path=str(jsonl), text_field="content")])
    with pytest.raises(ValueError, match=r"row 1: type must be 'passage' or 'domain', got 'topic'"):
        jsonl.write_text(json.dumps({"text": PASSAGE}) + "\n" + json.dumps({"text": "x", "type": "topic"}) + "\n")
        load_seeds([SeedSource(path=str(jsonl), kind_field="type")])
    with pytest.raises(ValueError, match="seed ids must be unique"):
        load_seeds([SeedSource(path="builtin"), SeedSource(path="builtin")])


def test_cleaning():
    assert clean_text("  Hello\x00  world\r\n\n\n\nnext \t line  ", 1000) == ("Hello world\n\nnext line", False)
    long = ". ".join(f"Sentence number {i} is here" for i in range(100))
    cut, was_cut = clean_text(long, 500)
    assert was_cut and len(cut) <= 500 and cut.endswith(".")
    report = SeedReport(loaded=3)
    kept = clean([Seed(seed_id="a", text="too short"), Seed(seed_id="b", kind="domain", text="Cooking"),
                  Seed(seed_id="c", text=PASSAGE)], CleanConfig(min_chars=80), report)
    assert [s.seed_id for s in kept] == ["b", "c"] and report.dropped["short"] == 1


def test_exact_and_near_duplicates_are_dropped_keeping_the_first():
    edited = PASSAGE.replace("more than", "over").replace("several", "three")  # a few words changed
    other = "Honeybees communicate the location of food through the waggle dance, a run that encodes direction."
    seeds = [Seed(seed_id="a", text=PASSAGE), Seed(seed_id="b", text=PASSAGE.upper() + "!"),
             Seed(seed_id="c", text=edited), Seed(seed_id="d", text=other)]
    report = SeedReport(loaded=4)
    kept = dedup(seeds, DedupConfig(semantic=False), report)
    assert [s.seed_id for s in kept] == ["a", "d"]
    assert report.dropped == {"short": 0, "exact": 1, "near": 1, "semantic": 0}
    assert ("exact", "a", "b") in report.examples and ("near", "a", "c") in report.examples
    assert near_duplicates([PASSAGE, other], 0.7) == {}


@pytest.fixture(scope="module")
def minilm():
    return embed  # the real offline model: loaded once for the module


def test_semantic_threshold_is_calibrated_on_labelled_pairs(minilm):
    rows = {round(r["threshold"], 3): r for r in calibrate(PAIRS, minilm)}
    default = DedupConfig().semantic_threshold
    assert rows[default]["precision"] == 1.0 and rows[default]["recall"] >= 0.9  # the choice documented in seeds.py
    assert max(r["f1"] for r in rows.values()) == 1.0  # the model does separate paraphrases from same-topic texts
    assert rows[0.95]["recall"] < 0.5  # far too strict a threshold misses most paraphrases


def test_semantic_dedup_drops_paraphrases_and_keeps_related_texts(minilm):
    positives = [p for p in PAIRS if p["duplicate"]][:6]
    negatives = [p for p in PAIRS if not p["duplicate"]][:6]
    seeds = [Seed(seed_id=f"p{i}{side}", text=p[side]) for i, p in enumerate(positives) for side in "ab"]
    seeds += [Seed(seed_id=f"n{i}b", text=p["b"]) for i, p in enumerate(negatives)]  # related to p*a, not copies
    report = SeedReport(loaded=len(seeds))
    kept = {s.seed_id for s in dedup(seeds, DedupConfig(exact=False, near=False), report, minilm)}
    dropped_paraphrases = {f"p{i}b" for i in range(6)} - kept
    assert len(dropped_paraphrases) >= 5 and {f"p{i}a" for i in range(6)} <= kept
    assert {f"n{i}b" for i in range(6)} <= kept and report.dropped["semantic"] == len(dropped_paraphrases)


def test_prepare_seeds_on_the_builtin_set(minilm):
    seeds, report = prepare_seeds([SeedSource(path="builtin", license="CC0-1.0")], CleanConfig(), DedupConfig())
    assert report.loaded == len(seeds) == 12 and {s.kind for s in seeds} == {"passage", "domain"}
    assert "12 loaded, 12 kept" in report.summary()
