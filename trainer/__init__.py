"""The SFT trainer on torchtitan: accepted trajectories → assistant-only labels (data.py) → First-Fit-Decreasing
packed rows (packing.py) with document masks (masks.py) → torchtitan's Llama 3 (model.py) trained by the loop
in train.py; length_control.py builds the `</think>` stage's data. config.py holds the TOML configuration.
"""

from .config import TrainConfig
from .packing import pack

_LAZY = {  # these import torchtitan (seconds): load them when asked for
    "train": "train", "dry_run": "train", "finetune": "train",
    "LengthControlConfig": "length_control", "run_length_control": "length_control",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["LengthControlConfig", "TrainConfig", "dry_run", "finetune", "pack", "run_length_control", "train"]
