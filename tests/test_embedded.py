"""The embedded policy: the batching engine in-process and a real `python -m rollout.embedded` server process,
both on the real default model (SmolLM2-135M-Instruct, prepared once by the Makefile)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rollout.embedded import main, prepare_default_model
from rollout.embedded.engine import Engine, PromptError, Sample
from rollout.embedded.protocol import ChatRequest, CompletionRequest, GenerateRequest
from rollout.embedded.sampling import SamplingParams, row_generator, sample_next

TOKEN = "s3cret"
GREEDY = SamplingParams(max_new_tokens=8, temperature=0.0, ignore_eos=True)


@pytest.fixture(scope="module")
def model_dir() -> Path:
    return prepare_default_model()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def engine(model_dir) -> Iterator[Engine]:
    eng = Engine.from_pretrained(model_dir)
    yield eng
    eng.close()


def chat_ids(tokenizer, question: str) -> list[int]:
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                         tokenize=True, return_dict=True)["input_ids"]


def generate(engine: Engine, prompts: list[list[int]], params: SamplingParams) -> list[list[Sample]]:
    async def all_at_once():
        return await asyncio.gather(*(engine.generate(p, params) for p in prompts))

    return asyncio.run(all_at_once())


# -- the sampler -----------------------------------------------------------------------------------------
def test_sampler_follows_the_distribution_and_its_truncations():
    torch.manual_seed(0)
    logits = torch.randn(1000) * 2
    probs = torch.softmax(logits, -1)
    order = probs.argsort(descending=True)
    generator = row_generator(seed=5, sample_index=0)

    def draws(params: SamplingParams, n: int) -> torch.Tensor:
        counts = torch.zeros(1000)
        for _ in range(n):
            [token], [logprob] = sample_next(logits[None], [params], [generator])
            assert logprob == pytest.approx(torch.log_softmax(logits / params.temperature, -1)[token].item(), abs=1e-5)
            counts[token] += 1
        return counts / n

    full = draws(SamplingParams(), 6000)
    assert (full[order[:5]] - probs[order[:5]]).abs().max() < 0.02
    top_k = draws(SamplingParams(top_k=3), 600)
    assert top_k[order[3:]].sum() == 0 and top_k[order[:3]].min() > 0
    nucleus = int((probs[order].cumsum(0) - probs[order] < 0.4).sum())
    top_p = draws(SamplingParams(top_p=0.4, temperature=1.0), 600)
    assert top_p[order[nucleus:]].sum() == 0 and top_p[order[:nucleus]].sum() == 1
    [greedy], _ = sample_next(logits[None], [SamplingParams(temperature=0)], [generator])
    assert greedy == int(order[0])


def test_row_generators_are_seeded_per_sample():
    def first_draws(seed, index):
        return torch.rand(4, generator=row_generator(seed, index)).tolist()

    assert first_draws(7, 0) == first_draws(7, 0)
    assert first_draws(7, 0) != first_draws(7, 1) and first_draws(7, 0) != first_draws(8, 0)
    assert first_draws(None, 0) != first_draws(None, 0)


# -- the engine ------------------------------------------------------------------------------------------
def test_batched_greedy_equals_alone(engine, tokenizer):
    """Left padding, the attention mask, position ids and rows joining mid-flight leave each row's output as
    if it had run alone."""
    prompts = [chat_ids(tokenizer, q) for q in (
        "What is 2+2?", "Write one sentence about the sea, the wind and the birds that fly above the waves.", "hi")]
    assert len({len(p) for p in prompts}) == 3
    alone = [generate(engine, [p], GREEDY)[0][0].token_ids for p in prompts]

    steps = engine.stats.decode_steps
    together = generate(engine, prompts, GREEDY)
    assert engine.stats.decode_steps - steps < 2 * GREEDY.max_new_tokens  # they shared forward passes
    assert [s[0].token_ids for s in together] == alone

    async def staggered():  # the long prompt joins a batch already decoding the short ones
        first = [asyncio.ensure_future(engine.generate(p, GREEDY)) for p in (prompts[0], prompts[2])]
        started = engine.stats.decode_steps
        while engine.stats.decode_steps < started + 4:
            await asyncio.sleep(0.01)
        late = await engine.generate(prompts[1], GREEDY)
        return [(await first[0])[0], late[0], (await first[1])[0]]

    assert [s.token_ids for s in asyncio.run(staggered())] == alone


def test_samples_logprobs_seeds_and_n(engine, tokenizer):
    prompt = chat_ids(tokenizer, "Tell me a story about a dragon.")
    params = SamplingParams(max_new_tokens=10, temperature=1.0, n=3, seed=11, ignore_eos=True)
    first, again = generate(engine, [prompt, prompt], params)
    assert [s.token_ids for s in first] == [s.token_ids for s in again]  # same seed, same samples
    assert len({tuple(s.token_ids) for s in first}) == 3  # the n samples differ
    for s in first:
        assert len(s.logprobs) == len(s.token_ids) == 10 and all(lp <= 0 for lp in s.logprobs)
        assert s.finish_reason == "length" and s.matched is None and s.prompt_tokens == len(prompt)
        assert s.text == tokenizer.decode(s.token_ids, skip_special_tokens=True)


def test_stop_strings_stop_tokens_and_eos(engine, tokenizer):
    prompt = chat_ids(tokenizer, "What is 2+2?")
    [[free]] = generate(engine, [prompt], SamplingParams(max_new_tokens=40, temperature=0))
    assert free.finish_reason == "stop" and free.matched in engine.eos_ids  # the model's end of turn
    assert free.token_ids[-1] == free.matched and "<|im_end|>" not in free.text

    word = free.text.split()[2]
    [[cut]] = generate(engine, [prompt], SamplingParams(max_new_tokens=40, temperature=0, stop=("zzz", word)))
    assert (cut.finish_reason, cut.matched) == ("stop", word)
    assert cut.text == free.text[: free.text.index(word)]
    assert cut.token_ids == free.token_ids[: len(cut.token_ids)] and len(cut.token_ids) < len(free.token_ids)

    third = free.token_ids[2]
    [[by_id]] = generate(engine, [prompt], SamplingParams(max_new_tokens=40, temperature=0, stop_token_ids=(third,)))
    assert by_id.token_ids == free.token_ids[:3] and by_id.matched == third
    assert by_id.text == tokenizer.decode(free.token_ids[:2])


def test_bad_prompts_are_refused(engine):
    for prompt, reason in (([], "empty"), ([5] * engine.context_length, "context"), ([engine.vocab_size], "lie in")):
        with pytest.raises(PromptError, match=reason):
            engine.check_prompt(prompt)
    engine.check_prompt([1, 2, 3])


# -- request validation ----------------------------------------------------------------------------------
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)
field_names = st.sampled_from(["text", "input_ids", "sampling_params", "return_logprob", "messages", "prompt", "n",
                               "temperature", "top_p", "top_k", "stop", "max_tokens", "logprobs", "seed", "x"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(field_names, json_values, max_size=4))
def test_request_models_validate_or_refuse_cleanly(body):
    """Arbitrary JSON bodies either validate or raise pydantic's ValidationError (→ 422), nothing else."""
    for model in (GenerateRequest, ChatRequest, CompletionRequest):
        try:
            parsed = model.model_validate(body)
        except ValidationError:
            continue
        if isinstance(parsed, GenerateRequest):
            assert parsed.prompts and parsed.sampling_params.to_engine().n >= 1


