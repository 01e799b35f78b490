"""Task sources: procedural determinism and split disjointness; Parquet/JSONL files through `datasets`."""

from __future__ import annotations

import json
import random

import pytest

from environments import make
from environments.tasks import (
    EVAL_PERCENT,
    DatasetTasks,
    ProceduralTasks,
    TaskSource,
    content_hash,
    split_of,
)
from environments.types import Task


@pytest.fixture(scope="module")
def arith_source() -> TaskSource:
    return make("arithmetic").tasks()


@pytest.fixture(scope="module")
def train_2000(arith_source) -> list[Task]:
    return list(arith_source.iter("train", limit=2000))


@pytest.fixture(scope="module")
def eval_all(arith_source) -> list[Task]:
    return list(arith_source.iter("eval"))


def _content(task: Task) -> tuple:
    return (json.dumps([m.model_dump() for m in task.prompt], sort_keys=True), json.dumps(task.verifier, sort_keys=True))


# -- hashing helpers --------------------------------------------------------------------------------


def test_content_hash_is_order_independent_and_content_sensitive():
    a = content_hash({"prompt": "x", "verifier": {"a": 1, "b": 2}})
    assert a == content_hash({"verifier": {"b": 2, "a": 1}, "prompt": "x"})
    assert a != content_hash({"prompt": "y", "verifier": {"a": 1, "b": 2}})
    assert len(a) == 64 and int(a, 16) >= 0


def test_split_of_threshold():
    assert split_of("00000000" + "f" * 56) == "eval"  # 0 % 100 = 0
    assert split_of(f"{EVAL_PERCENT - 1:08x}" + "0" * 56) == "eval"
    assert split_of(f"{EVAL_PERCENT:08x}" + "0" * 56) == "train"
    assert split_of(f"{99:08x}" + "0" * 56) == "train"
    assert split_of(f"{100:08x}" + "0" * 56) == "eval"


def test_split_of_share_is_roughly_eval_percent():
    digests = [content_hash({"i": i}) for i in range(5000)]
    share = sum(split_of(d) == "eval" for d in digests) / len(digests)
    assert abs(share - EVAL_PERCENT / 100) < 0.03


# -- procedural tasks -------------------------------------------------------------------------------


def test_same_index_same_task(arith_source):
    for split in ("train", "eval"):
        for i in (0, 1, 17, 499):
            assert arith_source.get(split, i) == arith_source.get(split, i)


def test_determinism_across_instances():
    a, b = make("arithmetic").tasks(), make("arithmetic").tasks()
    assert [a.get("train", i) for i in range(20)] == [b.get("train", i) for i in range(20)]
    assert [a.get("eval", i) for i in range(20)] == [b.get("eval", i) for i in range(20)]


def test_different_indices_mostly_differ(train_2000):
    assert len({t.task_id for t in train_2000[:200]}) > 190


def test_task_ids_are_content_hashes(train_2000, eval_all):
    for t in train_2000[:50] + eval_all[:50]:
        assert t.env == "arithmetic"
        fields = {"prompt": t.prompt[0].content, "verifier": t.verifier, "reasoning": t.reasoning}
        digest = content_hash(fields)
        assert t.task_id == f"arithmetic-{digest[:16]}"
        assert split_of(digest) == t.split


def test_train_and_eval_disjoint(train_2000, eval_all):
    assert len(train_2000) == 2000 and len(eval_all) == 500
    assert all(t.split == "train" for t in train_2000)
    assert all(t.split == "eval" for t in eval_all)
    train_ids, eval_ids = {t.task_id for t in train_2000}, {t.task_id for t in eval_all}
    assert not train_ids & eval_ids
    train_content, eval_content = {_content(t) for t in train_2000}, {_content(t) for t in eval_all}
    assert not train_content & eval_content
    train_prompts = {t.prompt[0].content for t in train_2000}
    assert not train_prompts & {t.prompt[0].content for t in eval_all}
    # and the sets are not trivially small (the check above would be vacuous otherwise)
    assert len(train_ids) > 1500 and len(eval_ids) > 400


def test_eval_size_bounded(arith_source):
    assert arith_source.size("eval") == 500
    assert arith_source.size("train") is None
    arith_source.get("eval", 499)
    with pytest.raises(IndexError, match="500"):
        arith_source.get("eval", 500)
    with pytest.raises(IndexError):
        arith_source.get("eval", 10_000)
    with pytest.raises(IndexError):
        arith_source.get("train", -1)
    with pytest.raises(IndexError):
        arith_source.get("eval", -1)
    arith_source.get("train", 10**9)  # train is unbounded


