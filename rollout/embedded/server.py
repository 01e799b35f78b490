"""The policy server: an aiohttp app over the engine, with SGLang's routes (native `/generate`, `/health`,
`/get_model_info`) and the OpenAI-compatible ones (`/v1/models`, `/v1/chat/completions`, `/v1/completions`).

Validation, error bodies and the bearer-token rule are the environment server's (env_server.app): 4xx JSON
naming the field at fault; 127.0.0.1 by default, and a token is required to bind anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import TemplateError

from env_server.app import CONFIG, HTTPError, ServerConfig, auth_middleware, errors_middleware, parse

from .engine import Engine, PromptError, Sample
from .options import add_serve_arguments
from .prepare import default_model_dir, is_prepared, prepare_default_model
from .protocol import (ChatRequest, CompletionRequest, GenerateRequest, chat_response, completion_response,
                       native_output)
from .sampling import SamplingParams

MiB = 1 << 20
GRACE_SECONDS = 30.0  # on SIGTERM, in-flight requests get this long to finish
log = logging.getLogger("lachesis.policy")


@dataclass(frozen=True)
class PolicyServerConfig:
    model: Path  # a Hugging Face causal-LM checkpoint directory
    host: str = "127.0.0.1"
    port: int = 30000  # SGLang's default
    token: str | None = None  # bearer token; required when binding beyond loopback
    served_model_name: str | None = None  # the name /v1/models reports (default: the directory's name)
    max_body_bytes: int = 8 * MiB
    max_batch_rows: int = 64  # samples decoded together at most
    max_prefill_tokens: int = 4096  # prompt tokens prefilled together at most (a longer prompt runs alone)
    threads: int | None = None  # torch threads (default: the CPUs this process may use)

    @property
    def model_name(self) -> str:
        return self.served_model_name or self.model.name

    def shared(self) -> ServerConfig:
        """The environment server's config, for what both servers share: the token rule and the auth check."""
        return ServerConfig(host=self.host, port=self.port, token=self.token, max_body_bytes=self.max_body_bytes)


ENGINE, TOKENIZER, SETTINGS, STARTED = (web.AppKey(n, t) for n, t in (
    ("engine", Engine), ("tokenizer", object), ("settings", PolicyServerConfig), ("started", int)))


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """The environment server's bearer-token check; SGLang's liveness route stays open for probes."""
    if request.path == "/health":
        return await handler(request)
    return await auth_middleware(request, handler)


# -- helpers ---------------------------------------------------------------------------------------------
async def _generate(engine: Engine, prompts: list[list[int]], params: SamplingParams, field: str) -> list[list[Sample]]:
    """Every prompt's samples; prompts are all checked before any is queued."""
    for i, ids in enumerate(prompts):
        try:
            engine.check_prompt(ids)
        except PromptError as exc:
            raise HTTPError(422, "invalid prompt", [(field if len(prompts) == 1 else f"{field}.{i}", str(exc))]) from exc
    return await asyncio.gather(*(engine.generate(ids, params) for ids in prompts))


def _token_texts(tokenizer, sample: Sample) -> list[str]:
    return tokenizer.batch_decode([[t] for t in sample.token_ids])


# -- handlers --------------------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def model_info(request: web.Request) -> web.Response:
    path = str(request.app[SETTINGS].model)
    return web.json_response({"model_path": path, "tokenizer_path": path, "is_generation": True})


async def server_info(request: web.Request) -> web.Response:
    settings, engine = request.app[SETTINGS], request.app[ENGINE]
    return web.json_response({
        "model_path": str(settings.model), "served_model_name": settings.model_name,
        "context_length": engine.context_length, "max_batch_rows": engine.max_batch_rows,
        "max_prefill_tokens": engine.max_prefill_tokens, "threads": engine.threads, "stats": engine.live_stats()})


