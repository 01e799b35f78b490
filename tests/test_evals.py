"""Evaluations: the pass@k estimator, intervals and aggregation, error accounting, resume after kill -9,
benchmark-file adapters, reports, and the command line.

Runs use a scripted policy (a unit-test double standing in for the inference engine, so that timeouts,
engine failures and refusals happen on chosen tasks); verification runs in real worker processes and runs
are written to and read back from real files. The embedded model is exercised in test_evals_embedded.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from fractions import Fraction
from math import comb
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import environments
from environments import Completion, Usage
from evals.log import SampleRecord
from evals.metrics import compare, error_kind, estimate, is_overlong, pass_at_k, summarize, wilson
from evals.report import write_report
from evals.policy import policy_config
from evals.run import EvalConfig, run_eval
from rollout.policies import EngineError, RequestError

POLICY = f"{__name__}:ScriptedPolicy"


# -- a scripted policy (test double for the engine) -----------------------------------------------------


class ScriptedPolicy:
    """Answers by the first script key found in the last user message. A script is a list of steps consumed
    one per call (the last repeats): a string is the answer; ("length", text) an answer cut at the limit;
    "SLEEP" outlasts any timeout; "ENGINE" raises EngineError; "REFUSE" raises RequestError."""

    script: ClassVar[dict[str, list[Any]]] = {}
    calls: ClassVar[dict[str, int]] = {}

    def __init__(self, **options: Any):
        self.name, self.version = "scripted", 0

    async def generate(self, chat, tools, sampling, n):
        prompt = chat[-1].content
        key = next((k for k in self.script if k in prompt), None)
        if key is None:
            raise AssertionError(f"no script for {prompt[:80]!r}")
        count = self.calls[key] = self.calls.get(key, 0) + 1
        step = self.script[key][min(count, len(self.script[key])) - 1]
        await asyncio.sleep(0.001)
        if step == "SLEEP":
            await asyncio.sleep(30)
        if step == "ENGINE":
            raise EngineError("inference failed after 5 attempts; last: connection refused")
        if step == "REFUSE":
            raise RequestError("http://engine/generate answered 400: prompt too long")
        finish, text = step if isinstance(step, tuple) else ("stop", step)
        return [Completion(text=text, finish_reason=finish,
                           usage=Usage(prompt_tokens=10, completion_tokens=len(text.split())))]

    async def close(self):
        pass


@pytest.fixture(autouse=True)
def fresh_script():
    ScriptedPolicy.script, ScriptedPolicy.calls = {}, {}
    yield


def config(tmp: Path, envs: list[dict[str, Any]], **overrides: Any) -> EvalConfig:
    fields = {"run_dir": str(tmp), "envs": envs, "policy": POLICY, "samples": 2, "concurrency": 4,
              "retries": 2, "timeout_s": 0.5, "verify_workers": 1, "parquet": True, **overrides}
    return EvalConfig.build(**fields)


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


# -- pass@k ---------------------------------------------------------------------------------------------


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of the k-subsets of n samples (the first c correct) that hold a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_pass_at_k_matches_brute_force_and_closed_form(data):
    n = data.draw(st.integers(1, 9))
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    assert pass_at_k(n, c, k) == pytest.approx(float(brute_pass_at_k(n, c, k)), abs=1e-12)
    big_n = data.draw(st.integers(1, 300))
    big_c, big_k = data.draw(st.integers(0, big_n)), data.draw(st.integers(1, big_n))
    closed = 1 - Fraction(comb(big_n - big_c, big_k), comb(big_n, big_k))
    assert pass_at_k(big_n, big_c, big_k) == pytest.approx(float(closed), abs=1e-9)


def test_pass_at_k_edges_and_bad_arguments():
    assert pass_at_k(10, 0, 1) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the plain accuracy
    assert pass_at_k(5, 1, 5) == 1.0  # every sample drawn
    for bad in [(3, 4, 1), (3, -1, 1), (3, 1, 0), (3, 1, 4)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)
    with pytest.raises(TypeError):
        pass_at_k(3.0, 1, 1)


# -- intervals and aggregation --------------------------------------------------------------------------


def test_wilson_and_estimates():
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)  # published values
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    binary = estimate([1, 0, 1, 1], [1, 1, 1, 1])
    assert binary.method == "wilson" and binary.value == 0.75 and binary.tasks == 4
    ratio = estimate([3, 1, 4, 0, 2, 5], [5, 5, 5, 5, 5, 5])
    assert ratio.method == "bootstrap" and ratio.value == pytest.approx(15 / 30)
    assert ratio.low < ratio.value < ratio.high
    wide = estimate([3, 1, 4, 0, 2, 5] * 20, [5] * 120)
    assert wide.high - wide.low < ratio.high - ratio.low  # more tasks, narrower interval
    flat = estimate([0, 0, 0], [4, 4, 4])  # no spread for a bootstrap to see: Wilson over the tasks
    assert flat.method == "wilson" and flat.low == 0 and flat.high == pytest.approx(wilson(0, 3)[1])
    assert estimate([], []).tasks == 0 and estimate([], []).fmt() == "–"


def record(task: str, sample: int, accepted: bool | None, *, kind: str | None = None, output: str | None = "x",
           details: dict | None = None, tokens: int | None = 5, overlong: bool = False, attempts: int = 1) -> dict:
    return SampleRecord(key=f"e/{task}/{sample}", env="e", task_id=task, sample=sample, prompt=[], output=output,
                        reward=None if accepted is None else float(accepted), accepted=accepted,
                        details=details or {}, error_kind=kind, error=kind and f"{kind} failure",
                        completion_tokens=tokens, overlong=overlong, attempts=attempts).model_dump()


def test_summarize_counts_errors_apart_and_estimates_pass_at_k():
    rows = [record("a", 0, True), record("a", 1, False), record("a", 2, True),
            record("b", 0, False, kind="parse"), record("b", 1, False),
            record("b", 2, None, kind="timeout", output=None),
            record("c", 0, None, kind="engine", output=None, attempts=3), record("c", 1, None, kind="sandbox"),
            record("c", 2, None, kind="engine", output=None),
            record("d", 0, True, overlong=True, tokens=50), record("d", 1, True), record("d", 2, True)]
    m = summarize("e", rows, samples_per_task=3)
    assert (m.tasks, m.samples, m.scored) == (4, 12, 8)  # c has no verdict at all
    assert m.errors == {"parse": 1, "engine": 2, "timeout": 1, "sandbox": 1, "verifier": 0, "task": 0}
    assert m.accuracy.value == pytest.approx(5 / 8) and m.retries == 2
    assert m.pass_at[1].value == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert m.pass_at[2].value == pytest.approx((pass_at_k(3, 2, 2) + pass_at_k(2, 0, 2) + 1) / 3)
    assert m.pass_at[3].tasks == 2  # b has only two verdicts: left out of pass@3
    assert m.pass_at[3].value == pytest.approx(1.0)
    assert m.overlong.value == pytest.approx(1 / 9)  # over the 9 samples with an output
    assert m.length_unit == "tokens" and m.length["max"] == 50


def test_instruction_following_and_breakdowns():
    def follow(strict, loose):
        return {"instruction_id_list": [f"i{j}" for j in range(len(strict))], "strict": strict, "loose": loose,
                "format": "json"}

    rows = [record("a", 0, False, details=follow([True, False], [True, True])),
            record("a", 1, True, details=follow([True, True], [True, True])),
            record("b", 0, False, details=follow([False], [False]))]
    m = summarize("e", rows, samples_per_task=2)
    got = {k: v.value for k, v in m.instruction_following.items()}
    assert got == pytest.approx({"prompt-level strict": 1 / 3, "prompt-level loose": 2 / 3,
                                 "instruction-level strict": 3 / 5, "instruction-level loose": 4 / 5})
    assert {k: (r.passed, r.total) for k, r in m.breakdowns["instruction"].items()} == {"i0": (2, 3), "i1": (1, 2)}
    assert (m.breakdowns["format"]["json"].passed, m.breakdowns["format"]["json"].total) == (1, 3)


def test_compare_finds_flipped_tasks():
    before = [record("a", 0, True), record("a", 1, True), record("b", 0, False), record("b", 1, False),
              record("c", 0, True), record("c", 1, False), record("gone", 0, True)]
    after = [record("a", 0, False), record("a", 1, False), record("b", 0, True), record("b", 1, False),
             record("c", 0, True), record("c", 1, True), record("new", 0, True)]
    c = compare("e", before, after)
    assert c.common_tasks == 3 and [t.task_id for t in c.fixed] == ["b"] and [t.task_id for t in c.broken] == ["a"]
    assert c.changed == 3 and c.delta.value == pytest.approx((-1 + 0.5 + 0.5) / 3)


def test_error_kinds_and_overlong():
    assert error_kind(None) is None
    assert error_kind("no \\boxed{} answer") == "parse"
    assert error_kind("verifier error: KeyError: 'x'") == "verifier"
    assert error_kind("bad task: unknown format") == "task"
    assert error_kind("sandbox unavailable: no bwrap") == "sandbox"
    assert error_kind("python is not available here", {"error_kind": "sandbox"}) == "sandbox"
    assert is_overlong("anything", "length") and not is_overlong("done", "stop")
    assert is_overlong("<think>still going", "stop") and not is_overlong("<think>a</think> b", "stop")


# -- runs -----------------------------------------------------------------------------------------------


def arithmetic_tasks(n: int) -> list[environments.Task]:
    return list(environments.make("arithmetic").tasks().iter("eval", n))


def accounting_script(tasks, *, flip: bool = False) -> dict[str, list[Any]]:
    right = [f"\\boxed{{{t.verifier['answer']}}}" for t in tasks]
    prompts = [t.prompt[0].content for t in tasks]
    steps = [[right[0]], ["\\boxed{-7}"], ["no idea"], ["SLEEP"], ["ENGINE", right[4]], ["ENGINE"], ["REFUSE"],
             [("length", right[7])]]
    if flip:  # the second run: task 0 now wrong, task 1 now right
        steps[0], steps[1] = ["\\boxed{-7}"], [right[1]]
    return dict(zip(prompts, steps))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, list]:
    """Run A and run B (two tasks flipped) of the same eight arithmetic tasks, two samples each."""
    tasks = arithmetic_tasks(8)
    runs = []
    for name, flip in (("run-a", False), ("run-b", True)):
        ScriptedPolicy.script, ScriptedPolicy.calls = accounting_script(tasks, flip=flip), {}
        run_dir = tmp_path_factory.mktemp("evals") / name
        asyncio.run(run_eval(config(run_dir, [{"name": "arithmetic", "limit": 8}])))
        runs.append(run_dir)
    return runs[0], runs[1], tasks


def test_errors_are_counted_apart_never_scored_or_dropped(two_runs):
    run_a, _, tasks = two_runs
    rows = read_log(run_a)
    assert len(rows) == 16 and len({r["key"] for r in rows}) == 16  # nothing dropped, nothing twice
    by_task = {t.task_id: [r for r in rows if r["task_id"] == t.task_id] for t in tasks}
    kinds = {i: sorted(str(r["error_kind"]) for r in by_task[t.task_id]) for i, t in enumerate(tasks)}
    assert kinds == {0: ["None", "None"], 1: ["None", "None"], 2: ["parse", "parse"], 3: ["timeout", "timeout"],
                     4: ["None", "None"], 5: ["engine", "engine"], 6: ["engine", "engine"], 7: ["None", "None"]}
    assert sorted(r["attempts"] for r in by_task[tasks[4].task_id]) == [1, 2]  # one transient error, retried
    assert [r["attempts"] for r in by_task[tasks[5].task_id]] == [3, 3]  # retries=2, then given up
    assert [r["attempts"] for r in by_task[tasks[6].task_id]] == [1, 1]  # a refused request is not retried
    assert all(r["output"] is None and r["reward"] is None for r in by_task[tasks[3].task_id])
    assert all(r["overlong"] and r["accepted"] for r in by_task[tasks[7].task_id])

    summary = json.loads((run_a / "summary.json").read_text())["arithmetic"]
    assert summary["errors"] == {"parse": 2, "engine": 4, "timeout": 2, "sandbox": 0, "verifier": 0, "task": 0}
    assert (summary["samples"], summary["scored"], summary["retries"]) == (16, 10, 5)
    assert summary["accuracy"]["value"] == pytest.approx(6 / 10)
    assert summary["pass_at"]["2"]["value"] == pytest.approx(3 / 5)
    assert summary["overlong"]["value"] == pytest.approx(2 / 10)
    manifest = json.loads((run_a / "manifest.json").read_text())
    assert manifest["policy"]["spec"] == POLICY and manifest["sampling"]["max_tokens"] == 512
    assert manifest["envs"][0]["version"] == environments.spec("arithmetic").version
    assert manifest["reasoning"] == "as each task says" and manifest["policy"]["chat_template"]["sha256"] is None
    import pyarrow.parquet as pq

    table = pq.read_table(run_a / "samples.parquet")
    assert table.num_rows == 16 and sorted(table.column("key").to_pylist()) == sorted(r["key"] for r in rows)


def test_report_files_hold_the_numbers_of_the_log(two_runs, tmp_path):
    run_a, run_b, tasks = two_runs
    md_path, html_path = write_report([run_a, run_b], tmp_path / "report")
    md, page = md_path.read_text(), html_path.read_text()
    plots = sorted(p.name for p in (tmp_path / "report" / "plots").iterdir())
    assert {"scores.png", "lengths.png"} <= set(plots)
    assert all((tmp_path / "report" / "plots" / p).read_bytes()[:4] == b"\x89PNG" for p in plots)
    assert "plots/scores.png" in md and page.count("data:image/png;base64,") == len(plots)
    assert "src=\"plots" not in page  # self-contained

    for run in (run_a, run_b):  # recompute from the raw log, independently of evals.metrics
        rows = read_log(run)
        scored = [r for r in rows if r["error_kind"] not in ("engine", "timeout", "sandbox", "verifier", "task")]
        accuracy = 100 * sum(r["accepted"] for r in scored) / len(scored)
        overlong = 100 * sum(r["overlong"] for r in rows if r["output"] is not None) / sum(
            r["output"] is not None for r in rows)
        counts = [str(sum(r["error_kind"] == kind for r in rows)) for kind in ("parse", "engine", "timeout")]
        errors = f"| arithmetic | {run.name} | {' | '.join(counts)} |"
        for text in (md, page):
            assert f"{accuracy:.1f} [" in text and f"{overlong:.1f} [" in text
        assert errors in md
    assert "## Comparison: run-a → run-b" in md
    fixed = md.split("### arithmetic: 1 fixed")[1].split("###")[0]
    broken = md.split("### arithmetic: 1 broken")[1].split("##")[0]
    assert tasks[1].task_id in fixed and tasks[0].task_id in broken
    assert "| arithmetic | 5 | +0.0 [" in md  # five tasks judged in both; one fixed, one broken: Δ 0


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line holds `text` (a killed run's fork server names its sys.path there)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_text() and \
                    (entry / "stat").read_text().split(")")[-1].split()[0] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_resume_after_kill_regenerates_nothing_finished(tmp_path, monkeypatch):
    (tmp_path / "slow_policy.py").write_text(textwrap.dedent('''
        import asyncio
        from environments import Completion
        class SlowPolicy:
            text, calls, hang_after = "\\\\boxed{1}", 0, 20  # the 21st request never returns: a kill finds 20 done
            def __init__(self, **options):
                self.name, self.version = "slow", 0
            async def generate(self, chat, tools, sampling, n):
                type(self).calls += 1
                if self.hang_after is not None and self.calls > self.hang_after:
                    await asyncio.sleep(3600)
                await asyncio.sleep(0.01)
                return [Completion(text=self.text, finish_reason="stop")]
            async def close(self):
                pass
    '''))
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "lachesis", "eval", "arithmetic", "--policy", "slow_policy:SlowPolicy",
            "--limit", "10", "--samples", "4", "--concurrency", "1", "--verify-workers", "1", "--out", str(run_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.getcwd()])}
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = run_dir / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or log.read_text().count("\n") < 20):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {r["key"] for r in read_log(run_dir)}
    assert len(finished) == 20
    deadline = time.monotonic() + 30  # its verification workers and their fork server follow it out
    while time.monotonic() < deadline and processes_mentioning(str(tmp_path)):
        time.sleep(0.2)
    assert processes_mentioning(str(tmp_path)) == []
    with open(log, "a") as f:
        f.write('{"key": "arithmetic/torn')  # what a kill in the middle of a write leaves

    monkeypatch.syspath_prepend(str(tmp_path))
    from slow_policy import SlowPolicy

    SlowPolicy.text, SlowPolicy.hang_after = "\\boxed{2}", None
    result = asyncio.run(run_eval(config(run_dir, [{"name": "arithmetic", "limit": 10}], samples=4,
                                         policy="slow_policy:SlowPolicy")))
    assert SlowPolicy.calls == 40 - len(finished) == result.generated
    assert result.resumed == len(finished)
    rows = read_log(run_dir)
    assert len(rows) == 40 and len({r["key"] for r in rows}) == 40  # the torn line is gone; nothing twice
    assert {r["key"] for r in rows if r["output"] == "\\boxed{1}"} == finished  # kept as they were


def test_a_sample_the_verifier_could_not_judge_is_made_again_on_resume():
    from environments import Score
    from evals.run import _unfinished, _with_score

    base = SampleRecord.model_validate(record("t", 0, None))
    down = _with_score(base, Score(reward=0.0, accepted=False, error="judge unavailable: 503", retry=True,
                                   details={"error_kind": "verifier"}), 0.1)
    assert down.retry and down.error_kind == "verifier" and _unfinished(down)  # no verdict: left out, redone
    judged = _with_score(base, Score(reward=1.0, accepted=True), 0.1)
    assert not judged.retry and not _unfinished(judged)


def test_resume_refuses_a_changed_configuration(two_runs):
    run_a, _, _ = two_runs
    changed = config(run_a, [{"name": "arithmetic", "limit": 8}], sampling={"temperature": 0.2})
    with pytest.raises(ValueError, match="different sampling"):
        asyncio.run(run_eval(changed))


# -- benchmark files ------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_benchmark_files_ifeval_bfcl_schemas_and_task_rows(tmp_path):
    from environments.ifeval import check

    ifeval_rows = [
        {"key": 1, "prompt": "Write about cats.", "instruction_id_list": ["punctuation:no_comma",
                                                                         "change_case:english_lowercase"],
         "kwargs": [{}, {}]},
        {"key": 2, "prompt": "Write about dogs.", "instruction_id_list": ["startend:end_checker"],
         "kwargs": [{"end_phrase": "Any other questions?"}]},
        {"key": 3, "prompt": "Write about birds.", "instruction_id_list": ["detectable_format:title",
                                                                          "punctuation:no_comma"],
         "kwargs": [{}, {}]}]
    responses = {"cats": "cats are nice, they purr", "dogs": "Dogs are loyal. Any other questions?\n**",
                 "birds": "<<Birds>>\nBirds fly high"}
    ifeval_file = write_jsonl(tmp_path / "ifeval.jsonl", ifeval_rows)

    function = {"name": "triangle_area", "description": "Area of a triangle.",
                "parameters": {"type": "dict", "properties": {"base": {"type": "integer"},
                                                              "height": {"type": "integer"}},
                               "required": ["base", "height"]}}
    bfcl = write_jsonl(tmp_path / "bfcl" / "BFCL_v3_mixed.json", [
        {"id": row_id, "question": [[{"role": "user", "content": question}]], "function": [function]}
        for row_id, question in [("simple_0", "Area of base 10, height 5?"), ("simple_1", "Area of base 3, height 4?"),
                                 ("irrelevance_0", "Who wrote Hamlet?")]])
    write_jsonl(tmp_path / "bfcl" / "possible_answer" / "BFCL_v3_mixed.json", [
        {"id": "simple_0", "ground_truth": [{"triangle_area": {"base": [10], "height": [5]}}]},
        {"id": "simple_1", "ground_truth": [{"triangle_area": {"base": [3], "height": [4]}}]}])

    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "a.json").write_text(json.dumps({"title": "Person", "type": "object", "required": ["name"],
                                                "properties": {"name": {"type": "string"}}}))
    (schemas / "b.json").write_text(json.dumps({"title": "Counter", "type": "object", "required": ["n"],
                                                "properties": {"n": {"type": "integer", "minimum": 3}}}))

    source = environments.make("answer_format").tasks()
    formats = [source.get("eval", i) for i in range(2)]
    rows_file = write_jsonl(tmp_path / "answer_format.jsonl", [
        {"prompt": t.prompt[0].content, "verifier": json.dumps(t.verifier)} for t in formats])

    ScriptedPolicy.script = {
        **{f"Write about {k}": [v] for k, v in responses.items()},
        "base 10": ['<tool_call>\n{"name": "triangle_area", "arguments": {"base": 10, "height": 5}}\n</tool_call>'],
        "base 3": ['<tool_call>\n{"name": "triangle_area", "arguments": {"base": 4, "height": 3}}\n</tool_call>'],
        "Hamlet": ["Shakespeare wrote it; no function is needed."],
        "Person": ['{"name": "Ada"}'], "Counter": ['{"n": 1}'],
        formats[0].prompt[0].content: ["I will not follow the format."],
        formats[1].prompt[0].content: ["also not"]}
    run_dir = tmp_path / "run"
    result = asyncio.run(run_eval(config(run_dir, [
        {"name": "ifeval", "tasks_path": str(ifeval_file)}, {"name": "tool_calls", "tasks_path": str(bfcl)},
        {"name": "json_schema", "tasks_path": str(schemas)}, {"name": "answer_format", "tasks_path": str(rows_file)}],
        samples=1)))

    # IFEval: exactly IFEval's four numbers, from the reference checks of each instruction
    strict = [[check(i, kw, responses[row["prompt"].split()[-1][:-1]]) for i, kw in
               zip(row["instruction_id_list"], row["kwargs"])] for row in ifeval_rows]
    loose = [[check(i, kw, responses[row["prompt"].split()[-1][:-1]], loose=True) for i, kw in
              zip(row["instruction_id_list"], row["kwargs"])] for row in ifeval_rows]
    expected = {"prompt-level strict": sum(map(all, strict)) / 3, "prompt-level loose": sum(map(all, loose)) / 3,
                "instruction-level strict": sum(map(sum, strict)) / 5,
                "instruction-level loose": sum(map(sum, loose)) / 5}
    got = {k: v.value for k, v in result.metrics["ifeval"].instruction_following.items()}
    assert got == pytest.approx(expected)
    assert expected["prompt-level strict"] < expected["prompt-level loose"]  # the file tells the two apart

    rows = {r["task_id"]: r for r in read_log(run_dir)}
    assert rows["simple_0"]["accepted"] and not rows["simple_1"]["accepted"] and rows["irrelevance_0"]["accepted"]
    assert rows["simple_1"]["details"]["failures"]
    bfcl_metrics = result.metrics["tool_calls"]
    assert {k: (r.passed, r.total) for k, r in bfcl_metrics.breakdowns["category"].items()} == {
        "irrelevance": (1, 1), "simple": (1, 2)}
    schema_rows = [r for r in rows.values() if r["env"] == "json_schema"]
    assert sorted(r["accepted"] for r in schema_rows) == [False, True]
    af = result.metrics["answer_format"]
    assert af.tasks == 2 and af.errors["parse"] == 2
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [e["source"].split(" file")[0] for e in manifest["envs"]] == ["ifeval", "bfcl", "json-schema", "tasks"]


def test_benchmark_file_errors_name_the_row(tmp_path):
    from evals.adapters import load_benchmark

    bad = write_jsonl(tmp_path / "BFCL_v3_simple.json", [
        {"id": "simple_0", "question": "hi", "function": [{"name": "f", "parameters": {}}]}])
    with pytest.raises(ValueError, match=r"BFCL_v3_simple.json:1: simple_0: no ground_truth"):
        load_benchmark("tool_calls", bad, {})
    multi = write_jsonl(tmp_path / "m.json", [{"id": "multi_turn_base_0", "question": [], "function": []}])
    with pytest.raises(ValueError, match="multi-turn"):
        load_benchmark("tool_calls", multi, {})
    unknown = write_jsonl(tmp_path / "ifeval.jsonl", [{"prompt": "x", "instruction_id_list": ["nope"], "kwargs": [{}]}])
    with pytest.raises(ValueError, match=r"ifeval.jsonl:1"):
        load_benchmark("ifeval", unknown, {})
    with pytest.raises(FileNotFoundError):
        load_benchmark("ifeval", tmp_path / "missing.jsonl", {})


LCB_ROW = {"question_id": "abc001", "question_content": "Read two integers and print their sum.",
           "starter_code": "", "difficulty": "easy", "metadata": "{}",
           "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
           "private_test_cases": ""}
APPS_ROW = {"problem_id": 7, "question": "Return the double of x.", "starter_code": "def double(x):\n",
            "input_output": json.dumps({"fn_name": "double", "inputs": [[2], [5]], "outputs": [[4], [10]]})}


def test_code_files_read_livecodebench_and_apps_rows(tmp_path):
    import base64
    import pickle
    import zlib

    from evals.adapters import _code_task

    private = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(
        [{"input": "[1, 2]\n3", "output": "6", "testtype": "functional"}])))).decode()
    task = _code_task("code", {**LCB_ROW, "metadata": json.dumps({"func_name": "f"}), "private_test_cases": private,
                               "public_test_cases": "[]"})
    assert task.verifier["tests"] == [{"fn_name": "f", "args": [[1, 2], 3], "expected": 6}]
    assert _code_task("code", LCB_ROW).verifier["tests"] == [{"input": "1 2\n", "output": "3\n"}]
    apps = _code_task("code", APPS_ROW)
    assert apps.task_id == "code-7" and "def double(x):" in apps.prompt[0].content
    assert apps.verifier["tests"][1] == {"fn_name": "double", "args": [5], "expected": 10}
    evil = base64.b64encode(zlib.compress(pickle.dumps(os.getcwd))).decode()  # a pickle that names a function
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        _code_task("code", {**LCB_ROW, "private_test_cases": evil})


def test_code_benchmark_runs_in_the_sandbox(tmp_path):
    code = pytest.importorskip("environments.code")
    if not hasattr(code, "run_tests") or "code" not in {s.name for s in environments.specs()}:
        pytest.skip("the code environment is not registered yet")
    file = write_jsonl(tmp_path / "lcb.jsonl", [LCB_ROW, APPS_ROW])
    ScriptedPolicy.script = {"two integers": ["```python\na, b = map(int, input().split())\nprint(a + b)\n```"],
                             "double": ["```python\ndef double(x):\n    return 3 * x\n```"]}
    result = asyncio.run(run_eval(config(tmp_path / "run", [{"name": "code", "tasks_path": str(file)}], samples=1,
                                         verify_timeout_s=60)))
    rows = {r["task_id"]: r for r in read_log(tmp_path / "run")}
    if result.metrics["code"].errors["sandbox"]:
        pytest.skip(f"no sandbox here: {rows['code-abc001']['error']}")
    assert rows["code-abc001"]["accepted"] and rows["code-abc001"]["details"]["passed"] == 1
    assert not rows["code-7"]["accepted"] and rows["code-7"]["details"]["verdicts"][0]["verdict"] == "wrong_answer"
    assert rows["code-7"]["extracted"].startswith("def double(x):")
    assert {k: (r.passed, r.total) for k, r in result.metrics["code"].breakdowns["difficulty"].items()} == {
        "easy": (1, 1)}


# -- the command line -----------------------------------------------------------------------------------


def test_policy_specs():
    assert policy_config("embedded", {}) == {"kind": "embedded"}
    assert policy_config("sglang:http://a:1,http://b:2", {"tokenizer": "t"}) == {
        "kind": "sglang", "urls": ["http://a:1", "http://b:2"], "tokenizer": "t"}
    assert policy_config("openai:http://a:1", {"model": "m"})["kind"] == "openai"
    assert policy_config("my.mod:Cls", {}) == {"kind": "my.mod:Cls"}
    for bad in ("sglang:", "nonsense", "mod:"):
        with pytest.raises(ValueError, match="policy"):
            policy_config(bad, {})


def test_cli_eval_and_report(tmp_path, capsys):
    from lachesis.cli import main

    tasks = arithmetic_tasks(3)
    ScriptedPolicy.script = {t.prompt[0].content: [f"\\boxed{{{t.verifier['answer']}}}"] for t in tasks}
    run_dir = tmp_path / "cli-run"
    assert main(["eval", "arithmetic", "--policy", POLICY, "--limit", "3", "--samples", "2", "--out", str(run_dir),
                 "--verify-workers", "1", "--seed", "7", "--max-tokens", "64", "--reasoning", "off"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"arithmetic\s+3\s+6\s+6\s+100\.0 \[", out) and (run_dir / "report.html").exists()
    rows = read_log(run_dir)
    assert len({r["seed"] for r in rows}) == 6  # one seed per sample, derived from --seed
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["max_tokens"] == 64 and manifest["reasoning"] == "off" and manifest["sampling"]["seed"] == 7

    assert main(["eval", "report", str(run_dir), "--out", str(tmp_path / "rep")]) == 0
    assert (tmp_path / "rep" / "report.md").exists()

    for argv, message in [
            (["eval", "no_such_env", "--policy", POLICY], "unknown environment 'no_such_env'"),
            (["eval", "arithmetic", "--policy", "nonsense"], "expected 'embedded'"),
            (["eval", "arithmetic", "--env-option", "ifeval.x=1"], "ENV.KEY=VALUE"),
            (["eval", "arithmetic,ifeval", "--tasks", "f.jsonl"], "exactly one environment"),
            (["eval", "arithmetic", "--samples", "0", "--policy", POLICY], "samples"),
            (["eval", "report"], "at least one RUN"),
            (["eval", "report", str(tmp_path / "nothing")], "not an evaluation run")]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
