"""The OpenAPI 3.1 document of the server, generated from the pydantic request/response models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from environments.types import Group

from . import api

# (method, path, summary, request model, response model)
ROUTES: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel] | None]] = [
    ("post", "/v1/envs/{name}/reset", "Start an episode (a session) of an environment", api.ResetRequest, api.ResetResponse),
    ("post", "/v1/sessions/{session_id}/step", "Send the assistant's message; get the next observation and reward", api.StepRequest, api.StepResponse),
    ("delete", "/v1/sessions/{session_id}", "Close a session", None, None),
    ("post", "/v1/envs/{name}/verify", "Score completions against tasks, statelessly, in a process pool", api.VerifyRequest, api.VerifyResponse),
    ("post", "/v1/groups", "Submit a group; durable before 200; idempotent by group_id", Group, api.SubmitResponse),
    ("post", "/v1/batches", "Lease the oldest queued groups by group count and/or token budget", api.LeaseRequest, api.LeaseResponse),
    ("post", "/v1/batches/{lease_id}/ack", "Acknowledge a lease: its groups are consumed", None, api.AckResponse),
    ("get", "/v1/stats", "Counts of queued, leased, acknowledged and stale groups", None, api.StoreStats),
    ("get", "/v1/envs", "List registered environments", None, None),
    ("get", "/v1/envs/{name}", "Describe an environment, with JSON Schemas of task, action and observation", None, None),
    ("get", "/healthz", "Liveness", None, None),
    ("get", "/metrics", "Prometheus metrics", None, None),
]
BODY_TYPES = ("application/json", "application/msgpack")


@cache
def openapi_document() -> dict[str, Any]:
    models = {m for _, _, _, req, resp in ROUTES for m in (req, resp) if m is not None} | {api.ErrorResponse}
    refs, schema = models_json_schema([(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
                                      ref_template="#/components/schemas/{model}")
    ref = {m: refs[(m, "validation")] for m in models}

    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {t: {"schema": ref[model]} for t in BODY_TYPES}

    error = {"description": "Error naming the fields at fault", "content": content(api.ErrorResponse)}
    paths: dict[str, Any] = {}
    for method, path, summary, req, resp in ROUTES:
        op: dict[str, Any] = {"summary": summary, "responses": {
            "200": {"description": "OK", **({"content": content(resp)} if resp else {})},
            "4XX": error}}
        params = [p.strip("{}") for p in path.split("/") if p.startswith("{")]
        if params:
            op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
        if req is not None:
            op["requestBody"] = {"required": True, "content": content(req)}
        paths.setdefault(path, {})[method] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Lachesis environment server", "version": "1"},
        "components": {"schemas": schema.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }
