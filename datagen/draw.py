"""Drawings of a graph's implied edges: Mermaid (renders in Markdown viewers) and Graphviz DOT.

Nested graphs are drawn as clusters with their own entry and exit. `collapse` draws each family of more
than `collapse` nodes ("instruct/…") as one box, which keeps a 60-node catalog graph readable.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from .graph import Graph
from .judge import Judged


def _namer(graph: Graph, collapse: int | None) -> Callable[[str], str]:
    families = Counter(n.name.split("/")[0] for n in graph.nodes if "/" in n.name)

    def name(node: str) -> str:
        family = node.split("/")[0]
        if collapse is not None and "/" in node and families[family] > collapse:
            return f"{family}/* ×{families[family]}"
        return node
    return name


def _label(graph: Graph, name: str) -> str:
    node = graph.by_name.get(name)
    return f"{name} (judged)" if isinstance(node, Judged) else name


def _ident(*parts: str) -> str:
    return re.sub(r"\W", "_", "__".join(p for p in parts if p))


def _walk(graph: Graph, scope: str, collapse: int | None):
    """(boxes, clusters, edges) of one graph level: boxes {id: label}, clusters [(id, label, inner level)]."""
    shown = _namer(graph, collapse)
    ids = {"source": _ident(scope, "source") if scope else "source", "sink": _ident(scope, "sink") if scope else "sink"}
    boxes: dict[str, str] = {}
    clusters = []
    for node in graph.nodes:
        ids[node.name] = _ident(scope, shown(node.name))
        if isinstance(node, Graph):
            clusters.append((ids[node.name], node.name, _walk(node, ids[node.name], collapse)))
        else:
            boxes.setdefault(ids[node.name], _label(graph, node.name) if shown(node.name) == node.name else shown(node.name))
    edges = list(dict.fromkeys((ids[a], ids[b]) for a, b in graph.edges()))
    return list(boxes.items()), clusters, edges


def to_mermaid(graph: Graph, collapse: int | None = None) -> str:
    lines = ["flowchart LR"]

    def emit(level, indent: str, scope: str) -> None:
        boxes, clusters, edges = level
        entry, exit_ = (_ident(scope, "source"), _ident(scope, "sink")) if scope else ("source", "sink")
        lines.append(f"{indent}{entry}((in))" if scope else f"{indent}source((source))")
        lines.append(f"{indent}{exit_}((out))" if scope else f"{indent}sink((sink))")
        lines.extend(f'{indent}{i}["{label}"]' for i, label in boxes)
        for cid, label, inner in clusters:
            lines.append(f'{indent}subgraph {cid} ["{label} (nested graph)"]')
            emit(inner, indent + "  ", cid)
            lines.append(f"{indent}end")
        lines.extend(f"{indent}{a} --> {b}" for a, b in edges)

    emit(_walk(graph, "", collapse), "  ", "")
    return "\n".join(lines) + "\n"


def to_dot(graph: Graph, collapse: int | None = None) -> str:
    lines = [f'digraph "{graph.name}" {{', "  rankdir=LR;", "  node [shape=box, fontname=Helvetica];"]

    def emit(level, indent: str, scope: str) -> None:
        boxes, clusters, edges = level
        entry, exit_ = (_ident(scope, "source"), _ident(scope, "sink")) if scope else ("source", "sink")
        lines.append(f'{indent}{entry} [shape=circle, label="{"in" if scope else "source"}"];')
        lines.append(f'{indent}{exit_} [shape=doublecircle, label="{"out" if scope else "sink"}"];')
        lines.extend(f'{indent}{i} [label="{label}"];' for i, label in boxes)
        for cid, label, inner in clusters:
            lines.append(f'{indent}subgraph cluster_{cid} {{')
            lines.append(f'{indent}  label="{label} (nested graph)";')
            emit(inner, indent + "  ", cid)
            lines.append(f"{indent}}}")
        # an edge into or out of a cluster goes to its entry or from its exit
        cluster_ids = {cid for cid, _, _ in clusters}
        for a, b in edges:
            a = _ident(a, "sink") if a in cluster_ids else a
            b = _ident(b, "source") if b in cluster_ids else b
            lines.append(f"{indent}{a} -> {b};")

    emit(_walk(graph, "", collapse), "  ", "")
    lines.append("}")
    return "\n".join(lines) + "\n"


def load_graph(spec: str) -> Graph:
    """A graph from a run's TOML config (the catalog graph it builds), or `module:attribute` naming a Graph
    or a function that returns one."""
    import importlib
    import inspect

    if spec.endswith(".toml"):
        from .run import DatagenConfig, graph_of

        return graph_of(DatagenConfig.load(spec))
    module, sep, attr = spec.partition(":")
    if not sep:
        raise ValueError(f"{spec!r}: expected a .toml config or module:attribute")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{spec!r}: cannot import it ({exc})") from exc
    graph = obj() if inspect.isfunction(obj) else obj
    if not isinstance(graph, Graph):
        raise ValueError(f"{spec!r} is a {type(graph).__name__}, not a datagen Graph")
    return graph
