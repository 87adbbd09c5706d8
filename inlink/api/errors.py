"""HTTP-side errors and the one mapping from inlink's exception tree to HTTP statuses; each
dialect renders the envelope (docs/compat.md), the domain never raises HTTP errors.

    InlinkError (inlink.errors)
     +-- ApiError           an HTTP-only failure with its own status
          +-- Unauthorized  no API key, or a key this server does not know (401)
          +-- MethodNotAllowed, UnknownEndpoint (405, 404)
          +-- PayloadTooLarge  a POST body over MAX_BODY (413)
"""

from __future__ import annotations

from inlink.errors import (
    InlinkError,
    InvalidInput,
    InvalidUrl,
    NotFound,
    OutOfCredits,
    QueryTooBroad,
)


class ApiError(InlinkError):
    """An error that only exists at the HTTP edge; `status` is its HTTP status."""

    status = 400

    def __init__(self, message: str, param: str | None = None) -> None:
        self.message = message
        self.param = param
        super().__init__(message)


class Unauthorized(ApiError):
    """A request without an API key, or with a key that is unknown or of another dialect."""

    status = 401


class MethodNotAllowed(ApiError):
    status = 405


class UnknownEndpoint(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    """A request body over the server's cap (413)."""

    status = 413


def status_of(exc: BaseException) -> int:
    """The HTTP status of an exception: 400 bad input, 401 auth, 402 credits, 404, 413, 500."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, InvalidInput | InvalidUrl):
        return 400
    if isinstance(exc, OutOfCredits):
        return 402
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, QueryTooBroad):
        return 413
    return 500


def param_of(exc: BaseException) -> str | None:
    """The request parameter an error is about, when there is one."""
    if isinstance(exc, InvalidInput):
        return exc.name
    if isinstance(exc, InvalidUrl):
        return "target"
    if isinstance(exc, ApiError):
        return exc.param
    return None


def message_of(exc: BaseException) -> str:
    """What to tell the caller: inlink's own message, never a stack trace or SQL text."""
    if isinstance(exc, InvalidInput):
        return f"{exc.name}: {exc.message}"
    if isinstance(exc, ApiError):
        return exc.message
    if isinstance(exc, InlinkError) and status_of(exc) != 500:
        return str(exc)
    return "internal error; the server log has the details"
