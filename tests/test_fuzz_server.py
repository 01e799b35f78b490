"""Fuzzing every POST route's body against a real server: bad input is a 4xx naming the fields, never a 5xx.

Properties checked for every request: the status is below 500; a 4xx body is JSON with an `error` string
and a `fields` list; a 2xx body decodes. After the run the server is still healthy and serves its stats,
and accepted groups are never lost to the bad requests around them.
"""

from __future__ import annotations

import copy
import json
import math
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
from conftest import ServerProcess, start_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from env_server import wire

JSON, MSGPACK = wire.JSON, wire.MSGPACK
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                        HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=60)


# -- HTTP -------------------------------------------------------------------------------------------
def request(url: str, method: str = "GET", data: bytes | None = None, content_type: str = JSON,
            accept: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type} if data is not None else {}
    if accept:
        headers["Accept"] = accept
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.headers.get_content_type(), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get_content_type(), exc.read()


def checked(url: str, data: bytes | None, content_type: str = JSON, method: str = "POST",
            accept: str | None = None) -> tuple[int, Any]:
    """Send a request, assert the response properties, return (status, decoded body)."""
    status, ctype, raw = request(url, method, data, content_type, accept)
    assert status < 500, f"{status} for {method} {url} with {(data or b'')[:300]!r}: {raw[:500]!r}"
    if status >= 400:
        assert ctype == JSON, (status, ctype, raw[:300])
        doc = json.loads(raw)
        assert isinstance(doc, dict), doc
        assert isinstance(doc.get("error"), str), doc
        assert isinstance(doc.get("fields"), list), doc
        for f in doc["fields"]:
            assert isinstance(f, dict) and isinstance(f.get("field"), str) and isinstance(f.get("message"), str), doc
        return status, doc
    return status, (wire.decode(raw, ctype) if ctype in (JSON, MSGPACK) else raw)


def post_json(url: str, doc: Any) -> tuple[int, Any]:
    return checked(url, json.dumps(doc).encode(), JSON)


def post_msgpack(url: str, doc: Any) -> tuple[int, Any]:
    return checked(url, wire.packb(doc), MSGPACK)


# -- valid bodies -----------------------------------------------------------------------------------
TASK = {"task_id": "t-1", "env": "arithmetic", "split": "train",
        "prompt": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "Ana has 2 apples. 1+1?"}],
        "tools": [{"type": "function", "name": "calc", "description": "adds",
                   "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}],
        "reasoning": False, "verifier": {"answer": "2"}}
COMPLETION = {"text": "\\boxed{2}", "token_ids": [1, 2, 3], "logprobs": [-0.5, -0.1, 0.0], "finish_reason": "stop",
              "usage": {"prompt_tokens": 10, "completion_tokens": 3}}


def valid_group(group_id: str | None = None) -> dict[str, Any]:
    return {
        "group_id": group_id or uuid.uuid4().hex, "env": "arithmetic", "env_version": 1, "task_id": "t-1",
        "policy": "tiny", "policy_version": 1,
        "trajectories": [
            {"messages": [{"role": "user", "content": "1+1?"},
                          {"role": "assistant", "content": "\\boxed{2}", "reasoning": "easy",
                           "tool_calls": [{"id": "c1", "name": "calc", "arguments": {"a": 1}}]}],
             "tokens": [5, 6, 7, 8], "masks": [0, 0, 1, 1], "logprobs": [-1.0, -0.5, -0.25, -0.125],
             "reward": 1.0, "score": {"reward": 1.0, "accepted": True, "details": {"why": "right"}},
             "finish_reason": "stop", "overlong": False, "timings": {"generate": 0.25}},
            {"tokens": [1, 2], "masks": [1, 1], "logprobs": [-0.1, -0.2], "reward": 0.0},
        ],
        "meta": {"sampler": {"temperature": 0.7}},
    }


VALID_BODIES: dict[str, dict[str, Any]] = {
    "reset": {"seed": 7, "options": {"split": "train", "index": 3, "reasoning": False, "task": TASK}},
    "step": {"action": {"role": "assistant", "content": "\\boxed{2}", "reasoning": "r", "name": "me",
                        "tool_calls": [{"id": "1", "name": "calc", "arguments": {"a": 1}}]}},
    "verify": {"groups": [{"task": TASK, "completions": [COMPLETION, {"text": "no"}]}]},
    "groups": valid_group("template"),
    "batches": {"max_groups": 2, "max_tokens": 100, "min_policy_version": 0, "lease_seconds": 600},
    "ack": {},
}


# -- strategies -------------------------------------------------------------------------------------
EDGE_INTS = [-1, 0, 2**31 - 1, 2**31, 2**63 - 1, 2**63, 2**64 - 1, -(2**63)]
SCALARS = (st.none() | st.booleans() | st.integers() | st.sampled_from([*EDGE_INTS, 2**64, 10**30])
           | st.integers(min_value=2**62, max_value=2**80)
           | st.integers(min_value=-(2**80), max_value=-(2**62)) | st.floats() | st.text(max_size=20)
           | st.sampled_from(["", "assistant", "train", "arithmetic", "stop", "0", "-1", "1e999"]))
json_values = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=12)

