"""inlink's admin surface: `/admin/jobs` (crawls, ingests and rank runs run by the server),
`/admin/keys`, and the server file through which the CLI finds the server.

Auth: `Authorization: Bearer TOKEN`. The token is `INLINK_ADMIN_TOKEN` when set, else a
random one made for this run of the server and written, with the server's PID and URL, to
the server file beside the index (`<db>.server`, mode 0600): whoever may read that file may
already write the index file itself. Errors are inlink's own envelope
`{"error": {"status", "message", "param"}}` (docs/api.md, "Admin").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response

from inlink.api import keys
from inlink.api.errors import ApiError, Unauthorized, message_of, param_of, status_of
from inlink.api.jobs import JobRunner, QueueFull, parse_job
from inlink.api.params import read_body
from inlink.errors import InvalidInput, NotFound
from inlink.handoff import server_file

log = logging.getLogger("inlink.api")

PREFIX = "/admin"
MAX_ADMIN_BODY = 4 << 20     # an ingest job of 10,000 long paths fits


class ServiceUnavailable(ApiError):
    status = 503


def write_server_file(db: Path, url: str, token: str) -> Path:
    """Write the server file atomically, readable by this user only."""
    path = server_file(db)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"pid": os.getpid(), "url": url, "token": token,
                   "db": str(db.resolve())}, f)
    os.replace(tmp, path)
    return path


def remove_server_file(db: Path) -> None:
    """Remove the server file if it is this process's (a newer server may have replaced it)."""
    path = server_file(db)
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()


def admin_token(env: dict[str, str] | None = None) -> str:
    token = (os.environ if env is None else env).get("INLINK_ADMIN_TOKEN", "").strip()
    return token or secrets.token_urlsafe(32)


def error_response(exc: BaseException) -> Response:
    status = 503 if isinstance(exc, QueueFull) else status_of(exc)
    if status == 500:
        log.error("unhandled error on the admin surface", exc_info=exc)
    body = {"error": {"status": status, "message": message_of(exc) if status != 503
                      else str(exc), "param": param_of(exc)}}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers=headers)


def _ok(body: dict[str, Any], status: int = 200) -> Response:
    # default=str: a job's result may hold paths and dates
    return Response(orjson.dumps(body, default=str, option=orjson.OPT_SERIALIZE_NUMPY),
                    status_code=status, media_type="application/json")


def _check_token(request: Request) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected: str = request.app.state.admin_token
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                             expected.encode()):
        raise Unauthorized("admin calls need 'Authorization: Bearer TOKEN' (the token is in "
                           "the server file beside the index, or INLINK_ADMIN_TOKEN)",
                           "authorization")


def _runner(request: Request) -> JobRunner:
    runner: JobRunner | None = getattr(request.app.state, "jobs", None)
    if runner is None:
        raise ServiceUnavailable("this server runs no jobs")
    return runner


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await read_body(request, MAX_ADMIN_BODY))
    except orjson.JSONDecodeError:
        raise InvalidInput("body", "expected a JSON object") from None


def _guarded(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """An admin handler behind the token check, its every error in the admin envelope.
    (FastAPI reads the handler's own signature through functools.wraps.)"""

    @functools.wraps(handler)
    async def guarded(*args: Any, **kwargs: Any) -> Response:
        try:
            _check_token(kwargs["request"])
            return await handler(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every error in the admin envelope
            return error_response(exc)

    return guarded


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["inlink admin"])

    @r.post("/jobs", summary="Start a crawl, ingest or rank job in the server",
            response_class=Response, status_code=202)
    @_guarded
    async def submit(request: Request) -> Response:
        runner = _runner(request)
        kind, params = await asyncio.to_thread(parse_job, await _json_body(request))
        return _ok({"job": runner.submit(kind, params).view()}, 202)

    @r.get("/jobs", summary="The server's jobs, newest first", response_class=Response)
    @_guarded
    async def list_jobs(request: Request) -> Response:
        return _ok({"jobs": _runner(request).list()})

    @r.get("/jobs/{job_id}", summary="One job: state, progress, result",
           response_class=Response)
    @_guarded
    async def get_job(job_id: str, request: Request) -> Response:
        job = _runner(request).get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} (finished jobs are kept for a while)")
        return _ok({"job": job})

    @r.delete("/jobs/{job_id}", summary="Cancel a job (at its next batch boundary)",
              response_class=Response, status_code=202)
    @_guarded
    async def cancel_job(job_id: str, request: Request) -> Response:
        job = _runner(request).cancel(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return _ok({"job": job}, 202)

    @r.post("/keys", summary="Create an API key (shown once)", response_class=Response,
            status_code=201)
    @_guarded
    async def create(request: Request) -> Response:
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise InvalidInput("body", "expected a JSON object")
        unknown = sorted(set(body) - {"dialect", "credits", "label"})
        if unknown:
            raise InvalidInput(unknown[0], "not a field (fields: dialect, credits, label)")
        credits, label = body.get("credits", 0), body.get("label")
        if isinstance(credits, bool) or not isinstance(credits, int):
            raise InvalidInput("credits", f"expected a whole number, got {credits!r}")
        if label is not None and not isinstance(label, str):
            raise InvalidInput("label", f"expected a string, got {label!r}")
        key = await asyncio.to_thread(keys.create_key, request.app.state.store,
                                      str(body.get("dialect")), credits, label=label)
        return _ok({"key": key, "dialect": body.get("dialect"), "credits": credits}, 201)

    @r.get("/keys", summary="API keys: prefix, dialect, balance", response_class=Response)
    @_guarded
    async def list_all(request: Request) -> Response:
        ledger: keys.Ledger = request.app.state.ledger
        await asyncio.to_thread(ledger.flush)  # balances with the charges so far
        found = await asyncio.to_thread(keys.list_keys, request.app.state.store)
        return _ok({"keys": [asdict(k) for k in found]})

    return r


def mount(app: FastAPI) -> None:
    app.include_router(router())


__all__ = ["PREFIX", "admin_token", "error_response", "mount", "remove_server_file",
           "server_file", "write_server_file"]
