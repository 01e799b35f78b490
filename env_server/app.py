"""The aiohttp application: thin handlers over `EnvService` and `TrajectoryStore`.

Every body is validated by a pydantic model (unknown fields rejected, numbers finite); a bad request gets a
4xx JSON error naming the fields at fault and changes nothing. Bodies are JSON or msgpack (see `wire`).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from pydantic import BaseModel, ValidationError

import environments
from environments import EpisodeOver, Group

from . import api, wire
from .envs import EnvService, SessionLimit, describe
from .openapi import openapi_document
from .store import TrajectoryStore

MiB = 1 << 20
log = logging.getLogger("lachesis.server")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data/store")
    token: str | None = None  # bearer token; required when binding beyond loopback
    max_body_bytes: int = 64 * MiB
    max_group_size: int = 256  # trajectories per group
    max_trajectory_tokens: int = 1 << 20
    max_verify_items: int = 4096
    max_lease_groups: int = 4096
    lease_seconds: float = 300.0
    verify_workers: int = 2
    verify_timeout: float = 120.0
    max_sessions: int = 10_000
    session_idle_seconds: float = 600.0

    def check(self) -> None:
        if not _is_loopback(self.host) and not self.token:
            raise ValueError(f"binding {self.host!r} (beyond loopback) requires a token: pass --token or set LACHESIS_TOKEN")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HTTPError(Exception):
    def __init__(self, status: int, error: str, fields: list[tuple[str, str]] = ()):
        self.status, self.error, self.fields = status, error, list(fields)


STORE, ENVS, CONFIG, METRICS = (web.AppKey(n, t) for n, t in (
    ("store", TrajectoryStore), ("envs", EnvService), ("config", ServerConfig), ("metrics", dict)))


# -- request/response helpers ------------------------------------------------------------------------
# pydantic puts the union member tried into an error's location (JsonValue fields: "dict", "list", …).
_UNION_TAGS = {"dict", "list", "str", "int", "float", "bool"}


def _field_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"] if p not in _UNION_TAGS), e["msg"]) for e in exc.errors()]


async def parse(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        doc = wire.decode(raw, request.content_type) if raw else {}
    except wire.WireError as exc:
        raise HTTPError(400, str(exc)) from exc
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        raise HTTPError(422, f"invalid {model.__name__}", _field_errors(exc)) from exc


def _accepts_msgpack(request: web.Request) -> bool:
    return wire.MSGPACK in request.headers.get("Accept", "")


def reply(request: web.Request, body: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    content_type = wire.MSGPACK if _accepts_msgpack(request) else wire.JSON
    if isinstance(body, BaseModel):
        body = body.model_dump(mode="python")  # the encoders write numpy arrays (in `info`), pydantic's JSON mode not
    return web.Response(body=wire.encode(body, content_type), status=status, content_type=content_type)


# -- middlewares -------------------------------------------------------------------------------------
@web.middleware
async def errors_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        return await handler(request)
    except HTTPError as exc:
        body = api.ErrorResponse(error=exc.error, fields=[api.ErrorField(field=f, message=m) for f, m in exc.fields])
        return web.json_response(body.model_dump(), status=exc.status)
    except web.HTTPException as exc:  # aiohttp's own: 404, 405, 413 …
        if exc.status < 400:
            raise
        return web.json_response({"error": exc.reason, "fields": []}, status=exc.status)
    except Exception as exc:  # a bug or an I/O failure: logged, and answered as JSON so clients retry
        log.exception("internal error on %s %s", request.method, request.path)
        return web.json_response({"error": f"internal error: {type(exc).__name__}", "fields": []}, status=500)


@web.middleware
async def auth_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    token = request.app[CONFIG].token
    if token and request.path != "/healthz":
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise HTTPError(401, "missing or wrong bearer token (Authorization: Bearer <token>)")
    return await handler(request)


@web.middleware
async def metrics_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    start = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unmatched"
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        m = request.app[METRICS]
        m["requests"].labels(route, request.method, str(status)).inc()
        m["seconds"].labels(route).observe(time.perf_counter() - start)


# -- handlers ----------------------------------------------------------------------------------------
def _spec(name: str) -> environments.EnvSpec:
    try:
        return environments.spec(name)
    except KeyError as exc:
        raise HTTPError(404, exc.args[0]) from exc


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS]["registry"])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def list_envs(request: web.Request) -> web.Response:
    return reply(request, {"envs": [{"name": s.name, "version": s.version, "gym_id": s.gym_id,
                                     "description": s.description} for s in environments.specs()]})


async def describe_env(request: web.Request) -> web.Response:
    return reply(request, describe(_spec(request.match_info["name"])))


async def reset(request: web.Request) -> web.Response:
    name = _spec(request.match_info["name"]).name
    body: api.ResetRequest = await parse(request, api.ResetRequest)
    try:
        session_id, observation, info = await request.app[ENVS].reset(name, body.seed, body.options)
    except SessionLimit as exc:
        raise HTTPError(429, str(exc)) from exc
    except (IndexError, ValueError) as exc:
        raise HTTPError(422, str(exc), [("options", str(exc))]) from exc
    return reply(request, api.ResetResponse(session_id=session_id, observation=observation, info=info))


async def step(request: web.Request) -> web.Response:
    body: api.StepRequest = await parse(request, api.StepRequest)
    try:
        observation, reward, terminated, truncated, info = await request.app[ENVS].step(request.match_info["session_id"], body.action)
    except KeyError as exc:
        raise HTTPError(404, "unknown or expired session") from exc
    except EpisodeOver as exc:
        raise HTTPError(409, str(exc)) from exc
    except ValueError as exc:
        raise HTTPError(422, str(exc), [("action", str(exc))]) from exc
    return reply(request, api.StepResponse(observation=observation, reward=reward, terminated=terminated,
                                           truncated=truncated, info=info))


async def close_session(request: web.Request) -> web.Response:
    try:
        request.app[ENVS].close(request.match_info["session_id"])
    except KeyError as exc:
        raise HTTPError(404, "unknown or expired session") from exc
    return web.json_response({"closed": True})


async def verify(request: web.Request) -> web.Response:
    name = _spec(request.match_info["name"]).name
    cfg = request.app[CONFIG]
    body: api.VerifyRequest = await parse(request, api.VerifyRequest)
    items = [(group.task, completion) for group in body.groups for completion in group.completions]
    if len(items) > cfg.max_verify_items:
        raise HTTPError(413, "too many completions", [("groups", f"at most {cfg.max_verify_items} completions per request")])
    scores = iter(await request.app[ENVS].verify(name, items, cfg.verify_timeout))
    request.app[METRICS]["verified"].inc(len(items))
    return reply(request, api.VerifyResponse(scores=[[next(scores) for _ in g.completions] for g in body.groups]))


async def submit_group(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    group: Group = await parse(request, Group)
    if len(group.trajectories) > cfg.max_group_size:
        raise HTTPError(413, "group too large", [("trajectories", f"at most {cfg.max_group_size} trajectories per group")])
    for i, t in enumerate(group.trajectories):
        if t.num_tokens > cfg.max_trajectory_tokens:
            raise HTTPError(413, "trajectory too long", [(f"trajectories.{i}.tokens", f"at most {cfg.max_trajectory_tokens} tokens")])
    # A msgpack body that validated is stored as sent: re-encoding would cost ~20 % of the server's CPU.
    payload = await request.read() if request.content_type == wire.MSGPACK else None
    duplicate = await request.app[STORE].submit(group, payload)
    request.app[METRICS]["groups"].labels("duplicate" if duplicate else "stored").inc()
    return reply(request, api.SubmitResponse(group_id=group.group_id, duplicate=duplicate))


async def lease(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    body: api.LeaseRequest = await parse(request, api.LeaseRequest)
    max_groups = min(body.max_groups or cfg.max_lease_groups, cfg.max_lease_groups)
    lease_id, payloads = await request.app[STORE].lease(
        max_groups=max_groups, max_tokens=body.max_tokens,
        min_policy_version=body.min_policy_version, lease_seconds=body.lease_seconds)
    if _accepts_msgpack(request):  # stored payloads are msgpack already: splice them in undecoded
        return web.Response(body=wire.pack_with_packed_list({"lease_id": lease_id}, "groups", payloads),
                            content_type=wire.MSGPACK)
    groups = [wire.unpackb(p) for p in payloads]
    return web.Response(body=wire.dumps_json({"lease_id": lease_id, "groups": groups}), content_type=wire.JSON)


async def ack(request: web.Request) -> web.Response:
    lease_id = request.match_info["lease_id"]
    try:
        n = await request.app[STORE].ack(lease_id)
    except KeyError as exc:
        raise HTTPError(409, f"lease {lease_id!r} is unknown or expired (an expired lease's groups are queued again)") from exc
    return reply(request, api.AckResponse(lease_id=lease_id, acknowledged=n))


async def stats(request: web.Request) -> web.Response:
    return reply(request, api.StoreStats(**request.app[STORE].stats(), sessions=len(request.app[ENVS].sessions)))


# -- assembly ----------------------------------------------------------------------------------------
def _metrics(store: TrajectoryStore) -> dict[str, Any]:
    registry = CollectorRegistry()

    class StoreCollector:
        def collect(self):
            for key, value in store.stats().items():
                yield GaugeMetricFamily(f"lachesis_store_{key}", f"trajectory store: {key}", value=value)

    registry.register(StoreCollector())
    return {
        "registry": registry,
        "requests": Counter("lachesis_http_requests", "HTTP requests", ["route", "method", "status"], registry=registry),
        "seconds": Histogram("lachesis_http_request_seconds", "HTTP request latency", ["route"], registry=registry),
        "groups": Counter("lachesis_groups_submitted", "groups submitted", ["result"], registry=registry),
        "verified": Counter("lachesis_verified_items", "completions verified", registry=registry),
    }


async def _sweep_sessions(app: web.Application):
    async def loop() -> None:
        while True:
            await asyncio.sleep(min(30.0, app[CONFIG].session_idle_seconds))
            app[ENVS].close_idle()
            app[STORE].expire()

    task = asyncio.create_task(loop())
    yield
    task.cancel()


async def _close_services(app: web.Application) -> None:
    app[ENVS].shutdown()
    await app[STORE].close()


def create_app(cfg: ServerConfig) -> web.Application:
    cfg.check()
    app = web.Application(client_max_size=cfg.max_body_bytes,
                          middlewares=[metrics_middleware, errors_middleware, auth_middleware])
    store = TrajectoryStore(cfg.data_dir, default_lease_seconds=cfg.lease_seconds)
    app[CONFIG], app[STORE], app[METRICS] = cfg, store, _metrics(store)
    app[ENVS] = EnvService(verify_workers=cfg.verify_workers, max_sessions=cfg.max_sessions,
                           session_idle_seconds=cfg.session_idle_seconds)
    app.cleanup_ctx.append(_sweep_sessions)
    app.on_cleanup.append(_close_services)
    app.add_routes([
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/openapi.json", openapi),
        web.get("/v1/envs", list_envs),
        web.get("/v1/envs/{name}", describe_env),
        web.post("/v1/envs/{name}/reset", reset),
        web.post("/v1/envs/{name}/verify", verify),
        web.post("/v1/sessions/{session_id}/step", step),
        web.delete("/v1/sessions/{session_id}", close_session),
        web.post("/v1/groups", submit_group),
        web.post("/v1/batches", lease),
        web.post("/v1/batches/{lease_id}/ack", ack),
        web.get("/v1/stats", stats),
    ])
    return app


async def serve(cfg: ServerConfig) -> None:
    """Run until SIGTERM/SIGINT, then stop accepting, finish in-flight requests and flush the store."""
    app = create_app(cfg)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"lachesis env server listening on http://{cfg.host}:{port} (data: {cfg.data_dir})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("lachesis env server: shutting down", file=sys.stderr, flush=True)
    await runner.cleanup()
