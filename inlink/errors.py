"""The one exception tree of inlink; the domain raises these, edges (api, cli) render them.

    InlinkError
     +-- InvalidUrl          a string is not an http(s) URL we can index
     +-- InvalidInput        a parameter or option value is out of range or unknown
     +-- NotFound            a target, job or key does not exist
     +-- QueryTooBroad       a query would scan more than the configured limits allow
     +-- OutOfCredits        a key's balance does not cover the call
     +-- FetchError          fetching a URL failed (url, status, cause)
     |    +-- FetchTimeout
     |    +-- RobotsDisallowed
     +-- ArchiveError        a WARC/WAT file or record cannot be read

Exceptions carry data; their messages say what to do next. HTTP statuses and vendor error
envelopes are chosen by each API dialect, never here.
"""

from __future__ import annotations


class InlinkError(Exception):
    """Base of every error inlink raises on purpose."""


class InvalidUrl(InlinkError, ValueError):
    """A string that is not an absolute http(s) URL inlink can index."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        shown = url if len(url) <= 200 else url[:200] + "..."
        super().__init__(f"invalid URL {shown!r}: {reason}")


class InvalidInput(InlinkError, ValueError):
    """A parameter, option or setting with a value inlink does not accept."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        self.message = message
        super().__init__(f"{name}: {message}")


class NotFound(InlinkError):
    """A target, job, key or record that does not exist."""


class QueryTooBroad(InlinkError):
    """A query that would read more than the configured limits allow."""


class OutOfCredits(InlinkError):
    """A key whose balance does not cover the cost of a call."""

    def __init__(self, needed: int, balance: int) -> None:
        self.needed = needed
        self.balance = balance
        super().__init__(f"this call costs {needed} credits and the key has {balance} left")


class FetchError(InlinkError):
    """Fetching a URL failed; `status` is the HTTP status when one was received."""

    def __init__(self, url: str, status: int | None = None, cause: str = "") -> None:
        self.url = url
        self.status = status
        self.cause = cause
        super().__init__(f"fetch of {url} failed" + (f" ({status})" if status else "")
                         + (f": {cause}" if cause else ""))


class FetchTimeout(FetchError):
    """A fetch that ran past its total deadline."""


class RobotsDisallowed(FetchError):
    """A fetch that robots.txt forbids for our user agent."""


class ArchiveError(InlinkError):
    """A WARC/WAT file or record that cannot be read; `offset` locates the damage."""

    def __init__(self, path: str, offset: int | None, cause: str) -> None:
        self.path = path
        self.offset = offset
        self.cause = cause
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{path}{where}: {cause}")
