"""The constraint families; importing this package registers every constraint (see `..registry`)."""

from . import ifbench, ifeval, iftrain

__all__ = ["ifbench", "ifeval", "iftrain"]