async def list_models(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response({"object": "list", "data": [{
        "id": settings.model_name, "object": "model", "created": request.app[STARTED], "owned_by": "lachesis",
        "root": str(settings.model), "max_model_len": request.app[ENGINE].context_length}]})


async def generate(request: web.Request) -> web.Response:
    body: GenerateRequest = await parse(request, GenerateRequest)
    tokenizer = request.app[TOKENIZER]
    prompts = [tokenizer(p).input_ids if isinstance(p, str) else p for p in body.prompts]
    params = body.sampling_params.to_engine()
    start = time.perf_counter()
    results = await _generate(request.app[ENGINE], prompts, params, "text" if body.text is not None else "input_ids")
    latency = time.perf_counter() - start
    samples = [s for group in results for s in group]
    rid = body.rid or uuid.uuid4().hex
    outputs = [native_output(s, rid=rid if len(samples) == 1 else f"{rid}-{k}", latency=latency,
                             logprobs=body.return_logprob,
                             token_texts=_token_texts(tokenizer, s) if body.return_text_in_logprobs else None)
               for k, s in enumerate(samples)]
    return web.json_response(outputs if body.batched or params.n > 1 else outputs[0])


async def chat_completions(request: web.Request) -> web.Response:
    body: ChatRequest = await parse(request, ChatRequest)
    tokenizer, engine = request.app[TOKENIZER], request.app[ENGINE]
    try:
        ids = tokenizer.apply_chat_template(body.chat(), tools=body.tools, add_generation_prompt=body.add_generation_prompt,
                                            continue_final_message=body.continue_final_message, tokenize=True,
                                            return_dict=True)["input_ids"]
    except (TemplateError, ValueError, TypeError, KeyError) as exc:
        raise HTTPError(422, "the chat template cannot render these messages", [("messages", str(exc))]) from exc
    [samples] = await _generate(engine, [ids], body.to_engine(engine.context_length), "messages")
    texts = [_token_texts(tokenizer, s) for s in samples] if body.logprobs else None
    return web.json_response(chat_response(samples, rid=uuid.uuid4().hex, created=int(time.time()),
                                           model=request.app[SETTINGS].model_name, token_texts=texts))


async def completions(request: web.Request) -> web.Response:
    body: CompletionRequest = await parse(request, CompletionRequest)
    tokenizer = request.app[TOKENIZER]
    ids = tokenizer(body.prompt).input_ids if isinstance(body.prompt, str) else body.prompt
    [samples] = await _generate(request.app[ENGINE], [ids], body.to_engine(), "prompt")
    texts = [_token_texts(tokenizer, s) for s in samples] if body.logprobs is not None else None
    prompt_chars = len(body.prompt) if isinstance(body.prompt, str) else len(tokenizer.decode(ids))
    return web.json_response(completion_response(samples, rid=uuid.uuid4().hex, created=int(time.time()),
                                                 model=request.app[SETTINGS].model_name, token_texts=texts,
                                                 prompt_chars=prompt_chars))


# -- assembly --------------------------------------------------------------------------------------------
def create_app(cfg: PolicyServerConfig, engine: Engine, tokenizer: Any) -> web.Application:
    """`tokenizer` encodes on the event loop; the engine decodes with its own instance (see Engine)."""
    shared = cfg.shared()
    shared.check()
    app = web.Application(client_max_size=cfg.max_body_bytes, middlewares=[errors_middleware, _auth])
    app[CONFIG], app[SETTINGS], app[ENGINE], app[TOKENIZER] = shared, cfg, engine, tokenizer
    app[STARTED] = int(time.time())
    app.add_routes([
        web.get("/health", health),
        web.get("/get_model_info", model_info),
        web.get("/get_server_info", server_info),
        web.post("/generate", generate),
        web.get("/v1/models", list_models),
        web.post("/v1/chat/completions", chat_completions),
        web.post("/v1/completions", completions),
    ])
    return app


async def serve(cfg: PolicyServerConfig) -> None:
    """Load the model, serve until SIGTERM/SIGINT, then stop accepting and let in-flight requests finish."""
    from transformers import AutoTokenizer

    engine = Engine.from_pretrained(cfg.model, max_batch_rows=cfg.max_batch_rows,
                                    max_prefill_tokens=cfg.max_prefill_tokens, threads=cfg.threads or _cpus())
    try:
        app = create_app(cfg, engine, AutoTokenizer.from_pretrained(cfg.model))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=GRACE_SECONDS)
        await runner.setup()
        await web.TCPSite(runner, cfg.host, cfg.port).start()
        port = runner.addresses[0][1]
        print(f"lachesis policy server listening on http://{cfg.host}:{port} (model: {cfg.model})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        print("lachesis policy server: shutting down", file=sys.stderr, flush=True)
        await runner.cleanup()
    finally:
        engine.close()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- command line ----------------------------------------------------------------------------------------
def serve_from_args(args: argparse.Namespace) -> int:
    cfg = PolicyServerConfig(
        model=Path(args.model) if args.model else default_model_dir(), host=args.host, port=args.port,
        token=args.token, served_model_name=args.served_model_name, max_body_bytes=args.max_body_mib * MiB,
        max_batch_rows=args.max_batch_rows, max_prefill_tokens=args.max_prefill_tokens, threads=args.threads)
    try:
        cfg.shared().check()
    except ValueError as exc:
        print(f"lachesis policy serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.model and not is_prepared(cfg.model):
        log.info("preparing the default model into %s (once)", cfg.model)
        try:
            prepare_default_model()
        except RuntimeError as exc:
            print(f"lachesis policy serve: {exc}", file=sys.stderr)
            return 1
    if not (cfg.model / "config.json").is_file():
        print(f"lachesis policy serve: {cfg.model} is not a Hugging Face checkpoint (no config.json)", file=sys.stderr)
        return 2
    asyncio.run(serve(cfg))
    return 0


def main(argv: list[str] | None = None) -> int:
    """`lachesis policy serve [options]`, as a function: returns the exit code."""
    parser = argparse.ArgumentParser(prog="lachesis policy serve",
                                     description="Serve a causal LM on the CPU with SGLang's and OpenAI's routes.")
    add_serve_arguments(parser)
    return serve_from_args(parser.parse_args(argv))