MSGPACK_SCALARS = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
                   | st.sampled_from(EDGE_INTS)
                   | st.floats() | st.text(max_size=20) | st.binary(max_size=12)
                   | st.builds(np.array, st.lists(st.floats(width=32), max_size=4), st.just(np.float32))
                   | st.builds(np.array, st.lists(st.integers(-5, 2**31 + 5), max_size=4), st.just(np.int64)))
msgpack_values = st.recursive(
    MSGPACK_SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=12), c, max_size=4), max_leaves=12)


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every location inside a document, containers included (not the root)."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((*prefix, k))
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((*prefix, i))
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, route: str, values: st.SearchStrategy = json_values) -> Any:
    """A valid body of `route` with one place replaced, deleted, or given an extra key."""
    doc = copy.deepcopy(VALID_BODIES[route])
    if route == "groups":
        doc["group_id"] = uuid.uuid4().hex
    where = paths(doc)
    action = draw(st.sampled_from(["replace", "replace", "delete", "extra"] if where else ["extra"]))
    if action == "extra":
        containers = [p for p in [(), *where] if isinstance(_get(doc, p), dict)]
        target = _get(doc, draw(st.sampled_from(containers)))
        target[draw(st.text(min_size=1, max_size=10))] = draw(values)
        return doc
    path = draw(st.sampled_from(where))
    parent = _get(doc, path[:-1])
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(values)
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _json_bytes(doc: Any) -> bytes:
    return json.dumps(doc).encode()  # NaN and Infinity come out as bare words: invalid JSON, on purpose


def _finite(doc: Any) -> bool:
    if isinstance(doc, float):
        return math.isfinite(doc)
    if isinstance(doc, dict):
        return all(_finite(v) for v in doc.values())
    if isinstance(doc, list):
        return all(_finite(v) for v in doc)
    return True


# -- fixtures ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server_log(shared_server: ServerProcess) -> ServerProcess:
    """The shared server, for tests that end by reading its stderr log."""
    return shared_server


@pytest.fixture(scope="module")
def routes(shared_server: ServerProcess, server_log: ServerProcess) -> dict[str, str]:
    base = shared_server.url
    return {"reset": f"{base}/v1/envs/arithmetic/reset", "verify": f"{base}/v1/envs/arithmetic/verify",
            "groups": f"{base}/v1/groups", "batches": f"{base}/v1/batches"}


def _session(base: str) -> str:
    status, doc = post_json(f"{base}/v1/envs/arithmetic/reset", {"seed": 1})
    assert status == 200, doc
    return doc["session_id"]


def _close(base: str, session_id: str) -> None:
    checked(f"{base}/v1/sessions/{session_id}", None, method="DELETE")


def _lease_id(base: str) -> str:
    """A real lease over one freshly stored group."""
    assert post_json(f"{base}/v1/groups", valid_group())[0] == 200
    status, doc = post_json(f"{base}/v1/batches", {"max_groups": 1, "lease_seconds": 600})
    assert status == 200 and doc["lease_id"], doc
    return doc["lease_id"]


def _send_to_route(base: str, routes: dict[str, str], route: str, data: bytes, content_type: str) -> int:
    if route == "step":
        session_id = _session(base)
        status, _ = checked(f"{base}/v1/sessions/{session_id}/step", data, content_type)
        _close(base, session_id)
        return status
    if route == "ack":
        return checked(f"{base}/v1/batches/{_lease_id(base)}/ack", data, content_type)[0]
    status, doc = checked(routes[route], data, content_type)
    if route == "reset" and status == 200:
        _close(base, doc["session_id"])
    return status


ROUTES = ["reset", "step", "verify", "groups", "batches", "ack"]