# -- the server process ----------------------------------------------------------------------------------
@dataclass
class PolicyServer:
    proc: subprocess.Popen
    url: str
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


def start_policy_server(log: Path, *args: str) -> PolicyServer:
    with open(log, "ab") as stderr:  # a file, not a pipe: an unread pipe fills and blocks the server
        proc = subprocess.Popen([sys.executable, "-m", "rollout.embedded", "--port", "0", *args],
                                stdout=subprocess.PIPE, stderr=stderr, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = proc.stdout.readline()
    if "listening on " not in line:
        proc.kill()
        raise RuntimeError(f"policy server did not start: {line!r} {log.read_text()}")
    return PolicyServer(proc, line.split("listening on ")[1].split()[0], log)


@pytest.fixture(scope="module")
def server(model_dir, tmp_path_factory) -> Iterator[PolicyServer]:
    srv = start_policy_server(tmp_path_factory.mktemp("policy") / "server.log", "--model", str(model_dir),
                              "--token", TOKEN)
    yield srv
    srv.stop(signal.SIGKILL)


def http(server: PolicyServer, path: str, body: dict | None = None, token: str | None = TOKEN) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_server_startup_line_and_model_routes(server, model_dir):
    assert server.url.startswith("http://127.0.0.1:")
    assert http(server, "/get_model_info") == (200, {"model_path": str(model_dir), "tokenizer_path": str(model_dir),
                                                     "is_generation": True})
    status, models = http(server, "/v1/models")
    assert status == 200 and models["object"] == "list" and models["data"][0]["id"] == model_dir.name


def test_generate_from_input_ids_and_from_text(server, tokenizer):
    ids = chat_ids(tokenizer, "What is 2+2?")
    body = {"input_ids": ids, "sampling_params": {"max_new_tokens": 6, "temperature": 0, "ignore_eos": True},
            "return_logprob": True}
    status, out = http(server, "/generate", body)
    assert status == 200 and set(out) == {"text", "output_ids", "meta_info"}
    meta = out["meta_info"]
    assert meta["finish_reason"] == {"type": "length", "length": 6}
    assert (meta["prompt_tokens"], meta["completion_tokens"]) == (len(ids), 6) == (len(ids), len(out["output_ids"]))
    pairs = meta["output_token_logprobs"]
    assert [p[1] for p in pairs] == out["output_ids"] and all(p[0] <= 0 and p[2] is None for p in pairs)
    assert out["text"] == tokenizer.decode(out["output_ids"], skip_special_tokens=True)

    status, same = http(server, "/generate", {**body, "input_ids": None, "text": tokenizer.decode(ids)})
    assert status == 200 and same["output_ids"] == out["output_ids"]  # text is tokenized as SGLang does


def test_generate_n_batches_seeds_and_stops(server):
    params = {"max_new_tokens": 5, "temperature": 1.0, "n": 3, "seed": 4, "ignore_eos": True}
    status, outs = http(server, "/generate", {"text": "Once upon a time", "sampling_params": params})
    assert status == 200 and isinstance(outs, list) and len(outs) == 3
    assert len({m["meta_info"]["id"] for m in outs}) == 3 and all(len(o["output_ids"]) == 5 for o in outs)
    _, again = http(server, "/generate", {"text": "Once upon a time", "sampling_params": params})
    assert [o["output_ids"] for o in again] == [o["output_ids"] for o in outs]

    status, batch = http(server, "/generate", {"text": ["Hello", "The sky is"],
                                               "sampling_params": {"max_new_tokens": 3, "temperature": 0}})
    assert status == 200 and [o["meta_info"]["prompt_tokens"] for o in batch] == [1, 3]

    greedy = {"max_new_tokens": 12, "temperature": 0}
    _, free = http(server, "/generate", {"text": "The capital of France is", "sampling_params": greedy})
    stop = free["text"].split()[1]
    _, cut = http(server, "/generate", {"text": "The capital of France is",
                                        "sampling_params": {**greedy, "stop": stop}})
    assert cut["meta_info"]["finish_reason"] == {"type": "stop", "matched": stop}
    assert cut["text"] == free["text"][: free["text"].index(stop)]


def test_openai_chat_and_completions(server):
    chat = {"model": "anything", "messages": [{"role": "user", "content": "What is 2+2?"}], "max_tokens": 5,
            "temperature": 0, "n": 2, "logprobs": True}
    status, out = http(server, "/v1/chat/completions", chat)
    assert status == 200 and out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    assert [c["index"] for c in out["choices"]] == [0, 1]
    choice = out["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] in ("stop", "length")
    content = choice["logprobs"]["content"]
    assert "".join(t["token"] for t in content).startswith(choice["message"]["content"])
    assert all(t["logprob"] <= 0 and t["bytes"] == list(t["token"].encode()) and t["top_logprobs"] == [] for t in content)
    assert out["usage"]["completion_tokens"] == 2 * len(content)
    assert out["usage"]["total_tokens"] == out["usage"]["prompt_tokens"] + out["usage"]["completion_tokens"]

    status, out = http(server, "/v1/completions", {"prompt": "1, 2, 3,", "max_tokens": 4, "temperature": 0,
                                                    "logprobs": 0})
    assert status == 200 and out["object"] == "text_completion"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "length" and "".join(choice["logprobs"]["tokens"]) == choice["text"]
    assert len(choice["logprobs"]["token_logprobs"]) == 4 == out["usage"]["completion_tokens"]
    assert choice["logprobs"]["text_offset"][0] == len("1, 2, 3,")
    status, plain = http(server, "/v1/chat/completions", {"messages": chat["messages"], "max_tokens": 3})
    assert status == 200 and plain["choices"][0]["logprobs"] is None


def test_openai_chat_continues_a_final_assistant_message(server, tokenizer):
    """vLLM's and SGLang's `continue_final_message`: the prompt ends inside the assistant's turn; OpenAIPolicy
    asks for it whenever a chat ends with the assistant's message (a prefilled answer, a forced `</think>`)."""
    from environments import Message
    from rollout.policies import Sampling
    from rollout.policies.openai import OpenAIPolicy

    messages = [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": "The answer is"}]
    expected = tokenizer.apply_chat_template(messages, continue_final_message=True, tokenize=True,
                                             return_dict=True)["input_ids"]
    assert tokenizer.decode(expected).endswith("The answer is")
    status, out = http(server, "/v1/chat/completions", {"messages": messages, "max_tokens": 3, "temperature": 0,
                                                        "continue_final_message": True, "add_generation_prompt": False})
    assert status == 200 and out["usage"]["prompt_tokens"] == len(expected)

    async def through_the_policy():
        policy = OpenAIPolicy(server.url, "m", api_key=TOKEN)
        try:
            return await policy.generate([Message(**m) for m in messages], None, Sampling(temperature=0, max_tokens=3), 1)
        finally:
            await policy.close()
    [completion] = asyncio.run(through_the_policy())
    assert completion.usage.prompt_tokens == len(expected) and completion.text == out["choices"][0]["message"]["content"]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/generate", {}, "input_ids"),
    ("/generate", {"text": "hi", "input_ids": [1]}, "input_ids"),
    ("/generate", {"input_ids": []}, "input_ids"),
    ("/generate", {"input_ids": [1, 10**9]}, "input_ids"),
    ("/generate", {"text": ["a", ""], "input_ids": None, "sampling_params": {"top_p": 1.5}}, "sampling_params.top_p"),
    ("/generate", {"text": "hi", "sampling_params": {"top_k": 0}}, "sampling_params.top_k"),
    ("/generate", {"text": "hi", "sampling_params": {"n": 0}}, "sampling_params.n"),
    ("/generate", {"text": "hi", "sampling_params": {"min_p": 0.1}}, "sampling_params.min_p"),
    ("/generate", {"text": "hi", "stream": True}, "stream"),
    ("/v1/chat/completions", {"messages": []}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2}, "top_logprobs"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": -1}, "temperature"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "continue_final_message": True,
                              "add_generation_prompt": False}, "continue_final_message"),
    ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "x"}], "continue_final_message": True},
     "continue_final_message"),
    ("/v1/completions", {"prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("/v1/completions", {"prompt": "x", "stop": [""]}, "stop"),
])
def test_bad_requests_are_4xx_naming_the_field(server, path, body, field):
    status, out = http(server, path, body)
    assert 400 <= status < 500
    assert field in [f["field"] for f in out["fields"]], out


