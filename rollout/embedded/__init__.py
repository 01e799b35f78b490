"""The embedded default policy: a small model served on the CPU with SGLang's and OpenAI's HTTP routes.

`prepare_default_model()` builds the SmolLM2-135M-Instruct checkpoint once (prepare.py); `main(argv)` is
`lachesis policy serve` (server.py), which serves it, or any Hugging Face causal-LM checkpoint, through the
batching engine (engine.py, kv.py, sampling.py).
"""

from .options import add_serve_arguments
from .prepare import default_model_dir, prepare_default_model


def __getattr__(name: str):
    if name in ("main", "serve_from_args"):  # the server imports torch: load it only when it is asked for
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["add_serve_arguments", "default_model_dir", "main", "prepare_default_model", "serve_from_args"]
