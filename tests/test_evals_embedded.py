"""The main job's evaluation hook against the real embedded policy server (SmolLM2-135M-Instruct on the CPU):
a run before, a run after (the same server standing in for the trained model), and the report comparing them."""

from __future__ import annotations

import asyncio
import json

from env_server.process import lachesis_process
from evals.main_job import evaluate_policy
from evals.policy import chat_template_of
from rollout.embedded import prepare_default_model


def test_main_job_hook_on_the_embedded_model(tmp_path):
    model = prepare_default_model()

    async def before_and_after():
        async with lachesis_process("policy", "serve", "--port", "0", "--model", str(model)) as url:
            before, _ = await evaluate_policy(url, tmp_path / "before", tasks=1, samples=2, max_tokens=8,
                                              envs={"arithmetic": {}})
            after, report = await evaluate_policy(url, tmp_path / "after", baseline=tmp_path / "before", tasks=1,
                                                  samples=2, max_tokens=8, envs={"arithmetic": {}})
            return before, after, report

    before, after, report = asyncio.run(before_and_after())
    assert before.generated == after.generated == 2
    rows = [json.loads(line) for line in (tmp_path / "after" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["error"] is None or r["error_kind"] == "parse" for r in rows)
    assert all(r["output"] and 0 < r["completion_tokens"] <= 8 and r["seed"] is not None for r in rows)
    assert all(r["overlong"] == (r["finish_reason"] == "length") for r in rows)
    manifest = json.loads((tmp_path / "after" / "manifest.json").read_text())
    assert manifest["policy"]["model"] == str(model)
    assert manifest["policy"]["chat_template"]["sha256"] == chat_template_of(str(model))["sha256"] is not None
    text = report.read_text()
    assert "## Comparison: before → after" in text and (tmp_path / "after" / "report.html").exists()