# -- (a) arbitrary JSON values ----------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
@FEW
@given(body=json_values)
def test_arbitrary_json(shared_server: ServerProcess, routes: dict[str, str], route: str, body: Any) -> None:
    _send_to_route(shared_server.url, routes, route, _json_bytes(body), JSON)


@pytest.mark.parametrize("route", ROUTES)
@FEW
@given(body=msgpack_values)
def test_arbitrary_msgpack_values(shared_server: ServerProcess, routes: dict[str, str], route: str, body: Any) -> None:
    _send_to_route(shared_server.url, routes, route, wire.packb(body), MSGPACK)


# -- (b) arbitrary bytes ----------------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
@FEW
@given(data=st.binary(max_size=200),
       content_type=st.sampled_from([JSON, MSGPACK, "text/plain", "application/x-www-form-urlencoded"]))
def test_arbitrary_bytes(shared_server: ServerProcess, routes: dict[str, str], route: str, data: bytes,
                         content_type: str) -> None:
    _send_to_route(shared_server.url, routes, route, data, content_type)


@FUZZ
@given(data=st.binary(max_size=64))
def test_msgpack_extension_bytes(routes: dict[str, str], data: bytes) -> None:
    """Array extensions with arbitrary payloads (bad dtype tags, ragged lengths) in the array fields."""
    body = valid_group()
    body["trajectories"][1]["logprobs"] = msgpack.ExtType(wire.EXT_NDARRAY, data)
    body["trajectories"][0]["tokens"] = msgpack.ExtType(wire.EXT_NDARRAY, b"\x03<i4" + data[:16])
    checked(routes["groups"], msgpack.packb(body, use_bin_type=True), MSGPACK)


# -- (c) valid bodies with one field mutated --------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES)
@FUZZ
@given(data=st.data())
def test_mutated_json(shared_server: ServerProcess, routes: dict[str, str], route: str, data: st.DataObject) -> None:
    body = data.draw(mutated(route))
    status = _send_to_route(shared_server.url, routes, route, _json_bytes(body), JSON)
    if not _finite(body):
        assert status == 400 or route == "ack"  # NaN/Infinity are not JSON; ack reads no body


@pytest.mark.parametrize("route", ROUTES)
@FEW
@given(data=st.data())
def test_mutated_msgpack(shared_server: ServerProcess, routes: dict[str, str], route: str, data: st.DataObject) -> None:
    body = data.draw(mutated(route, msgpack_values))
    _send_to_route(shared_server.url, routes, route, wire.packb(body), MSGPACK)


def test_valid_bodies_are_accepted(shared_server: ServerProcess, routes: dict[str, str]) -> None:
    """The templates the mutations start from are themselves valid (else the fuzzing proves little)."""
    base = shared_server.url
    for route in ROUTES:
        body = copy.deepcopy(VALID_BODIES[route])
        if route == "groups":
            body["group_id"] = uuid.uuid4().hex
        assert _send_to_route(base, routes, route, json.dumps(body).encode(), JSON) == 200, route
        if route == "groups":
            body["group_id"] = uuid.uuid4().hex
        assert _send_to_route(base, routes, route, wire.packb(body), MSGPACK) == 200, route


@FEW
@given(lease_id=st.text(min_size=1, max_size=40), body=json_values)
def test_ack_of_unknown_lease(shared_server: ServerProcess, server_log: ServerProcess, lease_id: str, body: Any) -> None:
    quoted = urllib.parse.quote(lease_id, safe="")
    status, doc = checked(f"{shared_server.url}/v1/batches/{quoted}/ack", _json_bytes(body))
    assert status in (404, 409), doc


@FEW
@given(session_id=st.text(min_size=1, max_size=40), body=json_values)
def test_step_of_unknown_session(shared_server: ServerProcess, server_log: ServerProcess, session_id: str, body: Any) -> None:
    quoted = urllib.parse.quote(session_id, safe="")
    status, doc = checked(f"{shared_server.url}/v1/sessions/{quoted}/step", _json_bytes(body))
    assert status in (400, 404, 422), doc  # the body is parsed before the session is looked up


