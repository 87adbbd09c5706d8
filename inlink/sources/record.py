"""A fetch record: what any source (our crawler, a WARC/WAT file) says about one URL at one time.

Sources make these; the index turns a batch of them into page rows, link rows and events.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from inlink.extract import Extraction


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where the bytes a link came from can be re-opened.

    For a WARC record: the file, the byte offset of the record and its WARC-Payload-Digest /
    WARC-Record-ID. For our own crawler: the capture WARC it wrote, likewise.
    """

    path: str
    offset: int
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class FetchRecord:
    """One fetch of one URL.

    `status` is None when no HTTP response arrived (`error` says why). For a 3xx,
    `redirect_to` is the resolved Location and `redirect_final_status` the status the chain
    ended with (None when unknown, e.g. a single WARC record; `redirect_loop` when it looped or
    exceeded the hop limit). `extraction` is present for HTML responses that were parsed.
    """

    url: str
    url_key: str
    fetched_at: dt.datetime
    status: int | None
    error: str | None = None
    ip: str | None = None
    country: str | None = None
    content_type: str | None = None
    extraction: Extraction | None = None
    redirect_to: str | None = None
    redirect_final_status: int | None = None
    redirect_loop: bool = False
    robots_disallowed: bool = False
    evidence: Evidence | None = None
    source: str = "crawl"                 # "crawl" | "warc" | "wat" | "import"
    # The index's packed form of this record (index.rows.PackedFetch), when whoever
    # extracted the page already built it (the crawl's extraction workers do); `extraction`
    # may then be None. Opaque here: sources do not depend on the index.
    packed: object | None = None

    @property
    def day(self) -> dt.date:
        """The date this fetch counts for in link history (UTC)."""
        fetched = self.fetched_at
        if fetched.tzinfo is not None:
            fetched = fetched.astimezone(dt.UTC)
        return fetched.date()
