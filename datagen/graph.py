"""A graph of nodes with one source and one sink, validated when it is built, walked at random; itself a node.

Edges are implied by the nodes' conditions, so the graph is explored over abstract states (sets of facts):
from every state the source admits, each applicable node leads to its successor states. Construction
reports, all at once: duplicate names, nodes that never apply (unreachable), states where nothing applies
and the sink does not hold (dead ends, with the path that leads there), cycles, and an unreachable sink.
A valid graph therefore guarantees that every node on a walk can still reach the sink, so a walk never
backtracks; every state a walk meets was explored here (a node that leaves an undeclared state fails).

At a state where the sink holds and nodes still apply (an optional step such as refinement), finishing is
one more choice, with weight `finish_weight`. Nested: a Graph used as a node applies where its source
condition holds and leaves exactly the sink states its own walk can reach from the caller's state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .nodes import Effect, Node, NodeFailed, State
from .state import Datapoint, check_facts, facts, start_states

if TYPE_CHECKING:
    import random

    from .walk import WalkContext


class GraphError(ValueError):
    def __init__(self, name: str, problems: list[str]):
        super().__init__(f"graph {name}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
        self.problems = problems


Transitions = dict[State, list[tuple[Node, State]]]


class Graph(Node):
    def __init__(self, name: str, nodes: Sequence[Node], *, sink: Iterable[str], sink_forbids: Iterable[str] = (),
                 source: Iterable[str] = ("seed",), source_forbids: Iterable[str] = (), finish_weight: float = 1.0,
                 weight: float = 1.0, family: str = "graph", max_states: int = 100_000):
        self.nodes = list(nodes)
        self.sink = check_facts(sink, f"graph {name}: sink")
        self.sink_forbids = check_facts(sink_forbids, f"graph {name}: sink_forbids")
        self.finish_weight, self.max_states = float(finish_weight), max_states
        self._choices: dict[State, tuple[list[Node | None], list[float]]] = {}
        self._ends: dict[State, tuple[State, ...]] = {}
        requires = check_facts(source, f"graph {name}: source")
        forbids = check_facts(source_forbids, f"graph {name}: source_forbids")
        self.starts = start_states(requires, forbids)
        self.transitions = self._validate(name)
        deltas = {Effect(t - s, s - t) for s in self.starts for t in self._reachable_sinks(s)}
        super().__init__(name, requires=requires, forbids=forbids, weight=weight, family=family,
                         outcomes=sorted(deltas, key=lambda e: (sorted(e.adds), sorted(e.deletes))))
        self.by_name = {n.name: n for n in self.nodes}

    # -- structure ------------------------------------------------------------------------------------
    def at_sink(self, state: State) -> bool:
        return self.sink <= state and not (self.sink_forbids & state)

    def _explore(self, starts: Iterable[State], problems: list[str]) -> tuple[Transitions, dict[State, tuple]]:
        """Every state reachable from `starts`, with its transitions, and how each was first reached."""
        transitions: Transitions = {}
        parent: dict[State, tuple] = {s: () for s in starts}
        stack = list(parent)
        while stack:
            state = stack.pop()
            if state in transitions:
                continue
            if len(transitions) >= self.max_states:
                problems.append(f"more than {self.max_states} abstract states: the node conditions are too loose")
                break
            out = []
            for node in self.nodes:
                if node.applies(state):
                    try:
                        out.extend((node, t) for t in node.successors(state))
                    except GraphError as exc:  # a nested graph that fails from this state
                        problems.extend(f"{node.name}: {p}" for p in exc.problems)
            transitions[state] = out
            for node, t in out:
                if t not in parent:
                    parent[t] = (state, node.name)
                    stack.append(t)
        return transitions, parent

    def _validate(self, name: str) -> Transitions:
        problems: list[str] = []
        names = [n.name for n in self.nodes]
        problems += [f"duplicate node name {n!r}" for n in sorted({n for n in names if names.count(n) > 1})]
        if not self.starts:
            problems.append("the source condition admits no state")
        transitions, parent = self._explore(self.starts, problems)

        def path_to(state: State) -> str:
            steps = []
            while parent.get(state):
                state, node = parent[state]
                steps.append(node)
            return " → ".join(["source", *reversed(steps)])

        if self.starts and not any(self.at_sink(s) for s in transitions):
            problems.append(f"the sink {sorted(self.sink)} is unreachable from the source")
        for state, out in transitions.items():
            if not out and not self.at_sink(state):
                problems.append(f"dead end after {path_to(state)}: no node applies to {sorted(state)} and the "
                                f"sink {sorted(self.sink)} does not hold")
        problems += self._cycles(transitions, path_to)
        used = {n.name for out in transitions.values() for n, _ in out}
        problems += [f"node {n.name} is unreachable: no reachable state has {sorted(n.requires)} without "
                     f"{sorted(n.forbids)}" for n in self.nodes if n.name not in used]
        if problems:
            raise GraphError(name, problems)
        return transitions

    @staticmethod
    def _cycles(transitions: Transitions, path_to: Any) -> list[str]:
        """Cycles in the state graph (a node that leaves the state unchanged is one), found by DFS."""
        found: list[str] = []
        colour: dict[State, int] = {}  # 1: on the DFS stack, 2: finished
        for root in transitions:
            if root in colour:
                continue
            colour[root] = 1
            stack: list[tuple[State, Any, str]] = [(root, iter(transitions[root]), "")]  # state, its steps, entered by
            while stack:
                state, steps = stack[-1][:2]
                step = next(steps, None)
                if step is None:
                    colour[state] = 2
                    stack.pop()
                    continue
                node, nxt = step
                if colour.get(nxt) == 1:
                    at = [s for s, _, _ in stack].index(nxt)
                    loop = [via for _, _, via in stack[at + 1:]] + [node.name]
                    found.append(f"cycle after {path_to(nxt)}: {' → '.join(loop)} returns to the same state")
                elif nxt not in colour:
                    colour[nxt] = 1
                    stack.append((nxt, iter(transitions.get(nxt, ())), node.name))
        return found

    def _reachable_sinks(self, start: State) -> tuple[State, ...]:
        """The sink states a walk of this graph can end in from `start` (memoized; used when nested)."""
        if start not in self._ends:
            problems: list[str] = []
            transitions = self.transitions if start in self.transitions else self._explore([start], problems)[0]
            problems += [f"dead end: no node applies to {sorted(s)} and the sink does not hold"
                         for s, out in transitions.items() if not out and not self.at_sink(s)]
            if problems:
                raise GraphError(self.name, problems)
            seen, stack = {start}, [start]
            while stack:
                for _, t in transitions[stack.pop()]:
                    if t not in seen:
                        seen.add(t)
                        stack.append(t)
            self._ends[start] = tuple(s for s in seen if self.at_sink(s))
        return self._ends[start]

    def successors(self, state: State) -> tuple[State, ...]:
        return self._reachable_sinks(state)

    def edges(self) -> list[tuple[str, str]]:
        """Implied edges between node names, with "source" and "sink", as a walk can take them."""
        out: dict[tuple[str, str], None] = {}
        for s in self.starts:
            for n, _ in self.transitions.get(s, ()):
                out[("source", n.name)] = None
        for out_edges in self.transitions.values():
            for n, t in out_edges:
                for m, _ in self.transitions.get(t, ()):
                    out[(n.name, m.name)] = None
                if self.at_sink(t):
                    out[(n.name, "sink")] = None
        return list(out)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "sink": sorted(self.sink), "sink_forbids": sorted(self.sink_forbids),
                "finish_weight": self.finish_weight, "nodes": [n.identity() for n in self.nodes]}

    @property
    def fingerprint(self) -> str:
        return self.version

    # -- walking --------------------------------------------------------------------------------------
    def options(self, state: State) -> tuple[list[Node | None], list[float]]:
        """The choices at `state` (None: finish) and their cumulative weights (memoized)."""
        entry = self._choices.get(state)
        if entry is None:
            nodes: list[Node | None] = [n for n in self.nodes if n.applies(state)]
            weights = [n.weight for n in nodes if n is not None]
            if self.at_sink(state):
                nodes.append(None)
                weights.append(self.finish_weight if weights else 1.0)
            cumulative, total = [], 0.0
            for w in weights:
                total += w
                cumulative.append(total)
            entry = self._choices[state] = (nodes, cumulative)
        return entry

    def choose(self, state: State, rng: random.Random) -> Node | None:
        nodes, cumulative = self.options(state)
        if not nodes:
            raise NodeFailed(f"graph {self.name}: no node applies to {sorted(state)}")
        if len(nodes) == 1:
            return nodes[0]
        return nodes[min(bisect.bisect_right(cumulative, rng.random() * cumulative[-1]), len(nodes) - 1)]

    async def run(self, dp: Datapoint, ctx: WalkContext) -> Datapoint:
        state = facts(dp)
        while (node := self.choose(state, ctx.rng)) is not None:
            out = await (node.run(dp, ctx.within(node.name)) if isinstance(node, Graph) else node.run(dp, ctx))
            after = facts(out)
            if after not in node.successors(state):
                raise NodeFailed(f"{ctx.prefix}{node.name} left the state {sorted(after)}, which its declared "
                                 f"effects do not allow from {sorted(state)}")
            if not isinstance(node, Graph):
                ctx.path.append(ctx.prefix + node.name)
            dp, state = out, after
        return dp
