"""The policy of a run: from its spec to a live client (starting the embedded server when asked), and what
the manifest records of it (class, name, version, model, chat template)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from rollout.policies import Policy, load_policy


def policy_config(spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """`load_policy`'s config from a policy spec (see EvalConfig.policy) and keyword options."""
    if spec == "embedded":
        return {"kind": "embedded", **options}
    kind, sep, rest = spec.partition(":")
    if kind in ("sglang", "openai"):
        urls = [u for u in rest.split(",") if u]
        if not urls:
            raise ValueError(f"policy {spec!r}: give the server URL(s), e.g. {kind}:http://127.0.0.1:30000")
        return {"kind": kind, "urls": urls, **options}
    if sep and kind and rest:
        return {"kind": spec, **options}
    raise ValueError(f"policy {spec!r}: expected 'embedded', 'sglang:URL', 'openai:URL' or 'my_pkg.my_module:MyPolicy'")


@asynccontextmanager
async def open_policy(spec: str, options: dict[str, Any], concurrency: int) -> AsyncIterator[tuple[Policy, int]]:
    """The policy and its number of endpoints; "embedded" starts the embedded policy server for the run."""
    from env_server.process import lachesis_process

    cfg = policy_config(spec, options)
    async with AsyncExitStack() as stack:
        if cfg["kind"] == "embedded":
            model = cfg.pop("model", None)
            url = await stack.enter_async_context(lachesis_process(
                "policy", "serve", "--port", "0", *(["--model", model] if model else [])))
            cfg = {**cfg, "kind": "sglang", "urls": [url]}
        endpoints = 1
        if cfg["kind"] in ("sglang", "openai"):
            cfg.setdefault("max_concurrency", concurrency)
            endpoints = len(cfg["urls"])
        policy = load_policy(cfg)
        try:
            yield policy, endpoints
        finally:
            await policy.close()


async def describe_policy(policy: Policy, spec: str, options: dict[str, Any]) -> dict[str, Any]:
    """What the manifest records of the policy: spec, class, name, version, model and chat template."""
    info: dict[str, Any] = {
        "spec": spec, "options": redacted(options), "class": f"{type(policy).__module__}.{type(policy).__qualname__}",
        "name": policy.name, "version": policy.version}
    model_dir = options.get("tokenizer")
    pool = getattr(policy, "pool", None)  # the HTTP policies' endpoint pool: SGLang servers report their model
    if model_dir is None and pool is not None:
        try:
            model_dir = (await pool.get("/get_model_info")).get("model_path")
        except Exception:  # an OpenAI-compatible server need not have this route
            model_dir = None
    info["model"] = model_dir or options.get("model")
    info["chat_template"] = getattr(policy, "chat_template", None) or chat_template_of(model_dir)
    return info


def chat_template_of(model_dir: str | None) -> dict[str, Any]:
    """The sha256 of a local checkpoint's chat template, or a note that the server applies an unknown one."""
    unknown = {"sha256": None, "source": "applied by the server; not readable from here"}
    if not model_dir or not Path(model_dir).is_dir():
        return unknown
    jinja, config = Path(model_dir) / "chat_template.jinja", Path(model_dir) / "tokenizer_config.json"
    if jinja.exists():
        text, source = jinja.read_text(), str(jinja)
    elif config.exists() and (template := json.loads(config.read_text()).get("chat_template")):
        text, source = json.dumps(template, sort_keys=True), str(config)
    else:
        return unknown
    return {"sha256": hashlib.sha256(text.encode()).hexdigest(), "source": source}


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    return {k: "***" if "key" in k or "token" in k else v for k, v in options.items()}
