"""Seeded random walks (one walk = one datapoint) and the coverage report over many of them.

A walk's id is a stable hash of (graph fingerprint, seed id, replicate) and seeds its RNG, so the same
inputs take the same path and make the same calls: that is what lets a restarted run skip finished walks
and replay unfinished ones from the call cache.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .graph import Graph
from .nodes import NodeFailed
from .state import Datapoint, Seed, facts

if TYPE_CHECKING:
    from .calls import LLM, CallRecord

def walk_id(graph_fingerprint: str, seed_id: str, replicate: int) -> str:
    return hashlib.sha256(f"{graph_fingerprint}\0{seed_id}\0{replicate}".encode()).hexdigest()[:32]


@dataclass
class WalkContext:
    """What a node sees besides the datapoint. `retry` and `within` share the walk's RNG, calls and path."""

    walk_id: str
    rng: random.Random
    llm: LLM | None
    calls: list[CallRecord] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    attempt: int = 0
    feedback: str | None = None  # the judge's feedback on the previous attempt
    prefix: str = ""  # "outer>" inside a nested graph

    def retry(self, attempt: int, feedback: str | None) -> WalkContext:
        return WalkContext(self.walk_id, self.rng, self.llm, self.calls, self.path, attempt, feedback, self.prefix)

    def within(self, graph: str) -> WalkContext:
        return WalkContext(self.walk_id, self.rng, self.llm, self.calls, self.path, self.attempt, self.feedback,
                           f"{self.prefix}{graph}>")


@dataclass
class WalkResult:
    walk_id: str
    seed: Seed
    replicate: int
    graph_fingerprint: str
    path: list[str]
    status: str
    error: str | None
    datapoint: Datapoint | None  # the final state of an accepted walk
    calls: list[CallRecord]


async def run_walk(graph: Graph, seed: Seed, replicate: int, llm: LLM | None) -> WalkResult:
    """Walk from the seed to the sink. A node failure ends the walk with its status; an EngineError
    (the inference fleet is down) propagates, so the caller defers the walk instead of recording it."""
    wid = walk_id(graph.fingerprint, seed.seed_id, replicate)
    ctx = WalkContext(wid, random.Random(int(wid, 16)), llm)
    dp: Datapoint | None = Datapoint(seed=seed)
    try:
        if not graph.applies(facts(dp)):
            raise NodeFailed(f"seed {seed.seed_id} ({sorted(facts(dp))}) does not fit the source of graph {graph.name}")
        dp, status, error = await graph.run(dp, ctx), "accepted", None
    except NodeFailed as exc:
        dp, status, error = None, exc.status, str(exc)
    return WalkResult(wid, seed, replicate, graph.fingerprint, ctx.path, status, error, dp, ctx.calls)


@dataclass
class Coverage:
    """Path histogram, node visits, walk statuses and the judge's pass rate per node."""

    paths: Counter[str] = field(default_factory=Counter)
    visits: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    judged: Counter[str] = field(default_factory=Counter)  # judge calls per node
    passed: Counter[str] = field(default_factory=Counter)  # of which passed

    def add(self, result: WalkResult) -> None:
        self.count(result.path, result.status, ((c.node, c.accepted) for c in result.calls if c.role == "judge"))

    def count(self, path: list[str], status: str, verdicts: Iterable[tuple[str, bool | None]]) -> None:
        """One walk: its path, its status and its judge calls as (node, passed)."""
        self.paths[" → ".join(path)] += 1
        self.visits.update(path)
        self.statuses[status] += 1
        for node, passed in verdicts:
            self.judged[node] += 1
            self.passed[node] += bool(passed)

    def merge(self, other: Coverage) -> None:
        for mine, theirs in ((self.paths, other.paths), (self.visits, other.visits), (self.statuses, other.statuses),
                             (self.judged, other.judged), (self.passed, other.passed)):
            mine.update(theirs)

    def report(self, top: int = 10) -> str:
        walks = sum(self.statuses.values())
        lines = [f"walks: {walks} ({', '.join(f'{k} {v}' for k, v in sorted(self.statuses.items()))}); "
                 f"{len(self.paths)} distinct paths"]
        lines += [f"  {n:>6}  {p or '(empty)'}" for p, n in self.paths.most_common(top)]
        lines.append("node visits (judge pass rate):")
        for node in sorted(set(self.visits) | set(self.judged), key=lambda k: (-self.visits[k], k)):
            n = self.visits[node]
            rate = f"  {self.passed[node] / self.judged[node]:.0%} of {self.judged[node]}" if self.judged[node] else ""
            lines.append(f"  {n:>6}  {node}{rate}")
        return "\n".join(lines)