def test_custom_eval_size():
    src = make("arithmetic", eval_size=7).tasks()
    assert src.size("eval") == 7
    assert len(list(src.iter("eval"))) == 7
    with pytest.raises(IndexError):
        src.get("eval", 7)


def test_iter_behaviour(arith_source, eval_all):
    with pytest.raises(ValueError, match="unbounded"):
        arith_source.iter("train")
    assert [t.task_id for t in arith_source.iter("train", limit=5)] == [arith_source.get("train", i).task_id for i in range(5)]
    assert len(list(arith_source.iter("train", limit=0))) == 0
    assert len(list(arith_source.iter("eval", limit=3))) == 3
    assert len(list(arith_source.iter("eval", limit=10_000))) == 500  # capped at the split's size
    assert [t.task_id for t in arith_source.iter("eval", limit=4)] == [t.task_id for t in eval_all[:4]]


def test_procedural_generator_receives_seeded_rng_and_str_prompt_becomes_user_message():
    def gen(rng: random.Random) -> dict:
        n = rng.randrange(10**9)
        return {"prompt": f"number {n}", "verifier": {"n": n}}

    src = ProceduralTasks("toy", gen, eval_size=3)
    for split in ("train", "eval"):
        t = src.get(split, 2)
        assert len(t.prompt) == 1 and t.prompt[0].role == "user"
        # the first attempt, seeded by (env, split, index, attempt), whose content hashes into the split
        for attempt in range(1000):
            fields = gen(random.Random(f"toy:{split}:2:{attempt}"))
            if split_of(content_hash(fields)) == split:
                break
        assert t.prompt[0].content == fields["prompt"]
        assert t.verifier == fields["verifier"]
        assert t.split == split


def test_procedural_generator_that_never_hits_the_split():
    src = ProceduralTasks("const", lambda rng: {"prompt": "same", "verifier": {}})
    wanted = split_of(content_hash({"prompt": "same", "verifier": {}}))
    other = "train" if wanted == "eval" else "eval"
    assert src.get(wanted, 0).split == wanted
    with pytest.raises(RuntimeError, match="never produced"):
        src.get(other, 0)


# -- dataset tasks ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _datasets_cache_in_tmp(tmp_path, monkeypatch):
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def _write_parquet(path, rows):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _all(src: DatasetTasks) -> list[Task]:
    return list(src.iter("train")) + list(src.iter("eval"))


def test_parquet_string_prompts_and_json_verifier(tmp_path):
    rows = [{"prompt": f"What is {i}+{i}?", "verifier": json.dumps({"answer": str(2 * i)})} for i in range(40)]
    src = DatasetTasks("files", _write_parquet(tmp_path / "tasks.parquet", rows))
    tasks = _all(src)
    assert len(tasks) == 40
    assert src.size("train") + src.size("eval") == 40
    by_prompt = {t.prompt[0].content: t for t in tasks}
    for i in range(40):
        t = by_prompt[f"What is {i}+{i}?"]
        assert len(t.prompt) == 1 and t.prompt[0].role == "user"
        assert t.verifier == {"answer": str(2 * i)}
        assert t.env == "files"
        assert t.task_id.startswith("files-")


def test_missing_split_assigned_by_content_hash(tmp_path):
    rows = [{"prompt": f"question {i}", "verifier": json.dumps({"answer": str(i)})} for i in range(200)]
    src = DatasetTasks("files", _write_jsonl(tmp_path / "tasks.jsonl", rows))
    for t in _all(src):
        i = int(t.prompt[0].content.split()[1])
        digest = content_hash({"prompt": f"question {i}", "verifier": {"answer": str(i)}})
        assert t.split == split_of(digest)
        assert t.task_id == f"files-{digest[:16]}"
    assert 0 < src.size("eval") < src.size("train")  # 200 rows: both splits are populated


def test_same_content_same_split_in_both_formats(tmp_path):
    rows = [{"prompt": f"q{i}", "verifier": {"answer": str(i)}} for i in range(60)]
    a = DatasetTasks("f", _write_jsonl(tmp_path / "t.jsonl", rows))
    b = DatasetTasks("f", _write_parquet(tmp_path / "t.parquet", rows))
    assert {(t.task_id, t.split) for t in _all(a)} == {(t.task_id, t.split) for t in _all(b)}


