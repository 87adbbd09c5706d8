"""The one ASGI app (`create_app(settings)`): opens the store once, mounts each dialect's
endpoints, checks keys and charges credits, renders json/xml, and turns every error into the
dialect's own envelope (never a stack trace)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from inlink import __version__
from inlink.api import admin, keys
from inlink.api.accesslog import AccessLog
from inlink.api.cache import AnswerCache
from inlink.api.dialects import seranking_data as data
from inlink.api.dialects import seranking_data_openapi as docs
from inlink.api.errors import MethodNotAllowed, Unauthorized, UnknownEndpoint
from inlink.api.exports import Exports
from inlink.api.jobs import JobRunner
from inlink.api.metrics import CONTENT_TYPE as METRICS_TYPE
from inlink.api.metrics import ApiMetrics
from inlink.api.output import check_output, render
from inlink.api.params import Params, read_body
from inlink.errors import InlinkError, InvalidInput, OutOfCredits
from inlink.index.store import Store
from inlink.query import heavy, indexes
from inlink.settings import Settings

log = logging.getLogger("inlink.api")

#: Response headers that say what a call cost and what the key has left (docs/api.md).
COST_HEADER = "X-Credits-Cost"
REMAINING_HEADER = "X-Credits-Remaining"


def create_app(settings: Settings, *, public_url: str | None = None) -> FastAPI:
    """The server: `uvicorn` runs it (`inlink serve`); tests drive it with TestClient.

    `public_url`: where this process's HTTP server listens; when given, the server file
    beside the index tells the CLI how to hand it work (inlink.api.admin)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.db, memory_limit=settings.memory_limit)
        exports: Exports | None = None
        ledger: keys.Ledger | None = None
        jobs: JobRunner | None = None
        advertised = False
        try:
            keys.ensure_schema(store)
            app.state.store = store
            app.state.secret = keys.load_secret(store)
            indexes.ensure(store)  # keyed reads of listings (inlink.query.indexes)
            ledger = keys.Ledger(store)
            ledger.start()
            app.state.ledger = ledger
            exports = Exports(store, ledger, settings.exports_path(), app.state.secret)
            exports.start()
            app.state.exports = exports
            app.state.cache = AnswerCache(settings.api_cache_mb << 20)
            app.state.metrics = ApiMetrics(lambda: _state_for_metrics(app))
            if settings.refresh_aggregates:
                threading.Thread(target=_refresh_if_stale, args=(store,), daemon=True,
                                 name="inlink-aggregates").start()
            # The index file's one writer runs the CLI's crawls, ingests and rank runs.
            jobs = JobRunner(store, settings, after_write=_refresh_if_stale
                             if settings.refresh_aggregates else None)
            jobs.start()
            app.state.jobs = jobs
            app.state.admin_token = admin.admin_token()
            if public_url is not None:
                admin.write_server_file(settings.db, public_url, app.state.admin_token)
                advertised = True
            yield
        finally:
            if advertised:
                admin.remove_server_file(settings.db)
            if jobs is not None:
                jobs.stop()  # the running job stops at its next batch boundary
            if exports is not None:
                exports.stop()
            if ledger is not None:
                ledger.stop()  # writes the last charges back
            store.close()

    app = FastAPI(title="inlink", version=__version__, lifespan=lifespan, docs_url="/docs",
                  description="Self-hosted backlink index; SE Ranking Data API dialect at "
                              "/v1/backlinks (see docs/api.md and docs/compat.md).")

    @app.get("/healthz", tags=["inlink"])
    async def healthz(request: Request) -> dict[str, Any]:
        return {"status": "ok", "version": __version__,
                "answer_cache": request.app.state.cache.stats.as_dict()}

    @app.head("/healthz", include_in_schema=False)  # load balancers often probe with HEAD
    async def healthz_head() -> Response:
        return Response(status_code=200)

    for ep in data.ENDPOINTS:
        handler = _handler(settings, ep)
        for method in ep.methods:  # one route per method: OpenAPI wants unique operation ids
            extra: dict[str, Any] = {"parameters": docs.openapi_parameters(ep.path, method),
                                     "security": [{"apikey": []}, {"token": []}]}
            if method == "POST":
                extra["requestBody"] = docs.openapi_body(ep.path)
            app.add_api_route(data.PREFIX + ep.path, handler, methods=[method],
                              operation_id=f"{handler.__name__}_{method.lower()}",
                              summary=ep.summary, tags=["SE Ranking Data API"],
                              description=f"Cost: {ep.cost} credits per target (seed 001).",
                              response_class=Response, openapi_extra=extra)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            schema.setdefault("components", {})["securitySchemes"] = {
                "apikey": {"type": "apiKey", "in": "query", "name": "apikey"},
                "token": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "`Token KEY`"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/metrics", tags=["inlink"], response_class=Response,
             summary="Prometheus metrics (text exposition format)")
    async def metrics(request: Request) -> Response:
        body = await asyncio.to_thread(request.app.state.metrics.render)
        return Response(body, media_type=METRICS_TYPE)

    @app.get("/export/{token}/{file_name}", tags=["SE Ranking Data API"],
             summary="Download a finished export (.csv.gz)", response_class=Response,
             description="The `download_file` URL that /v1/backlinks/export/status returns "
                         "to the export's owner. If an API key is sent too, it must be the "
                         "owner's.")
    async def export_download(token: str, file_name: str, request: Request) -> Response:
        exports: Exports = request.app.state.exports
        try:
            key = _api_key(request)
        except Unauthorized:
            key = None
        path = await asyncio.to_thread(exports.download_path, token, file_name,
                                       None if key is None else keys.hash_key(key))
        if path is None:
            return _error_response(request, UnknownEndpoint("no such export file (unknown, "
                                                            "expired or not yours)"))
        return FileResponse(path, media_type="application/gzip", filename=file_name)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        if status == 405:
            err: InlinkError = MethodNotAllowed(f"{request.method} is not supported on "
                                                f"{request.url.path}")
        elif status == 404:
            err = UnknownEndpoint(f"no endpoint at {request.url.path}")
        else:
            err = InlinkError(str(getattr(exc, "detail", "")))
        if request.url.path.startswith(admin.PREFIX + "/"):
            return admin.error_response(err)
        return _error_response(request, err)

    async def validation_error(request: Request, exc: Exception) -> Response:
        return _error_response(request, InvalidInput("request", str(exc)))

    async def any_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s", request.url.path)
        return _error_response(request, exc)

    admin.mount(app)

    # One line per request with the API key masked (uvicorn's own would print it).
    app.add_middleware(AccessLog, cost_header=COST_HEADER)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, any_error)
    return app


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: a free one), bound before the server starts
    so its server file can name the real port (`inlink serve`, the demo)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidInput("--host/--port", f"cannot listen on {host}:{port}: "
                                            f"{exc.strerror or exc}") from None
    sock.listen(2048)
    return sock