def test_server_healthy_after_fuzzing(shared_server: ServerProcess, server_log: ServerProcess) -> None:
    base = shared_server.url
    assert shared_server.proc.poll() is None
    status, doc = checked(f"{base}/healthz", None, method="GET")
    assert status == 200 and doc == {"status": "ok"}
    status, stats = checked(f"{base}/v1/stats", None, method="GET")
    assert status == 200
    assert set(stats) == {"queued", "queued_tokens", "leased", "leases", "acknowledged", "stale", "sessions"}
    assert stats["queued"] + stats["leased"] + stats["acknowledged"] + stats["stale"] > 0
    # everything the fuzzing stored can be served, in both encodings
    for accept in (JSON, MSGPACK):
        status, doc = checked(f"{base}/v1/batches", _json_bytes({"max_groups": 4096}), accept=accept)
        assert status == 200, doc
        if doc["lease_id"]:
            assert checked(f"{base}/v1/batches/{doc['lease_id']}/ack", b"")[0] == 200
    status, _ = checked(f"{base}/metrics", None, method="GET")
    assert status == 200
    log = server_log.log.read_text()
    assert "Traceback" not in log and "internal error" not in log, log[-5000:]


# -- targeted ---------------------------------------------------------------------------------------
def _fields(doc: dict[str, Any]) -> list[str]:
    return [f["field"] for f in doc["fields"]]


@pytest.mark.parametrize(("where", "value", "field"), [
    (("trajectories", 0, "logprobs"), [-0.1, float("nan"), -0.2, -0.3], "trajectories.0.logprobs"),
    (("trajectories", 0, "logprobs"), [-0.1, float("inf"), -0.2, -0.3], "trajectories.0.logprobs"),
    (("trajectories", 0, "logprobs"), np.array([-0.1, np.nan, -0.2, -0.3], dtype=np.float32), "trajectories.0.logprobs"),
    (("trajectories", 1, "logprobs"), np.array([-np.inf, -0.2], dtype=np.float32), "trajectories.1.logprobs"),
    (("trajectories", 1, "logprobs"), np.array([1e300, -0.2], dtype=np.float64), "trajectories.1.logprobs"),
    (("trajectories", 0, "reward"), float("nan"), "trajectories.0.reward"),
    (("trajectories", 0, "score", "reward"), float("-inf"), "trajectories.0.score.reward"),
    (("trajectories", 0, "timings", "generate"), float("inf"), "trajectories.0.timings.generate"),
])
def test_non_finite_numbers_in_msgpack_rejected(routes: dict[str, str], where: tuple, value: Any, field: str) -> None:
    body = valid_group()
    _get(body, where[:-1])[where[-1]] = value
    status, doc = post_msgpack(routes["groups"], body)
    assert status == 422, doc
    assert field in _fields(doc), doc


def test_unknown_fields_rejected_by_name(routes: dict[str, str]) -> None:
    body = valid_group()
    body["bogus"] = 1
    body["trajectories"][1]["extra_field"] = "x"
    status, doc = post_json(routes["groups"], body)
    assert status == 422, doc
    assert {"bogus", "trajectories.1.extra_field"} <= set(_fields(doc)), doc
    status, doc = post_json(routes["batches"], {"max_groups": 1, "max_group": 2})
    assert status == 422 and "max_group" in _fields(doc), doc
    status, doc = post_json(routes["reset"], {"options": {"splits": "eval"}})
    assert status == 422 and "options.splits" in _fields(doc), doc


@pytest.mark.parametrize("lengths", [(4, 3, 4), (4, 4, 5), (2, 4, 4), (0, 1, 1)])
def test_mismatched_token_lengths_rejected(routes: dict[str, str], lengths: tuple[int, int, int]) -> None:
    n_tokens, n_masks, n_logprobs = lengths
    body = valid_group()
    t = body["trajectories"][0]
    t["tokens"], t["masks"], t["logprobs"] = [1] * n_tokens, [1] * n_masks, [-0.5] * n_logprobs
    for send in (post_json, post_msgpack):
        status, doc = send(routes["groups"], body)
        assert status == 422, doc
        assert "trajectories.0" in _fields(doc) and "equal lengths" in json.dumps(doc), doc
    # the same with numpy arrays over msgpack
    t["tokens"] = np.ones(n_tokens, dtype=np.int32)
    t["logprobs"] = np.full(n_logprobs, -0.5, dtype=np.float32)
    status, doc = post_msgpack(routes["groups"], body)
    assert status == 422 and "trajectories.0" in _fields(doc), doc


def test_too_many_trajectories_is_413(routes: dict[str, str]) -> None:
    body = valid_group()
    body["trajectories"] = [{"tokens": [1, 2], "reward": 0.5}] * 257
    status, doc = post_msgpack(routes["groups"], body)
    assert status == 413 and "trajectories" in _fields(doc), doc
    body["trajectories"] = body["trajectories"][:256]  # the limit itself is fine
    assert post_msgpack(routes["groups"], body)[0] == 200


