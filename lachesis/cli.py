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

    return asyncio.run(run_main_job(Path(args.workdir), tasks=args.tasks, n=args.n, max_tokens=args.max_tokens,
                                    train_steps=args.train_steps, eval_tasks=args.eval_tasks))


def _train(args: argparse.Namespace) -> int:
    from trainer.config import TrainConfig

    try:
        config = TrainConfig.load(args.config)
        from trainer.train import dry_run, train

        if args.dry_run:
            print(dry_run(config))
        else:
            train(config)
    except ValueError as exc:
        print(f"lachesis train: {exc}", file=sys.stderr)
        return 2
    return 0


def _length_control(args: argparse.Namespace) -> int:
    from trainer.length_control import LengthControlConfig, run_length_control

    try:
        config = LengthControlConfig.load(args.config)
        stats = asyncio.run(run_length_control(config))
    except ValueError as exc:
        print(f"lachesis length-control: {exc}", file=sys.stderr)
        return 2
    print(f"{stats.summary()}\nwritten: {config.out}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.target[0] == "report":
        return _eval_report(args.target[1:], args.out)
    if len(args.target) != 1:
        print("lachesis eval: give ENV[,ENV…] (one argument) or `report RUN [RUN…]`", file=sys.stderr)
        return 2
    from evals.report import scores_table, to_text, write_report
    from evals.run import run_eval

    try:
        config = _eval_config(args)
        result = asyncio.run(run_eval(config, progress=True))
    except (OSError, ValueError) as exc:
        print(f"lachesis eval: {exc}", file=sys.stderr)
        return 2
    print(to_text(scores_table([(env, None, m) for env, m in result.metrics.items()])))
    md, html = write_report([result.run_dir], result.run_dir)
    print(f"\n{result.generated} samples generated, {result.resumed} resumed, {result.seconds:.1f} s; "
          f"log {result.run_dir / 'samples.jsonl'}\nreport {md} and {html}")
    unfinished = sum(m.errors["engine"] + m.errors["timeout"] for m in result.metrics.values())
    if unfinished:
        print(f"{unfinished} samples ended in engine errors or timeouts: run the same command again to retry "
              "them", file=sys.stderr)
    return 1 if unfinished else 0


def _eval_config(args: argparse.Namespace):  # -> evals.run.EvalConfig
    from evals.run import EvalConfig

    names = [n for n in args.target[0].split(",") if n]
    env_options: dict[str, dict] = {n: {} for n in names}
    for item in args.env_option:
        name, _, rest = item.partition(".")
        if name not in env_options or not rest:
            raise ValueError(f"--env-option {item!r}: expected ENV.KEY=VALUE with ENV one of {names}")
        key, value = _key_value(rest, "--env-option")
        env_options[name][key] = value
    if args.tasks and len(names) != 1:
        raise ValueError("--tasks: a benchmark file belongs to exactly one environment")
    slug = "".join(c if c.isalnum() or c in ".-" else "-" for c in args.policy).strip("-")[:60]
    return EvalConfig.build(
        run_dir=args.out or f"runs/eval/{'+'.join(names)}--{slug}", policy=args.policy,
        policy_options=dict(_key_value(o, "--policy-option") for o in args.policy_option),
        envs=[{"name": n, "config": env_options[n], "split": args.split, "limit": args.limit, "tasks_path": args.tasks}
              for n in names],
        samples=args.samples, reasoning={"on": True, "off": False, None: None}[args.reasoning],
        sampling={"temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
                  "max_tokens": args.max_tokens, "seed": args.seed},
        concurrency=args.concurrency, retries=args.retries, timeout_s=args.timeout, verify_workers=args.verify_workers)


def _eval_report(runs: list[str], out: str | None) -> int:
    from evals.report import write_report

    if not runs:
        print("lachesis eval report: give at least one RUN directory", file=sys.stderr)
        return 2
    try:
        paths = write_report(runs, out or (runs[0] if len(runs) == 1 else Path(runs[-1]) / "compare"))
    except (OSError, ValueError) as exc:
        print(f"lachesis eval report: {exc}", file=sys.stderr)
        return 2
    print("\n".join(map(str, paths)))
    return 0


def _key_value(text: str, flag: str) -> tuple[str, object]:
    """KEY=VALUE with VALUE read as JSON when it is JSON (numbers, true/false, lists), else as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ValueError(f"{flag} {text!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _datagen(args: argparse.Namespace) -> int:
    from datagen.draw import load_graph, to_dot, to_mermaid
    from datagen.output import export
    from datagen.run import DatagenConfig, run_datagen

    try:
        if args.action == "run":
            summary = asyncio.run(run_datagen(DatagenConfig.load(args.config), workers=args.workers, progress=True))
            print(summary.table())
            return 1 if summary.deferred else 0
        if args.action == "draw":
            graph = load_graph(args.graph)
            text = (to_mermaid if args.format == "mermaid" else to_dot)(graph, collapse=args.collapse)
            if args.output:
                Path(args.output).write_text(text)
            else:
                print(text, end="")
            return 0
        dest = args.dest or Path(args.run_dir) / "export"
        rows = export(args.run_dir, dest, intermediate=args.intermediate, exclude_licenses=args.exclude_license)
        print(f"{rows} conversations written to {Path(dest) / 'trajectories.parquet'}")
        return 0
    except (OSError, ValueError) as exc:
        print(f"lachesis datagen {args.action}: {exc}", file=sys.stderr)
        return 2


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

    t = sub.add_parser("train", help="supervised fine-tuning on accepted trajectories (torchtitan; resumable)",
                       description="Fine-tune a Llama 3 or Qwen 3 model on rollout trajectories: assistant-only "
                                   "labels, First-Fit-Decreasing packing with document masks, AdamW with warmup and "
                                   "cosine decay, DCP checkpoints (a rerun resumes), a Hugging Face export at the "
                                   "end. Several GPUs: torchrun --nproc_per_node N -m lachesis train CONFIG.toml")
    t.add_argument("config", help="TOML file (see trainer/config.py for every field)")
    t.add_argument("--dry-run", action="store_true", help="print the packing plan and its efficiency, train nothing")
    t.set_defaults(func=_train)

    lc = sub.add_parser("length-control", help="build the </think> length-control dataset with a policy",
                        description="Sample reasoning traces from a policy with a token budget; cut those that "
                                    "overrun at the budget, insert </think>, let the policy answer, and write samples "
                                    "trained only on the inserted </think> and the final end-of-turn token (Parquet, "
                                    "a data path for `lachesis train`).")
    lc.add_argument("config", help="TOML file (see trainer/length_control.py, LengthControlConfig)")
    lc.set_defaults(func=_length_control)

    d = sub.add_parser("demo", help="the main job on the embedded default: evaluate, roll out, train, evaluate",
                       description="On the embedded default (SmolLM2-135M-Instruct on the CPU): evaluate the model on "
                                   "held-out tasks, run a Ray rollout over the built-in environments through the "
                                   "environment server, rejection-sample to Parquet, fine-tune on the accepted "
                                   "trajectories, evaluate the trained checkpoint and write the report comparing both.")
    d.add_argument("--workdir", default="runs/demo", help="output directory (default runs/demo)")
    d.add_argument("--tasks", type=int, default=6, help="tasks per environment (default 6)")
    d.add_argument("--n", type=int, default=6, help="completions per task (default 6)")
    d.add_argument("--max-tokens", type=int, default=192, help="generated tokens per completion (default 192)")
    d.add_argument("--train-steps", type=int, default=4, help="fine-tuning steps (default 4)")
    d.add_argument("--eval-tasks", type=int, default=4, help="held-out tasks per environment (default 4)")
    d.set_defaults(func=_demo)

    ev = sub.add_parser(
        "eval", help="evaluate a policy on environments' eval splits or benchmark files; `eval report` compares runs",
        usage="lachesis eval ENV[,ENV…] [options]\n       lachesis eval report RUN [RUN…] [--out DIR]",
        description="`lachesis eval ENV[,ENV…] --policy SPEC`: sample every task of each environment's eval split "
                    "(or of a benchmark file, --tasks) n times, verify while generating, log every sample to "
                    "RUN/samples.jsonl (a rerun resumes), and write RUN/report.md and report.html. "
                    "`lachesis eval report RUN [RUN…]`: one report over several runs, each later run compared "
                    "with the first (score deltas, tasks that flipped).")
    ev.add_argument("target", nargs="+", metavar="ENV[,ENV…]", help="environments, or `report` and run directories")
    ev.add_argument("--policy", default="embedded",
                    help="embedded (started for the run; default), sglang:URL[,URL…], openai:URL[,URL…] or "
                         "my_pkg.my_module:MyPolicy")
    ev.add_argument("--policy-option", action="append", default=[], metavar="KEY=VALUE",
                    help="a keyword argument of the policy, e.g. model=NAME for openai (repeatable)")
    ev.add_argument("--samples", type=int, default=1, help="samples per task, n (pass@k for k ≤ n; default 1)")
    ev.add_argument("--limit", type=int, help="the first N tasks of each environment")
    ev.add_argument("--split", default="eval", choices=["eval", "train"], help="which split (default eval)")
    ev.add_argument("--tasks", help="a benchmark file in the environment's format (IFEval JSONL, BFCL, schemas, "
                                    "LiveCodeBench/APPS, task rows) instead of the split")
    ev.add_argument("--env-option", action="append", default=[], metavar="ENV.KEY=VALUE",
                    help="an environment option, e.g. ifeval.max_constraints=1 (repeatable)")
    ev.add_argument("--temperature", type=float, default=1.0)
    ev.add_argument("--top-p", type=float, default=1.0)
    ev.add_argument("--top-k", type=int, default=-1)
    ev.add_argument("--max-tokens", type=int, default=512, help="generated tokens per sample, L of overlong@L")
    ev.add_argument("--seed", type=int, help="base sampling seed (each sample gets its own, derived from it)")
    ev.add_argument("--reasoning", choices=["on", "off"], help="force reasoning mode (default: as each task says)")
    ev.add_argument("--concurrency", type=int, default=32, help="requests in flight per endpoint (default 32)")
    ev.add_argument("--retries", type=int, default=2, help="retries of a sample after a transient engine error")
    ev.add_argument("--timeout", type=float, default=600.0, help="seconds per generation request (default 600)")
    ev.add_argument("--verify-workers", type=int, default=2, help="verification processes (default 2)")
    ev.add_argument("--out", help="run directory (default runs/eval/ENVS--POLICY); for `report`, where to write it")
    ev.set_defaults(func=_eval)

    dg = sub.add_parser("datagen", help="DataForge synthetic data: run a graph of walks, draw it, export conversations")
    dg_sub = dg.add_subparsers(dest="action", required=True)
    dr = dg_sub.add_parser("run", help="walk seeds through the graph (in-process or on Ray); a rerun resumes",
                           description="Prepare the seeds (clean, deduplicate), walk each seed `replicates` times "
                                       "through the DataForge graph, judge, and write walks, calls and accepted "
                                       "samples as Parquet shards under out_dir.")
    dr.add_argument("config", help="TOML file (see datagen/run.py, DatagenConfig)")
    dr.add_argument("--workers", type=int, help="override workers (1: in-process, more: Ray actors)")
    dd = dg_sub.add_parser("draw", help="draw a graph's implied edges as Mermaid or Graphviz DOT")
    dd.add_argument("graph", help="a run's TOML config, or module:attribute naming a Graph (or a function returning one)")
    dd.add_argument("--format", choices=["mermaid", "dot"], default="mermaid")
    dd.add_argument("--collapse", type=int, metavar="N", help="draw each family of more than N nodes as one box")
    dd.add_argument("-o", "--output", help="write here instead of standard output")
    de = dg_sub.add_parser("export", help="render a run's accepted samples as training conversations (trajectory rows)")
    de.add_argument("run_dir", help="a run's out_dir")
    de.add_argument("--dest", help="where to write trajectories.parquet (default RUN_DIR/export)")
    de.add_argument("--intermediate", action="store_true",
                    help="also export the intermediate calls (transform, instruct, answer, refine, judge) as tasks")
    de.add_argument("--exclude-license", action="append", default=[], metavar="LICENSE",
                    help="leave out samples from seeds under this licence (repeatable)")
    dg.set_defaults(func=_datagen)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
