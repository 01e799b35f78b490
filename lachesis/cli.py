"""The `lachesis` command line. Each subcommand is a thin shell over a package's public functions."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path


def _serve(args: argparse.Namespace) -> int:
    from env_server.app import ServerConfig, serve

    cfg = ServerConfig(host=args.host, port=args.port, data_dir=Path(args.data_dir), token=args.token,
                       verify_workers=args.verify_workers, lease_seconds=args.lease_seconds,
                       max_body_bytes=args.max_body_mib << 20)
    try:
        cfg.check()
    except ValueError as exc:
        print(f"lachesis serve: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(cfg))
    return 0


def _envs(args: argparse.Namespace) -> int:
    import environments
    from env_server.envs import describe

    if args.action == "list":
        for s in environments.specs():
            print(f"{s.name:<20} v{s.version:<3} {s.gym_id:<32} {s.description}")
        return 0
    try:
        spec = environments.spec(args.name)
    except KeyError as exc:
        print(f"lachesis envs show: {exc.args[0]}", file=sys.stderr)
        return 2
    info = describe(spec)
    env = environments.make(spec.name)
    source = env.tasks()
    print(f"{spec.name} v{spec.version} ({spec.gym_id})\n\n{(spec.cls.__doc__ or '').strip()}\n")
    print(f"class: {spec.cls.__module__}.{spec.cls.__qualname__}")
    for split in ("train", "eval"):
        size = source.size(split)
        print(f"{split} tasks: {'unbounded (procedural)' if size is None else size}")
    if summary := getattr(spec.cls, "catalog_summary", None):  # environments with a catalog list it
        print("\n" + summary())
    example = source.get("train", 0)
    print("\nexample task:\n" + json.dumps(example.model_dump(mode="json"), indent=2))
    print("\nschemas: " + ", ".join(k for k in info if k.endswith("_schema")) + " (GET /v1/envs/" + spec.name + ")")
    return 0


def _store(args: argparse.Namespace) -> int:
    from env_server.client import EnvServerClient

    async def stats() -> dict:
        async with EnvServerClient(args.url, token=args.token, retries=1) as client:
            return await client.stats()

    try:
        result = asyncio.run(stats())
    except Exception as exc:
        print(f"lachesis store stats: cannot read {args.url}: {exc}", file=sys.stderr)
        return 1
    for key, value in result.items():
        print(f"{key:<16}{value}")
    return 0


def _policy_serve(args: argparse.Namespace) -> int:
    from rollout.embedded import serve_from_args

    return serve_from_args(args)


def _rollout(args: argparse.Namespace) -> int:
    from rollout.config import RolloutConfig
    from rollout.run import run_rollout

    try:
        config = RolloutConfig.load(args.config)
    except ValueError as exc:
        print(f"lachesis rollout: {exc}", file=sys.stderr)
        return 2
    if args.policy:
        config = config.model_copy(update={"policy": {**config.policy, "kind": args.policy}})
    summary = asyncio.run(run_rollout(config))
    print(summary.table())
    return 1 if summary.failed else 0


def _demo(args: argparse.Namespace) -> int:
    from rollout.main_job import run_main_job

    return asyncio.run(run_main_job(Path(args.workdir), tasks=args.tasks, n=args.n, max_tokens=args.max_tokens))


def _add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    from rollout.embedded.options import add_serve_arguments

    add_serve_arguments(parser)


def build_parser() -> argparse.ArgumentParser:
    token = os.environ.get("LACHESIS_TOKEN")
    p = argparse.ArgumentParser(prog="lachesis", description="Lachesis: RL environment servers for LLM post-training.")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the environment server (until SIGTERM/SIGINT)",
                       description="Serve every registered environment (reset/step/verify) and the durable "
                                   "trajectory store over HTTP. Binds 127.0.0.1 unless told otherwise; any other "
                                   "address requires a bearer token.")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="port (0 picks a free one; default 8000)")
    s.add_argument("--data-dir", default="data/store", help="where the trajectory store lives (default data/store)")
    s.add_argument("--token", default=token, help="bearer token clients must send (default: $LACHESIS_TOKEN)")
    s.add_argument("--verify-workers", type=int, default=os.cpu_count() or 2, help="processes for batch verification")
    s.add_argument("--lease-seconds", type=float, default=300.0, help="default lease duration before requeue")
    s.add_argument("--max-body-mib", type=int, default=64, help="largest request body accepted, MiB")
    s.set_defaults(func=_serve)

    e = sub.add_parser("envs", help="list or show registered environments")
    e_sub = e.add_subparsers(dest="action", required=True)
    e_sub.add_parser("list", help="one line per environment: name, version, gymnasium id, description")
    show = e_sub.add_parser("show", help="an environment's documentation, task splits and an example task")
    show.add_argument("name")
    e.set_defaults(func=_envs)

    st = sub.add_parser("store", help="inspect a running server's trajectory store")
    st_sub = st.add_subparsers(dest="action", required=True)
    stats = st_sub.add_parser("stats", help="queued, leased, acknowledged and stale group counts")
    stats.add_argument("--url", default="http://127.0.0.1:8000", help="server address (default http://127.0.0.1:8000)")
    stats.add_argument("--token", default=token, help="bearer token (default: $LACHESIS_TOKEN)")
    st.set_defaults(func=_store)

    pol = sub.add_parser("policy", help="the embedded policy server")
    pol_sub = pol.add_subparsers(dest="action", required=True)
    ps = pol_sub.add_parser("serve", help="serve a causal LM on the CPU with SGLang's and OpenAI's routes",
                            description="Serve the embedded default model (SmolLM2-135M-Instruct) or any Hugging Face "
                                        "checkpoint with SGLang's native /generate (token ids, logprobs) and the "
                                        "OpenAI-compatible routes, batching concurrent requests. Binds 127.0.0.1 "
                                        "unless told otherwise; any other address requires a bearer token.")
    _add_serve_arguments(ps)
    ps.set_defaults(func=_policy_serve)

    r = sub.add_parser("rollout", help="sample, verify and rejection-sample tasks on a Ray cluster",
                       description="Run a rollout described by a TOML config: Ray actors sample n completions per "
                                   "task from the policy, the environment server scores them, accepted ones are kept "
                                   "(up to k distinct per task) in Parquet shards under out_dir. A killed run resumes "
                                   "where it stopped.")
    r.add_argument("config", help="TOML file (see rollout/config.py for every field)")
    r.add_argument("--policy", help="override policy.kind, e.g. my_pkg.my_module:MyPolicy")
    r.set_defaults(func=_rollout)

    d = sub.add_parser("demo", help="the main job on the embedded default: a real rollout on this machine",
                       description="Start the environment server and the embedded policy server (SmolLM2-135M-Instruct "
                                   "on the CPU), run a Ray rollout over the built-in environments, rejection-sample, "
                                   "write the accepted trajectories to Parquet and print the accept rates.")
    d.add_argument("--workdir", default="runs/demo", help="output directory (default runs/demo)")
    d.add_argument("--tasks", type=int, default=6, help="tasks per environment (default 6)")
    d.add_argument("--n", type=int, default=6, help="completions per task (default 6)")
    d.add_argument("--max-tokens", type=int, default=192, help="generated tokens per completion (default 192)")
    d.set_defaults(func=_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
