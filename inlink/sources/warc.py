"""WARC and WAT files (gzipped or not, Common Crawl layout) -> raw items -> fetch records.

`iter_records` streams a file with FastWARC and never stops on damage: it yields `Damage`
with the offset and resynchronizes. `to_fetch_record` turns one item into a FetchRecord
(the CPU-heavy half, run in worker processes by inlink.index.ingest). See docs/ingest.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import brotli
import orjson
from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from inlink.errors import ArchiveError, InvalidUrl
from inlink.extract import (
    DEFAULT_LIMITS,
    Extraction,
    ExtractLimits,
    Link,
    LinkKind,
    PageFacts,
    extract,
    refresh_url,
    robots_flags,
)
from inlink.sources.record import Evidence, FetchRecord
from inlink.urls import registrable_domain, resolve_link, resolve_url, try_normalize_url

GZIP_MAGIC = b"\x1f\x8b\x08"
_SCAN_CHUNK = 1 << 20
# Version lines we resynchronize on: WARC/1.0, 1.1 and ClueWeb's WARC/0.18 (and 0.17).
_WARC_LINES = (b"WARC/1.0\r\n", b"WARC/1.1\r\n", b"WARC/1.0\n", b"WARC/1.1\n",
               b"WARC/0.18\r\n", b"WARC/0.17\r\n", b"WARC/0.18\n", b"WARC/0.17\n")
_USED = WarcRecordType.response | WarcRecordType.revisit | WarcRecordType.metadata


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """Caps that keep a hostile or broken archive from costing unbounded memory."""

    max_payload: int = 8 * 1024 * 1024   # decoded payload bytes kept (= extract's max_bytes)
    max_wat_json: int = 16 * 1024 * 1024  # WAT JSON bytes; larger metadata records are damage
    revisit_memory: int = 100_000         # payload digests remembered to resolve revisits
    verify_digests: bool = False          # check WARC-Block-Digest (costs a SHA-1 pass)


DEFAULT_READ_LIMITS = ReadLimits()


@dataclass(frozen=True, slots=True)
class WarcItem:
    """One usable record, as read: cheap to pickle, turned into a FetchRecord elsewhere.

    kind "response" and "revisit" carry the HTTP status, headers and decoded payload;
    kind "wat" carries the WAT JSON in `body` (status/headers come from inside it).
    """

    offset: int                      # byte offset of the record in the file
    kind: str                        # "response" | "revisit" | "wat"
    url: str                         # WARC-Target-URI
    fetched_at: dt.datetime | None   # WARC-Date (HTTP Date when WARC-Date is invalid)
    ip: str | None                   # WARC-IP-Address
    digest: str | None               # WARC-Payload-Digest, else WARC-Record-ID
    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    truncated: bool = False          # payload cut at ReadLimits.max_payload
    original: int | None = None      # revisit: offset of the response whose payload it reuses


@dataclass(frozen=True, slots=True)
class Damage:
    """A record (or run of bytes) that could not be read; counted and skipped."""

    offset: int
    cause: str


@dataclass(slots=True)
class ReadStats:
    """What `iter_records` skipped on purpose (not damage)."""

    skipped: int = 0                 # request, warcinfo, non-JSON metadata, resource, ...
    revisits_unresolved: int = 0
    types: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------- file checks

def _gzip_holds_warc(head: bytes) -> bool:
    try:
        start = zlib.decompressobj(31).decompress(head, 64)
    except zlib.error:
        return False
    return start.lstrip(b"\r\n").startswith(b"WARC/")


def check_archive(path: Path) -> bool:
    """Raise ArchiveError unless `path` starts like a WARC/WAT file; True when gzipped."""
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024)
    except OSError as exc:
        raise ArchiveError(str(path), None,
                           f"cannot read the file: {exc.strerror or exc}") from None
    if not head:
        raise ArchiveError(str(path), 0, "empty file: nothing to ingest")
    if head.startswith(GZIP_MAGIC):
        if _gzip_holds_warc(head):
            return True
        raise ArchiveError(str(path), 0, "a gzip file that does not hold WARC records: "
                                         "pass .warc.gz / .wat.gz files (WARC/1.0, 1.1, 0.18)")
    if head.lstrip(b"\r\n").startswith(b"WARC/"):
        return False
    raise ArchiveError(str(path), 0, "not a WARC or WAT file (no 'WARC/' version line and no "
                                     "gzip header at the start): check the path")


def _find_resync(f: BinaryIO, start: int, gz: bool) -> int | None:
    """Offset of the next plausible record start at or after `start`, or None at EOF.

    gzip: a member header whose first bytes inflate to "WARC/"; plain: a WARC version line.
    """
    pos = start
    while True:
        f.seek(pos)
        chunk = f.read(_SCAN_CHUNK + 64)
        if not chunk:
            return None
        limit = min(len(chunk), _SCAN_CHUNK)
        if gz:
            at = chunk.find(GZIP_MAGIC, 0, limit)
            while at >= 0:
                f.seek(pos + at)
                if _gzip_holds_warc(f.read(4096)):
                    return pos + at
                at = chunk.find(GZIP_MAGIC, at + 1, limit)
        else:
            at = chunk.find(b"WARC/", 0, limit)
            while at >= 0:
                # Not only at line starts: a clipped record runs straight into the next one.
                if chunk.startswith(_WARC_LINES, at):
                    return pos + at
                at = chunk.find(b"WARC/", at + 1, limit)
        if len(chunk) <= _SCAN_CHUNK:
            return None
        pos += _SCAN_CHUNK


def _record_end(f: BinaryIO, offset: int, gz: bool) -> int | None:
    """Where the record at `offset` ends (the next record should start there)."""
    f.seek(offset)
    if gz:
        d = zlib.decompressobj(31)
        used = 0
        try:
            while not d.eof:
                chunk = f.read(1 << 16)
                if not chunk:
                    return None
                d.decompress(chunk, 1 << 16)
                while d.unconsumed_tail and not d.eof:
                    d.decompress(d.unconsumed_tail, 1 << 16)
                used += len(chunk)
        except zlib.error:
            return None
        return offset + used - len(d.unused_data)
    head = f.read(64 * 1024)
    end = head.find(b"\r\n\r\n")
    sep = 4
    if end < 0:
        end, sep = head.find(b"\n\n"), 2
    if end < 0:
        return None
    length = None
    for line in head[:end].split(b"\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                return None
    if length is None:
        return None
    pos = offset + end + sep + length
    f.seek(pos)
    tail = f.read(4)
    return pos + len(tail) - len(tail.lstrip(b"\r\n"))


# ---------------------------------------------------------------------------- payload decoding

def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def _dechunk(data: bytes) -> bytes | None:
    """RFC 9112 §7.1 chunked body -> bytes, or None when `data` is not chunked after all."""
    out: list[bytes] = []
    pos = 0
    while True:
        eol = data.find(b"\n", pos)
        if eol < 0:
            return b"".join(out) if out else None  # clipped mid-chunk: keep what we have
        size_text = data[pos:eol].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return None
        if size == 0:
            return b"".join(out)
        out.append(data[eol + 1:eol + 1 + size])
        pos = eol + 1 + size
        if data.startswith(b"\r\n", pos):
            pos += 2
        elif data.startswith(b"\n", pos):
            pos += 1


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    d = zlib.decompressobj(wbits)
    return d.decompress(data, cap + 1)


def decode_payload(body: bytes, headers: list[tuple[str, str]],
                   cap: int) -> tuple[bytes, bool]:
    """Undo Transfer-Encoding: chunked and Content-Encoding; (payload, truncated at cap).

    Archives often store bodies already decoded while keeping the original headers (ClueWeb;
    Common Crawl renames them X-Crawler-*), so each step applies only when the bytes look
    encoded, and a failed decode keeps the bytes as stored.
    """
    te = (_header(headers, "transfer-encoding") or "").lower()
    if "chunked" in te:
        plain = _dechunk(body)
        if plain is not None:
            body = plain
    ce = (_header(headers, "content-encoding") or "").strip().lower()
    if ce in ("gzip", "x-gzip") and body.startswith(b"\x1f\x8b"):
        with contextlib.suppress(zlib.error):
            body = _inflate(body, 31, cap)
    elif ce == "deflate" and body:
        for wbits in (15, -15):  # zlib-wrapped per RFC 9110 §8.4.1.2; raw deflate in practice
            try:
                body = _inflate(body, wbits, cap)
                break
            except zlib.error:
                continue
    elif ce == "br" and body:
        try:
            body = brotli.Decompressor().process(body, output_buffer_limit=cap + 1)
        except (brotli.error, TypeError):
            try:
                decoded = brotli.decompress(body)
                body = decoded
            except brotli.error:
                pass
    if len(body) > cap:
        return body[:cap], True
    return body, False


# ---------------------------------------------------------------------------- reading

def _http_date(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _fetched_at(rec: WarcRecord, headers: list[tuple[str, str]]) -> dt.datetime | None:
    try:
        when = rec.record_date
    except ValueError:
        when = None
    if when is not None:
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    # ClueWeb09 writes dates like "2008-10-294T05:21:46-0700": fall back to the HTTP Date.
    return _http_date(_header(headers, "date"))


class _Reader:
    """State of one pass over a file: open handles, digest map, counters."""

    def __init__(self, path: Path, limits: ReadLimits, known_digests: Mapping[str, int] | None,
                 stats: ReadStats) -> None:
        self.path = path
        self.limits = limits
        self.stats = stats
        self.digests: dict[str, int] = dict(known_digests or {})

    def remember(self, digest: str, offset: int) -> None:
        if digest in self.digests:
            return
        if len(self.digests) >= self.limits.revisit_memory:
            # Oldest first: revisits usually follow their original closely in crawl order.
            del self.digests[next(iter(self.digests))]
        self.digests[digest] = offset

    def read(self, rec: WarcRecord, offset: int,
             side: BinaryIO) -> tuple[WarcItem | Damage | None, bool]:
        """(item, damage or None to skip; resync=True when the framing is not trusted)."""
        rtype = rec.record_type
        name = str(rtype)
        self.stats.types[name] = self.stats.types.get(name, 0) + 1
        wheaders = rec.headers
        if wheaders.get("WARC-Type") is None or wheaders.get("Content-Length") is None:
            return Damage(offset, "truncated or malformed WARC header block"), True
        if rtype == WarcRecordType.metadata:
            ctype = (wheaders.get("Content-Type") or "").lower()
            if not ctype.startswith("application/json"):
                self.stats.skipped += 1
                return None, False
            return self._read_wat(rec, offset)
        if rtype not in (WarcRecordType.response, WarcRecordType.revisit):
            self.stats.skipped += 1
            return None, False
        if not rec.is_http:
            self.stats.skipped += 1  # e.g. dns: or ftp responses
            return None, False
        if (self.limits.verify_digests and wheaders.get("WARC-Block-Digest")
                and not rec.verify_block_digest(consume=False)):
            return Damage(offset, "WARC-Block-Digest mismatch"), True
        url = (wheaders.get("WARC-Target-URI") or "").strip().strip("<>")
        try:
            rec.parse_http(quirks_mode=True)
        except OSError as exc:
            return Damage(offset, f"bad HTTP header block: {exc}"), False
        http = rec.http_headers
        status = http.status_code if http is not None else None
        headers: list[tuple[str, str]] = (
            [(k.lower(), v) for k, v in http.to_tuples() if k] if http is not None else [])
        revisit = rtype == WarcRecordType.revisit
        if status is None and revisit and not headers:
            pass  # a revisit without HTTP headers: the original's status and headers apply
        elif status is None or not 100 <= status <= 999:
            return Damage(offset, "bad HTTP status line"), False
        fetched_at = _fetched_at(rec, headers)
        if fetched_at is None:
            return Damage(offset, "invalid WARC-Date and no HTTP Date to fall back on"), False
        digest = wheaders.get("WARC-Payload-Digest") or wheaders.get("WARC-Record-ID")
        ip = wheaders.get("WARC-IP-Address") or None
        if revisit:
            return self._revisit(rec, offset, url, fetched_at, ip, digest, status, headers,
                                 side), False
        remaining = rec.content_length
        body = rec.reader.read(self.limits.max_payload + 1)
        if len(body) < min(remaining, self.limits.max_payload + 1):
            return Damage(offset, f"record clipped: {len(body)} of {remaining} payload bytes"), True
        body, truncated = decode_payload(body, headers, self.limits.max_payload)
        pd = wheaders.get("WARC-Payload-Digest")
        if pd:
            self.remember(pd, offset)
        return WarcItem(offset, "response", url, fetched_at, ip, digest, status, headers, body,
                        truncated), False

    def _revisit(self, rec: WarcRecord, offset: int, url: str, fetched_at: dt.datetime,
                 ip: str | None, digest: str | None, status: int | None,
                 headers: list[tuple[str, str]], side: BinaryIO) -> WarcItem | None:
        profile = (rec.headers.get("WARC-Profile") or "").lower()
        payload_digest = rec.headers.get("WARC-Payload-Digest")
        original = self.digests.get(payload_digest) if payload_digest else None
        if "identical-payload-digest" not in profile or original is None:
            self.stats.revisits_unresolved += 1
            return None
        got = _read_payload_at(side, original, self.limits)
        if got is None:
            self.stats.revisits_unresolved += 1
            return None
        orig_status, orig_headers, body, truncated = got
        # A revisit keeps its own HTTP headers when it has them (RFC-style 200 re-fetch);
        # a bare revisit block means "same response as before".
        if status is None or not headers:
            status, headers = orig_status, orig_headers
        return WarcItem(offset, "revisit", url, fetched_at, ip, digest, status, headers, body,
                        truncated, original)

    def _read_wat(self, rec: WarcRecord, offset: int) -> tuple[WarcItem | Damage | None, bool]:
        wheaders = rec.headers
        remaining = rec.content_length
        if remaining > self.limits.max_wat_json:
            return Damage(offset, f"WAT JSON of {remaining} bytes exceeds the cap"), False
        body = rec.reader.read(remaining)
        if len(body) < remaining:
            return Damage(offset, f"record clipped: {len(body)} of {remaining} bytes"), True
        url = (wheaders.get("WARC-Target-URI") or "").strip().strip("<>")
        try:
            when = rec.record_date
        except ValueError:
            when = None
        return WarcItem(offset, "wat", url, when, None, wheaders.get("WARC-Record-ID"), None,
                        [], body), False


def _read_payload_at(f: BinaryIO, offset: int, limits: ReadLimits
                     ) -> tuple[int, list[tuple[str, str]], bytes, bool] | None:
    """Re-read the HTTP response at `offset` (for a revisit); None when it cannot be read."""
    f.seek(offset)
    try:
        for rec in ArchiveIterator(f, parse_http=False, quirks_mode=True):
            rec.parse_http(quirks_mode=True)
            http = rec.http_headers
            if http is None or http.status_code is None:
                return None
            headers = [(k.lower(), v) for k, v in http.to_tuples() if k]
            body = rec.reader.read(limits.max_payload + 1)
            body, truncated = decode_payload(body, headers, limits.max_payload)
            return http.status_code, headers, body, truncated
    except OSError:
        return None
    return None


def _plain_end(f: BinaryIO, offset: int, length: str | None) -> int | None:
    """Where the plain record at `offset` should end, if its framing checks out, else None.

    The block is Content-Length bytes after the header block and must be followed by CRLF
    CRLF: this catches clipped blocks and records overwritten by the next one.
    """
    try:
        size = int(length or "")
    except ValueError:
        return None
    f.seek(offset)
    head = f.read(8192)
    while True:
        cut = head.find(b"\r\n\r\n")
        sep = 4
        if cut < 0:
            cut, sep = head.find(b"\n\n"), 2
        if cut >= 0 or len(head) >= 1 << 20:
            break
        more = f.read(len(head))
        if not more:
            break
        head += more
    if cut < 0:
        return None
    end = offset + cut + sep + size
    f.seek(end)
    tail = f.read(4)
    # WARC 1.1 §5: two CRLFs close the record (LF-only writers exist); EOF is a bare end.
    if tail.startswith(b"\r\n\r\n"):
        return end + 4
    if tail.startswith(b"\n\n"):
        return end + 2
    if tail in (b"", b"\r\n", b"\n"):
        return end + len(tail)
    return None


def _only_blank(f: BinaryIO, start: int, stop: int) -> bool:
    if stop - start > 1 << 16:
        return False
    f.seek(start)
    return not f.read(stop - start).strip(b"\r\n\t \x00")


def iter_records(path: Path | str, *, start_offset: int = 0,
                 limits: ReadLimits = DEFAULT_READ_LIMITS,
                 known_digests: Mapping[str, int] | None = None,
                 stats: ReadStats | None = None) -> Iterator[WarcItem | Damage]:
    """Stream the usable records of a WARC/WAT file from `start_offset`, in file order.

    Yields a WarcItem per response, resolved revisit and WAT metadata record, and a Damage per
    unreadable record or run of bytes (then resumes at the next record found by scanning).
    Skipped records (request, warcinfo, ...) are counted in `stats`. Raises ArchiveError only
    when the file is not a WARC/WAT file at all. `known_digests` (payload digest -> offset of
    a response in this file) lets revisits resolve to records before `start_offset`.
    """
    path = Path(path)
    gz = check_archive(path)
    reader = _Reader(path, limits, known_digests, stats if stats is not None else ReadStats())
    with open(path, "rb") as f, open(path, "rb") as side:
        size = f.seek(0, 2)
        pos: int | None = start_offset
        while pos is not None and pos < size:
            f.seek(pos)
            last: int | None = None
            expected = pos            # plain files: where the next record must start
            failed_at: int | None = None
            try:
                for rec in ArchiveIterator(f, record_types=WarcRecordType.any_type,
                                           parse_http=False, quirks_mode=True):
                    offset = rec.stream_pos
                    if not gz:
                        if offset > expected and not _only_blank(side, expected, offset):
                            # FastWARC skips junk up to a clean version line by itself, and
                            # with it a record glued to the junk: count it, rescan ourselves.
                            yield Damage(expected, f"{offset - expected} unreadable bytes "
                                                   "before the next record")
                            failed_at = expected
                            break
                        end = _plain_end(side, offset, rec.headers.get("Content-Length"))
                        if end is None:
                            yield Damage(offset, "record does not end where its "
                                                 "Content-Length says (clipped or overwritten)")
                            failed_at = offset
                            break
                        expected = end
                    try:
                        item, resync = reader.read(rec, offset, side)
                    except OSError as exc:  # inflate/read error inside the record's block
                        item, resync = Damage(offset, f"unreadable record: {exc}"), True
                    if item is not None:
                        yield item
                    if resync:
                        failed_at = offset
                        break
                    last = offset
                else:
                    # Clean end of the iterator: anything left is a truncated record or junk.
                    tail = expected if not gz else (
                        _record_end(side, last, gz) if last is not None else pos)
                    if tail is not None and tail < size and not _only_blank(side, tail, size):
                        yield Damage(tail, "truncated record or junk at the end of the file")
                    return
            except OSError as exc:
                # Raised while looking for the next record: the damage starts where the last
                # good record ended (or where this pass started).
                at = (_record_end(side, last, gz) if last is not None else pos) if gz \
                    else expected
                failed_at = at if at is not None else (last if last is not None else pos)
                if failed_at >= size:
                    return
                yield Damage(failed_at, f"unreadable data: {exc}")
            pos = _find_resync(side, failed_at + 1, gz)


def file_size(path: Path | str) -> int:
    return Path(path).stat().st_size


# ---------------------------------------------------------------------------- -> FetchRecord

def to_fetch_record(item: WarcItem, path: str,
                    limits: ExtractLimits = DEFAULT_LIMITS) -> FetchRecord | Damage | None:
    """The FetchRecord an item stands for; Damage for bad WAT JSON, None for nothing to index.

    Pure and picklable: runs in worker processes.
    """
    if item.kind == "wat":
        return wat_fetch_record(item, path, limits)
    url_key = try_normalize_url(item.url)
    if url_key is None:
        return None
    assert item.fetched_at is not None
    status = item.status
    ctype = _header(item.headers, "content-type")
    evidence = Evidence(path, item.offset, item.digest)
    redirect_to: str | None = None
    extraction: Extraction | None = None
    if status is not None and 300 <= status < 400:
        location = _header(item.headers, "location")
        if location:
            redirect_to = resolve_url(location.strip(), item.url)
    elif status is not None and 200 <= status < 300:
        try:
            extraction = extract(item.body, item.url, item.headers, status=status, limits=limits)
        except InvalidUrl:
            return None
    return FetchRecord(url=item.url, url_key=url_key, fetched_at=item.fetched_at, status=status,
                       ip=item.ip, content_type=ctype, extraction=extraction,
                       redirect_to=redirect_to, evidence=evidence, source="warc")


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _parse_warc_date(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def wat_fetch_record(item: WarcItem, path: str,
                     limits: ExtractLimits = DEFAULT_LIMITS) -> FetchRecord | Damage | None:
    """A FetchRecord from one WAT metadata record (Common Crawl / webarchive-commons layout).

    Only records describing a `response` are used. Example of the part that is read:

        {"Envelope": {"WARC-Header-Metadata": {"WARC-Type": "response",
            "WARC-Target-URI": "http://a.example/", "WARC-Date": "2024-05-18T01:58:10Z",
            "WARC-IP-Address": "93.184.216.34", "WARC-Payload-Digest": "sha1:..."},
          "Payload-Metadata": {"HTTP-Response-Metadata": {
            "Response-Message": {"Status": "200"}, "Headers": {"Content-Type": "text/html"},
            "HTML-Metadata": {"Head": {"Title": "A", "Base": "/", "Link": [...], "Metas": [...]},
                              "Links": [{"path": "A@/href", "url": "/b", "text": "B",
                                         "rel": "nofollow"}, ...]}}}}}
    """
    try:
        doc = orjson.loads(item.body)
    except orjson.JSONDecodeError as exc:
        return Damage(item.offset, f"invalid WAT JSON: {exc}")
    env = _dig(doc, "Envelope")
    warc = _dig(env, "WARC-Header-Metadata")
    if not isinstance(warc, dict) or warc.get("WARC-Type") != "response":
        return None
    response = _dig(env, "Payload-Metadata", "HTTP-Response-Metadata")
    if not isinstance(response, dict):
        return None
    url = str(warc.get("WARC-Target-URI") or item.url).strip().strip("<>")
    url_key = try_normalize_url(url)
    if url_key is None:
        return None
    fetched_at = _parse_warc_date(warc.get("WARC-Date")) or item.fetched_at
    raw_headers = response.get("Headers")
    headers: list[tuple[str, str]] = []
    if isinstance(raw_headers, dict):
        headers = [(str(k).lower(), str(v)) for k, v in raw_headers.items()]
    if fetched_at is None:
        fetched_at = _http_date(_header(headers, "date"))
    if fetched_at is None:
        return Damage(item.offset, "WAT record without a usable WARC-Date")
    try:
        status: int | None = int(str(_dig(response, "Response-Message", "Status")))
    except ValueError:
        return Damage(item.offset, "WAT record without an HTTP status")
    ctype = _header(headers, "content-type")
    ip = warc.get("WARC-IP-Address") or None
    digest = warc.get("WARC-Payload-Digest") or item.digest
    evidence = Evidence(path, item.offset, digest)
    redirect_to: str | None = None
    extraction: Extraction | None = None
    assert status is not None
    if 300 <= status < 400:
        location = _header(headers, "location")
        if location:
            redirect_to = resolve_url(location.strip(), url)
    elif 200 <= status < 300:
        html = response.get("HTML-Metadata")
        extraction = _wat_extraction(url, url_key, status, ctype, headers,
                                     html if isinstance(html, dict) else None,
                                     response.get("Entity-Length"), limits)
    return FetchRecord(url=url, url_key=url_key, fetched_at=fetched_at, status=status, ip=ip,
                       content_type=ctype, extraction=extraction, redirect_to=redirect_to,
                       evidence=evidence, source="wat")


def _rel_flags(rel: Any) -> tuple[bool, bool, bool]:
    tokens = str(rel).lower().split() if rel else []
    return "nofollow" in tokens, "ugc" in tokens, "sponsored" in tokens


class _WatLinks:
    """Collects links in the same identity/count scheme as extract()."""

    def __init__(self, base: str, page_domain: str, limits: ExtractLimits) -> None:
        self.base = base
        self.page_domain = page_domain
        self.limits = limits
        self.rows: dict[tuple[str, str, str, str | None], list[Any]] = {}
        self.dropped = 0
        self.internal = 0
        self.external = 0

    def resolve(self, href: Any) -> tuple[str, str] | None:
        if not isinstance(href, str) or not href.strip():
            return None
        return resolve_link(href.strip(), self.base)

    def add(self, kind: LinkKind, got: tuple[str, str], anchor: str, rel: Any,
            alt: str | None = None, image_url: str | None = None,
            hreflang: str | None = None) -> None:
        ident = (kind.value, got[1], anchor, image_url)
        row = self.rows.get(ident)
        if row is not None:
            row[-1] += 1
            return
        if len(self.rows) >= self.limits.max_links:
            self.dropped += 1
            return
        nf, ugc, sp = _rel_flags(rel)
        self.rows[ident] = [got[0], got[1], kind, anchor, nf, ugc, sp, alt, image_url, hreflang, 1]

    def count(self, key: str) -> None:
        host = key.split("://", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        if registrable_domain(host) == self.page_domain:
            self.internal += 1
        else:
            self.external += 1


def _text(value: Any, cap: int) -> str:
    return " ".join(str(value).split())[:cap] if value else ""


def _wat_extraction(url: str, url_key: str, status: int, ctype: str | None,
                    headers: list[tuple[str, str]], html: dict[str, Any] | None,
                    entity_length: Any, limits: ExtractLimits) -> Extraction:
    """Page facts and links from WAT HTML-Metadata, mirroring extract() where WAT allows.

    WAT cannot give text_pre/text_post, semantic location or the page language/encoding;
    they stay empty/None. Anchor texts are already cut at 100 characters by the WAT writer.
    """
    is_html = html is not None
    head = html.get("Head") if html else None
    head = head if isinstance(head, dict) else {}
    base = url
    if isinstance(head.get("Base"), str):
        base = resolve_url(head["Base"].strip(), url) or url
    page_domain = registrable_domain(url_key.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0])
    links = _WatLinks(base, page_domain, limits)
    robots = []
    for meta in head.get("Metas") or []:
        if not isinstance(meta, dict):
            continue
        name = str(meta.get("name") or "").strip().lower()
        if name in ("robots", "googlebot") and meta.get("content"):
            robots.append(str(meta["content"]))
    noindex, nofollow = robots_flags(robots, header=False)
    h_noindex, h_nofollow = robots_flags([v for k, v in headers if k == "x-robots-tag"],
                                         header=True)
    noindex, nofollow = noindex or h_noindex, nofollow or h_nofollow

    pending_img: dict[str, Any] | None = None
    for entry in (html.get("Links") or []) if html else []:
        if not isinstance(entry, dict):
            continue
        where = str(entry.get("path") or "")
        if where == "IMG@/src":
            pending_img = entry
            continue
        img, pending_img = pending_img, None
        if where not in ("A@/href", "AREA@/href"):
            continue
        got = links.resolve(entry.get("url"))
        if got is None:
            continue
        links.count(got[1])
        if where == "AREA@/href":
            anchor = _text(entry.get("alt"), limits.max_anchor)
            links.add(LinkKind.ANCHOR, got, anchor, entry.get("rel"))
            continue
        anchor = _text(entry.get("text"), limits.max_anchor)
        # The WAT writer emits an <a> when it closes, right after the <img> inside it; an
        # image directly before a text-less anchor is taken as that anchor's image.
        if img is not None and not anchor:
            src = links.resolve(img.get("url"))
            alt = img.get("alt")
            links.add(LinkKind.IMAGE, got, anchor, entry.get("rel"),
                      _text(alt, limits.max_alt) if alt is not None else None,
                      src[0] if src else None)
        else:
            links.add(LinkKind.ANCHOR, got, anchor, entry.get("rel"))

    canonical: str | None = None
    for entry in head.get("Link") or []:
        if not isinstance(entry, dict):
            continue
        rels = str(entry.get("rel") or "").lower().split()
        hreflang = str(entry.get("hreflang") or "").strip().lower() or None
        if "canonical" in rels:
            kind, hreflang = LinkKind.CANONICAL, None
        elif "alternate" in rels and hreflang:  # same rule as extract(): hreflang alternates
            kind = LinkKind.ALTERNATE
        else:
            continue
        got = links.resolve(entry.get("url"))
        if got is None:
            continue
        if kind is LinkKind.CANONICAL and canonical is None:
            canonical = got[0]
        links.add(kind, got, "", entry.get("rel"), hreflang=hreflang)
    for meta in head.get("Metas") or []:
        if isinstance(meta, dict) and str(meta.get("http-equiv") or "").lower() == "refresh":
            target = refresh_url(str(meta.get("content") or ""))
            got = links.resolve(target) if target else None
            if got is not None:
                links.add(LinkKind.META, got, "", None)

    out = [Link(r[0], r[1], r[2], r[3], r[4] or nofollow, r[5], r[6], r[7], r[8], "", "", None,
                r[10], r[9]) for r in links.rows.values()]
    lang_header = _header(headers, "content-language")
    language = lang_header.split(",", 1)[0].strip().lower().split("-", 1)[0] or None \
        if lang_header else None
    try:
        size = int(str(entity_length))
    except ValueError:
        size = 0
    title = head.get("Title")
    facts = PageFacts(
        url=url, url_key=url_key, status=status, content_type=ctype,
        is_html=is_html,
        title=_text(title, limits.max_title) if isinstance(title, str) else None,
        language=language, encoding=None, size=size, internal_links=links.internal,
        external_links=links.external, noindex=noindex, nofollow=nofollow, canonical=canonical,
        base_url=base, truncated=False, links_dropped=links.dropped)
    return Extraction(facts=facts, links=out)
