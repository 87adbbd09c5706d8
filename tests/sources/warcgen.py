"""Small WARC/WAT files for tests, written with warcio from hand-made pages."""

from __future__ import annotations

import datetime as dt
import io
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


@dataclass
class Page:
    url: str
    body: bytes = b""
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=lambda: [("Content-Type", "text/html")])
    date: dt.datetime = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    ip: str | None = "127.1.2.3"
    warc_date: str | None = None       # raw WARC-Date override (e.g. an invalid one)


def html(links: list[tuple[str, str, str]], title: str = "T", extra: str = "") -> bytes:
    """A page with <a href=...> links: (href, anchor, rel)."""
    anchors = "".join(f'<p>see <a href="{h}"{f" rel={r!r}" if r else ""}>{a}</a> here</p>'
                      for h, a, r in links)
    return (f"<!DOCTYPE html><html lang=en><head><title>{title}</title>{extra}</head>"
            f"<body><article>{anchors}</article></body></html>").encode()


def _status_line(status: int) -> str:
    reasons = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found",
               410: "Gone", 500: "Internal Server Error", 503: "Service Unavailable"}
    return f"{status} {reasons.get(status, 'Whatever')}"


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write(w: WARCWriter, rec: Any) -> None:
    w.write_record(rec)
    # warcio buffers the block in a SpooledTemporaryFile it never closes (ResourceWarning).
    stream = getattr(rec, "raw_stream", None)
    if stream is not None:
        stream.close()


def write_warc(path: Path, pages: Sequence[Page | tuple[str, Any]], *, gz: bool = True,
               requests: bool = False) -> list[int]:
    """Write pages (and ("revisit", (url, date, of_page_index)) entries); record offsets.

    Returns the byte offset of each entry's record, in order.
    """
    offsets: list[int] = []
    digests: list[str] = []
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        info = w.create_warcinfo_record("test.warc", {"software": "inlink tests"})
        _write(w, info)
        for entry in pages:
            if isinstance(entry, tuple):
                _, (url, when, index) = entry
                rec = w.create_revisit_record(
                    url, digest=digests[index], refers_to_uri="http://x/",
                    refers_to_date=_iso(when))
                rec.rec_headers.replace_header("WARC-Date", _iso(when))
                offsets.append(f.tell())
                digests.append(digests[index])
                _write(w, rec)
                continue
            page = entry
            if requests:
                req = w.create_warc_record(page.url, "request", payload=io.BytesIO(b""),
                                           http_headers=StatusAndHeaders(
                                               "GET / HTTP/1.1", [("Host", "x")],
                                               is_http_request=True))
                _write(w, req)
            headers = StatusAndHeaders(_status_line(page.status), list(page.headers),
                                       protocol="HTTP/1.1")
            warc_headers = {"WARC-Date": page.warc_date or _iso(page.date)}
            if page.ip:
                warc_headers["WARC-IP-Address"] = page.ip
            rec = w.create_warc_record(page.url, "response", payload=io.BytesIO(page.body),
                                       http_headers=headers, warc_headers_dict=warc_headers)
            offsets.append(f.tell())
            digests.append(rec.rec_headers.get_header("WARC-Payload-Digest"))
            _write(w, rec)
    return offsets


def wat_json(url: str, when: dt.datetime, *, status: int = 200,
             links: list[dict[str, str]] | None = None, head: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None, warc_type: str = "response",
             html_meta: bool = True) -> bytes:
    """A Common Crawl style WAT JSON document for one record."""
    response: dict[str, Any] = {
        "Response-Message": {"Status": str(status), "Version": "HTTP/1.1", "Reason": "X"},
        "Headers": headers or {"Content-Type": "text/html"},
        "Entity-Length": "1234",
    }
    if html_meta:
        response["HTML-Metadata"] = {"Head": head or {}, "Links": links or []}
    doc = {"Container": {"Filename": "x.warc.gz", "Compressed": True},
           "Envelope": {"Format": "WARC", "WARC-Header-Metadata": {
               "WARC-Type": warc_type, "WARC-Target-URI": url, "WARC-Date": _iso(when),
               "WARC-IP-Address": "127.9.9.9", "WARC-Payload-Digest": "sha1:ABC"},
               "Payload-Metadata": {"HTTP-Response-Metadata": response}}}
    return orjson.dumps(doc)


def write_wat(path: Path, docs: list[tuple[str, bytes]], *, gz: bool = True) -> list[int]:
    """Write WAT metadata records (url, json bytes); returns their offsets."""
    offsets = []
    with open(path, "wb") as f:
        w = WARCWriter(f, gzip=gz)
        for url, body in docs:
            rec = w.create_warc_record(url, "metadata", payload=io.BytesIO(body),
                                       warc_content_type="application/json")
            offsets.append(f.tell())
            _write(w, rec)
    return offsets


def many_pages(n: int, *, seed: int = 7, day: int = 1, hosts: int = 40,
               links_per_page: int = 12) -> list[Page]:
    """n deterministic pages linking across `hosts` hosts, all fetched on 2026-01-<day>."""
    rng = random.Random(seed)
    pages = []
    for i in range(n):
        links = [(f"https://h{rng.randrange(hosts)}.example/p{rng.randrange(n)}",
                  f"anchor {rng.randrange(50)}", rng.choice(["", "", "nofollow", "ugc"]))
                 for _ in range(links_per_page)]
        when = dt.datetime(2026, 1, day, 0, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=i)
        pages.append(Page(f"https://h{i % hosts}.example/p{i}", html(links, f"page {i}"),
                          date=when, ip=f"127.0.{i % hosts}.1"))
    return pages


def gzip_member_starts(data: bytes) -> list[int]:
    """Member start offsets of a multi-member gzip (by decompressing member by member)."""
    import zlib
    starts, pos = [], 0
    while pos < len(data):
        starts.append(pos)
        d = zlib.decompressobj(31)
        d.decompress(data[pos:])
        pos = len(data) - len(d.unused_data)
    return starts


__all__ = ["Page", "gzip_member_starts", "html", "many_pages", "wat_json",
           "write_warc", "write_wat"]