def test_jsonl_message_prompts_and_optional_columns(tmp_path):
    rows = [
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
         "verifier": {"answer": "4"}, "task_id": "custom-1", "split": "eval", "reasoning": True,
         "tools": [{"name": "calc", "description": "a calculator"}]},
        {"prompt": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "3+3?"}],
         "verifier": {"answer": "6"}, "task_id": "custom-2", "split": "train", "reasoning": False,
         "tools": [{"name": "calc", "description": "a calculator"}]},
    ]
    src = DatasetTasks("f", _write_jsonl(tmp_path / "t.jsonl", rows))
    assert src.size("eval") == 1 and src.size("train") == 1
    e = src.get("eval", 0)
    assert e.task_id == "custom-1"
    assert [m.role for m in e.prompt] == ["system", "user"]
    assert e.prompt[1].content == "2+2?"
    assert e.reasoning is True
    assert e.tools[0].name == "calc"
    assert e.verifier == {"answer": "4"}
    assert src.get("train", 0).task_id == "custom-2"
    assert src.get("train", 0).reasoning is False


def test_explicit_split_column_honoured(tmp_path):
    # every row labelled, opposite of what its hash would say, to show the label wins
    rows = []
    for i in range(30):
        fields = {"prompt": f"p{i}", "verifier": {"answer": str(i)}}
        hashed = split_of(content_hash(fields))
        rows.append({"prompt": f"p{i}", "verifier": json.dumps({"answer": str(i)}),
                     "split": "train" if hashed == "eval" else "eval"})
    src = DatasetTasks("f", _write_parquet(tmp_path / "t.parquet", rows))
    expected = {r["prompt"]: r["split"] for r in rows}
    for t in _all(src):
        assert t.split == expected[t.prompt[0].content]
    assert src.size("eval") == sum(r["split"] == "eval" for r in rows)


def test_mixed_split_column_with_nulls(tmp_path):
    rows = [{"prompt": f"p{i}", "verifier": "{}", "split": ("eval" if i == 0 else None)} for i in range(20)]
    src = DatasetTasks("f", _write_jsonl(tmp_path / "t.jsonl", rows))
    tasks = _all(src)
    assert len(tasks) == 20
    assert next(t for t in tasks if t.prompt[0].content == "p0").split == "eval"
    for t in tasks:
        if t.prompt[0].content != "p0":
            assert t.split == split_of(content_hash({"prompt": t.prompt[0].content, "verifier": {}}))


def test_get_out_of_range_and_iter(tmp_path):
    rows = [{"prompt": "only", "verifier": "{}", "split": "train"}]
    src = DatasetTasks("f", _write_jsonl(tmp_path / "t.jsonl", rows))
    assert src.size("eval") == 0
    assert list(src.iter("eval")) == []
    assert len(list(src.iter("train"))) == 1  # bounded: no limit needed
    with pytest.raises(IndexError):
        src.get("train", 1)
    with pytest.raises(IndexError):
        src.get("eval", 0)


@pytest.mark.parametrize(
    ("bad_row", "fragment"),
    [
        ({"prompt": "q", "verifier": "{not json", "split": "train"}, "row 2"),
        ({"prompt": "q", "verifier": "{}", "split": "test"}, "row 2"),
        ({"prompt": "", "verifier": "[1, 2]", "split": "train"}, "row 2"),
    ],
)
def test_bad_row_names_row_number(tmp_path, bad_row, fragment):
    good = {"prompt": "fine", "verifier": "{}", "split": "train"}
    path = _write_jsonl(tmp_path / "t.jsonl", [good, good, bad_row, good])
    with pytest.raises(ValueError, match=fragment) as info:
        DatasetTasks("f", path)
    assert str(path) in str(info.value)


def test_missing_prompt_column_is_a_row_error(tmp_path):
    path = _write_parquet(tmp_path / "t.parquet", [{"question": "q", "verifier": "{}"}])
    with pytest.raises(ValueError, match="row 0"):
        DatasetTasks("f", path)


@pytest.mark.parametrize("suffix", [".csv", ".txt", ".parq", ""])
def test_bad_suffix_rejected(tmp_path, suffix):
    path = tmp_path / f"tasks{suffix}"
    path.write_text("prompt,verifier\nq,{}\n")
    with pytest.raises(ValueError, match="expected .parquet, .jsonl or .json"):
        DatasetTasks("f", path)
