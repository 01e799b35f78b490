"""The options of `lachesis policy serve`, in a module of their own: building the CLI must not import torch."""

from __future__ import annotations

import argparse
import os


def add_serve_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="a Hugging Face causal-LM checkpoint directory (default: SmolLM2-135M-Instruct, "
                                   "prepared on first use into $LACHESIS_MODEL_DIR or ~/.cache/lachesis/models)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=30000, help="port (0 picks a free one; default 30000, as SGLang)")
    p.add_argument("--token", default=os.environ.get("LACHESIS_TOKEN"),
                   help="bearer token clients must send (default: $LACHESIS_TOKEN)")
    p.add_argument("--served-model-name", help="the model name /v1/models reports (default: the directory's name)")
    p.add_argument("--max-batch-rows", type=int, default=64, help="samples decoded together at most (default 64)")
    p.add_argument("--max-prefill-tokens", type=int, default=4096,
                   help="prompt tokens prefilled together at most (default 4096)")
    p.add_argument("--threads", type=int, help="torch threads (default: the CPUs this process may use)")
    p.add_argument("--max-body-mib", type=int, default=8, help="largest request body accepted, MiB (default 8)")