def test_token_required_and_loopback_default(server, tmp_path, monkeypatch, capsys):
    body = {"text": "hi", "sampling_params": {"max_new_tokens": 1}}
    assert http(server, "/generate", body, token=None)[0] == 401
    assert http(server, "/v1/models", token="wrong")[0] == 401
    assert http(server, "/generate", body)[0] == 200
    assert http(server, "/health", token=None) == (200, {"status": "ok"})  # liveness stays open for probes

    monkeypatch.delenv("LACHESIS_TOKEN", raising=False)
    assert main(["--host", "0.0.0.0", "--model", str(tmp_path)]) == 2  # refused before loading anything
    out = capsys.readouterr()
    assert "requires a token" in out.err and out.out == ""


def test_concurrent_requests_are_batched(server):
    """Six requests in flight at once share decode steps (the server's counters, not timings, tell)."""
    before = http(server, "/get_server_info")[1]["stats"]
    body = {"text": "Count to ten:", "sampling_params": {"max_new_tokens": 16, "temperature": 0.7, "ignore_eos": True}}
    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: http(server, "/generate", body), range(6)))
    assert all(status == 200 for status, _ in results)
    after = http(server, "/get_server_info")[1]["stats"]
    tokens = after["generated_tokens"] - before["generated_tokens"]
    steps = after["decode_steps"] - before["decode_steps"]
    assert tokens == 6 * 16 and steps <= tokens / 2 and after["peak_batch_rows"] >= 2


@pytest.mark.slow  # a second server process
def test_sigterm_lets_in_flight_requests_finish(model_dir, tmp_path):
    srv = start_policy_server(tmp_path / "server.log", "--model", str(model_dir))
    body = {"text": "Tell me a story.", "sampling_params": {"max_new_tokens": 24, "ignore_eos": True}}
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(http, srv, "/generate", body, None)
        while http(srv, "/get_server_info", token=None)[1]["stats"]["decode_steps"] < 2:
            time.sleep(0.02)
        srv.proc.send_signal(signal.SIGTERM)
        status, out = pending.result(timeout=120)
    assert status == 200 and out["meta_info"]["completion_tokens"] == 24
    # It was already told to stop: wait for it (a second SIGTERM during shutdown would be a second request).
    assert srv.proc.wait(timeout=60) == 0 and "shutting down" in srv.log.read_text()