def test_body_over_size_cap_is_413(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "store", "--max-body-mib", "1", "--verify-workers", "1")
    try:
        body = valid_group()
        body["meta"] = {"padding": "x" * (1 << 20)}
        status, doc = post_json(f"{srv.url}/v1/groups", body)
        assert status == 413, doc
        body["meta"] = {"padding": "x" * ((1 << 20) - 10_000)}  # just under the cap: stored
        assert post_json(f"{srv.url}/v1/groups", body)[0] == 200
        status, doc = checked(f"{srv.url}/v1/envs/arithmetic/verify", b"[" * (2 << 20))
        assert status == 413, doc
        assert checked(f"{srv.url}/healthz", None, method="GET")[0] == 200
    finally:
        srv.stop()


@pytest.mark.parametrize("value", [2**63, 2**64 - 1])
def test_policy_version_beyond_int64_rejected(routes: dict[str, str], value: int) -> None:
    body = valid_group()
    body["policy_version"] = value
    for send in (post_json, post_msgpack):
        status, doc = send(routes["groups"], body)
        assert status == 422 and "policy_version" in _fields(doc), doc


@pytest.mark.parametrize(("where", "value", "field"), [
    (("meta", "blob"), b"\xff\x00", "meta.blob"),
    (("meta", "sampler", "when"), msgpack.Timestamp(1, 0), "meta.sampler.when"),
    (("trajectories", 0, "score", "details"), {"raw": [1, b"x"]}, "trajectories.0.score.details.raw.1"),
    (("meta", "keys"), {b"binary key": 1}, "meta.keys"),
])
def test_non_json_msgpack_values_rejected(routes: dict[str, str], where: tuple, value: Any, field: str) -> None:
    """msgpack may carry values JSON cannot (binary, timestamps); stored, they would break JSON consumers."""
    body = valid_group()
    _get(body, where[:-1])[where[-1]] = value
    status, doc = post_msgpack(routes["groups"], body)
    assert status == 422 and any(f.startswith(field) for f in _fields(doc)), doc  # may name the exact key too


def test_good_groups_survive_bad_ones(server: ServerProcess) -> None:
    base, url = server.url, f"{server.url}/v1/groups"
    before = checked(f"{base}/v1/stats", None, method="GET")[1]
    assert before["queued"] == 0
    good = 0
    rng = np.random.default_rng(0)
    bad_bodies: list[tuple[bytes, str]] = [
        (b"{", JSON), (b"\xc1", MSGPACK), (b"[]", JSON), (b"null", JSON), (b"", JSON),
        (wire.packb({**valid_group(), "trajectories": []}), MSGPACK),
        (wire.packb({**valid_group(), "policy_version": -1}), MSGPACK),
        (_json_bytes({**valid_group(), "group_id": ""}), JSON),
        (_json_bytes({**valid_group(), "trajectories": [{"reward": float("nan")}]}), JSON),
        (wire.packb({**valid_group(), "trajectories": [{"reward": float("nan")}]}), MSGPACK),
        (wire.packb({**valid_group(), "meta": {"b": b"\x00"}}), MSGPACK),
        (wire.packb({**valid_group(), "policy_version": 2**64 - 1}), MSGPACK),
    ]
    for round_ in range(5):
        for data, ctype in bad_bodies:
            status, doc = checked(url, data, ctype)
            assert 400 <= status < 500, doc
            junk = rng.bytes(int(rng.integers(1, 100)))
            assert checked(url, junk, MSGPACK)[0] in (400, 422)
        for send in (post_json, post_msgpack):
            status, doc = send(url, valid_group(f"good-{round_}-{send.__name__}"))
            assert status == 200 and doc["duplicate"] is False, doc
            good += 1
        assert post_json(url, valid_group(f"good-{round_}-post_json"))[1]["duplicate"] is True
    after = checked(f"{base}/v1/stats", None, method="GET")[1]
    assert after["queued"] - before["queued"] == good == 10
    status, doc = checked(f"{base}/v1/batches", _json_bytes({"max_groups": 100}))
    assert status == 200
    assert sorted(g["group_id"] for g in doc["groups"]) == sorted(
        f"good-{r}-{s}" for r in range(5) for s in ("post_json", "post_msgpack"))