def local_url(host: str, sock: socket.socket) -> str:
    """The URL a client on this machine uses to reach a server listening on `sock`."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://{f'[{host}]' if ':' in host else host}:{sock.getsockname()[1]}"


def _state_for_metrics(app: FastAPI) -> dict[str, Any]:
    """What /metrics reads from the running server at scrape time."""
    store: Store = app.state.store
    exports = {str(st): int(n) for st, n in store.query(
        "SELECT status, count(*) FROM api_exports GROUP BY 1")}
    return {"cache": app.state.cache.stats.as_dict(), "exports": exports,
            "unwritten": app.state.ledger.unwritten(), "generation": store.generation}


def _refresh_if_stale(store: Store) -> None:
    """Materialize heavy targets' aggregates when the index changed since they were stored
    (answers are computed live meanwhile; inlink.query.heavy)."""
    try:
        if not heavy.is_fresh(store):
            done = heavy.refresh(store)
            log.info("stored aggregates of %d heavy targets in %.1f s", done["targets"],
                     done["seconds"])
    except Exception:
        log.exception("refreshing heavy targets' aggregates failed; answering live")


def _fmt_of(request: Request) -> str:
    try:
        return check_output(request.query_params.get("output"))
    except InvalidInput:
        return "json"


def _error_response(request: Request, exc: BaseException,
                    headers: dict[str, str] | None = None) -> Response:
    status, body = data.render_error(exc)
    content, media_type = render(body, _fmt_of(request))
    if status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Token"}
    return Response(content, status_code=status, media_type=media_type, headers=headers)


def _api_key(request: Request) -> str:
    """The key from `?apikey=` (any case: the seed writes apiKey too) or `Authorization:
    Token KEY`."""
    for name, value in request.query_params.multi_items():
        if name.lower() == "apikey" and value.strip():
            return value.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "token" and value.strip():
        return value.strip()
    raise Unauthorized("missing API key: pass ?apikey=KEY or the header "
                       "'Authorization: Token KEY'", "apikey")


async def _params(request: Request) -> Params:
    query = [(k, v) for k, v in request.query_params.multi_items() if k.lower() != "apikey"]
    body: dict[str, Any] | None = None
    if request.method == "POST":
        raw = await read_body(request)
        if raw.strip():
            try:
                parsed = orjson.loads(raw)  # strict JSON: no NaN/Infinity, valid UTF-8 only
            except orjson.JSONDecodeError:
                raise InvalidInput("body", "the POST body must be a JSON object") from None
            if not isinstance(parsed, dict):
                raise InvalidInput("body", "the POST body must be a JSON object")
            body = parsed
    return Params(query, body, data.ALIASES)


def _handler(settings: Settings, ep: data.Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        began = time.perf_counter()
        try:
            response = await _serve(request, settings, ep)
        except Exception as exc:  # every error in the dialect's envelope
            if not isinstance(exc, InlinkError):
                log.exception("unhandled error on %s", request.url.path)
            response = _error_response(request, exc)
        metrics: ApiMetrics = request.app.state.metrics
        metrics.observe(data.PREFIX + ep.path, request.method, response.status_code,
                        time.perf_counter() - began)
        if response.status_code == 200:
            metrics.charged(data.PREFIX + ep.path, int(response.headers.get(COST_HEADER, 0)))
        return response

    handle.__name__ = "seranking_data_" + ep.path.strip("/").replace("/", "_").replace("-", "_")
    return handle


async def _serve(request: Request, settings: Settings, ep: data.Endpoint) -> Response:
    store: Store = request.app.state.store
    key = _api_key(request)
    key_hash = keys.hash_key(key)
    ledger: keys.Ledger = request.app.state.ledger
    known = ledger.peek(key_hash) or await asyncio.to_thread(ledger.account, key)
    if known is None or known[0] != data.DIALECT:
        raise Unauthorized("unknown API key (Data API keys are UUIDs; Project API keys are "
                           "not accepted here)", "apikey")
    params = await _params(request)
    fmt = check_output(params.text("output"))
    ctx = data.Context(settings.today(), request.app.state.secret, key_hash,
                       request.app.state.exports, str(request.base_url).rstrip("/"))
    prepared = ep.parse(params, ctx)
    cost = ep.cost * prepared.targets
    if known[1] < cost:  # cheap early refusal; the charge below is the real check
        raise OutOfCredits(cost, known[1])
    rendered: tuple[bytes, str] | None = None
    if prepared.charged is not None:
        result, cost, remaining = await asyncio.to_thread(prepared.charged, store, cost)
    else:
        cache: AnswerCache = request.app.state.cache
        ck = cache.key(ep.path, params.items(exclude=("output", "apikey")), ctx.today) \
            if ep.cacheable and cache.enabled else None
        generation = store.generation  # read before answering: a write meanwhile voids it
        cached: dict[str, Any] | None = None if ck is None else cache.get(ck, generation)
        if cached is not None:
            result = cached
        else:
            result = await asyncio.to_thread(prepared.run, store)
            if ck is not None:
                rendered = render(result, fmt)
                size = len(rendered[0]) if fmt == "json" else len(render(result, "json")[0])
                cache.put(ck, generation, result, size)
        # Charged only for an answer: if a concurrent call spent the balance meanwhile, the
        # ledger refuses and nothing is returned.
        remaining = ledger.charge(key_hash, cost)
    content, media_type = rendered or render(result, fmt)
    return Response(content, media_type=media_type,
                    headers={COST_HEADER: str(cost), REMAINING_HEADER: str(remaining)})


__all__ = ["COST_HEADER", "REMAINING_HEADER", "create_app", "listen", "local_url"]
