"""HTML (+ HTTP headers) -> page facts and outgoing links; pure, no I/O.

Sits between the sources (crawl, WARC) and the index; the hottest code in the project.
Rules, caps and measured speed are documented in docs/extract.md.
"""

from __future__ import annotations

import codecs
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5
from selectolax.lexbor import LexborHTMLParser, LexborNode

from inlink.urls import normalize_url, parse_url, registrable_domain, resolve_link


class LinkKind(StrEnum):
    """What kind of reference a link is; values are DataForSEO's `item_type` vocabulary."""

    ANCHOR = "anchor"        # <a href> with text
    IMAGE = "image"          # <a href> that contains an <img>
    META = "meta"            # <meta http-equiv="refresh" content="N; url=...">
    REDIRECT = "redirect"    # HTTP 3xx Location or HTTP Refresh header (made by the fetcher)
    CANONICAL = "canonical"  # <link rel=canonical> or HTTP `Link: <...>; rel="canonical"`
    ALTERNATE = "alternate"  # <link rel=alternate hreflang=...> (and HTTP Link rel=alternate)


@dataclass(frozen=True, slots=True)
class Link:
    """One distinct outgoing link of a page.

    Identity on a page is (kind, target_key, anchor, image_url): repeats of the same identity
    collapse into one Link whose `links_count` counts them; the first occurrence in document
    order supplies the other fields.
    """

    target_url: str          # absolute URL as resolved (WHATWG href, fragment kept)
    target_key: str          # urls.normalize_url(target_url)
    kind: LinkKind
    anchor: str              # whitespace-collapsed text of the <a>; "" when none
    nofollow: bool           # rel=nofollow, or meta robots / X-Robots-Tag nofollow
    ugc: bool
    sponsored: bool
    alt: str | None          # alt of the first <img> inside the <a> (image links only)
    image_url: str | None    # resolved src of that <img> (image links only)
    text_pre: str            # text before the link in its parent element (<= 100 chars)
    text_post: str           # text after the link in its parent element (<= 100 chars)
    location: str | None     # nearest semantic ancestor: article, nav, footer, ...
    links_count: int         # occurrences of this identity on the page
    hreflang: str | None = None  # alternate links only


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What a fetch of a page tells us, besides its links."""

    url: str                 # the URL fetched (absolute)
    url_key: str             # urls.normalize_url(url)
    status: int              # HTTP status of the fetch
    content_type: str | None
    is_html: bool
    title: str | None
    language: str | None     # primary language subtag, lowercase ("en"), or None
    encoding: str | None     # WHATWG encoding name used to decode ("utf-8", "windows-1251")
    size: int                # body size in bytes as received (before any cap)
    internal_links: int      # <a href> occurrences to the same registrable domain
    external_links: int      # <a href> occurrences to other registrable domains
    noindex: bool            # meta robots / X-Robots-Tag noindex
    nofollow: bool           # meta robots / X-Robots-Tag nofollow
    canonical: str | None    # absolute canonical URL (HTML <link> wins over HTTP Link)
    base_url: str            # the URL relative links were resolved against (<base href>)
    truncated: bool          # body was cut at the decoded-size cap
    links_dropped: int       # distinct links beyond the per-page cap, not returned


@dataclass(frozen=True, slots=True)
class Extraction:
    facts: PageFacts
    links: list[Link]


@dataclass(frozen=True, slots=True)
class ExtractLimits:
    """Caps that keep one hostile page from costing unbounded time or memory."""

    max_bytes: int = 8 * 1024 * 1024  # body bytes decoded and parsed; the rest is cut
    max_links: int = 10_000           # distinct links returned per page
    max_anchor: int = 1_000           # characters of anchor text
    max_alt: int = 1_000              # characters of image alt text
    max_title: int = 1_000            # characters of the title
    context_chars: int = 100          # characters of text_pre / text_post (0: skip them)
    context_siblings: int = 32        # sibling nodes read on each side for text_pre/_post
    max_depth: int = 512              # element nesting; the document is cut where it is deeper


DEFAULT_LIMITS = ExtractLimits()

Headers = Mapping[str, str] | Sequence[tuple[str, str]] | None

# HTML §4.4/§4.3 sectioning and grouping elements DataForSEO reports as `semantic_location`.
SEMANTIC_TAGS = frozenset({
    "article", "aside", "blockquote", "details", "figure", "footer", "form", "header", "main",
    "nav", "section", "summary", "table",
})
# Sibling elements whose text is not page prose (scripts, styles, inert templates).
_NON_TEXT_TAGS = frozenset({"script", "style", "template", "noframes"})
_WS_BYTES = b"\t\n\x0c\r "


# ---------------------------------------------------------------- encodings (WHATWG Encoding)

def _whatwg_from_python(py: str) -> str | None:
    """WHATWG name for a codec name as `map_encoding_to_html5` returns it."""
    name = codecs.lookup(py).name
    special = {
        "utf-8": "utf-8", "utf-16-le": "utf-16le", "utf-16-be": "utf-16be",
        "shift_jis": "shift_jis", "euc_jp": "euc-jp", "iso2022_jp": "iso-2022-jp",
        "gbk": "gbk", "gb18030": "gb18030", "big5": "big5", "euc_kr": "euc-kr",
        "mac-roman": "macintosh", "cp866": "ibm866", "cp874": "windows-874",
        "iso8859-11": "windows-874", "koi8-r": "koi8-r", "koi8-u": "koi8-u",
        "mac-cyrillic": "x-mac-cyrillic",
    }
    if name in special:
        return special[name]
    if name.startswith("cp125"):
        return "windows-" + name[2:]
    if name.startswith("iso8859-"):
        return "iso-8859-" + name[8:]
    return None


# WHATWG decoders are supersets of some Python codecs of the same name (Encoding §10-§14).
_DECODER = {
    "shift_jis": "cp932", "euc-kr": "cp949", "gbk": "gb18030", "big5": "big5hkscs",
    "windows-874": "cp874", "x-mac-cyrillic": "mac-cyrillic", "macintosh": "mac-roman",
    "ibm866": "cp866", "utf-16le": "utf-16-le", "utf-16be": "utf-16-be",
}
_LABELS: dict[str, str | None] = {}


def encoding_from_label(label: str) -> str | None:
    """WHATWG "get an encoding" (Encoding §4.2): label -> WHATWG name, None when unknown.

    Labels WHATWG maps to "replacement" (iso-2022-kr, hz-gb-2312, ...) and x-user-defined are
    treated as unknown: the declaration is ignored and the body is sniffed instead.
    """
    key = label.strip("\t\n\x0c\r ").lower()
    if key in _LABELS:
        return _LABELS[key]
    py = map_encoding_to_html5(key, fallback_utf8=False) if key else None
    name = _whatwg_from_python(py) if py else None
    if name is None and key in ("x-mac-cyrillic", "x-mac-ukrainian"):
        name = "x-mac-cyrillic"
    if len(_LABELS) < 4096:
        _LABELS[key] = name
    return name


def _single_byte(name: str) -> bool:
    return name.startswith(("windows-", "iso-8859-", "koi8-", "x-mac-")) or name in (
        "macintosh", "ibm866")


def _c1_fallback(err: UnicodeError) -> tuple[str, int]:
    # WHATWG single-byte indexes map the holes of windows-125x at 0x80-0x9F to the C1
    # controls (Encoding §9.1); Python's cp125x codecs reject them. Other holes -> U+FFFD.
    if not isinstance(err, UnicodeDecodeError):
        raise err
    chunk = err.object[err.start:err.end]
    return "".join(chr(b) if 0x80 <= b <= 0x9F else "\ufffd" for b in chunk), err.end


codecs.register_error("inlink-c1", _c1_fallback)


def _decode(data: bytes, name: str) -> tuple[str, int]:
    """Decode with a WHATWG encoding; (text, count of U+FFFD produced). Never raises."""
    codec = _DECODER.get(name, name)
    errors = "inlink-c1" if _single_byte(name) else "replace"
    try:
        text = data.decode(codec, errors)
    except (LookupError, UnicodeError):  # pragma: no cover - every name above is a codec
        text = data.decode("cp1252", "inlink-c1")
    return text, text.count("\ufffd")


def _utf8_valid(data: bytes) -> int | None:
    """Length of `data` that is valid UTF-8 when all of it is, ignoring one sequence cut off
    at the very end (a capped or truncated body); None when it is not UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(data) - 3 and err.reason == "unexpected end of data":
            return err.start
        return None
    return len(data)


_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([^"';,\s]+)""", re.IGNORECASE)
_ATTR = re.compile(
    rb"[\t\n\x0c\r /]*(?:>|([^\t\n\x0c\r />][^\t\n\x0c\r /=>]*)[\t\n\x0c\r ]*"
    rb"(?:=[\t\n\x0c\r ]*(?:\"([^\"]*)\"|'([^']*)'|([^\t\n\x0c\r >]*)))?)"
)


def charset_from_content(value: bytes | str) -> str | None:
    """HTML "algorithm for extracting a character encoding from a meta element": label or None."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    low = text.lower()
    pos = 0
    while True:
        at = low.find("charset", pos)
        if at < 0:
            return None
        pos = at + 7
        while pos < len(low) and low[pos] in "\t\n\x0c\r ":
            pos += 1
        if pos < len(low) and low[pos] == "=":
            break
    pos += 1
    while pos < len(low) and low[pos] in "\t\n\x0c\r ":
        pos += 1
    if pos >= len(low):
        return None
    if low[pos] in "\"'":
        end = low.find(low[pos], pos + 1)
        return text[pos + 1:end] if end >= 0 else None
    end = pos
    while end < len(low) and low[end] not in "\t\n\x0c\r ;":
        end += 1
    return text[pos:end] or None


def prescan(head: bytes) -> str | None:
    """HTML §13.2.3.2 "prescan a byte stream to determine its encoding" (first 1,024 bytes)."""
    low = head[:1024].lower()
    if b"<meta" not in low:  # fast path: nothing to find, whatever the comments hide
        return None
    n = len(low)
    pos = 0
    while pos < n:
        lt = low.find(b"<", pos)
        if lt < 0:
            return None
        if low.startswith(b"<!--", lt):
            end = low.find(b"-->", lt + 2)
            if end < 0:
                return None
            pos = end + 3
            continue
        is_meta = low.startswith(b"<meta", lt) and lt + 5 < n and low[lt + 5] in b"\t\n\x0c\r /"
        nxt = low[lt + 1:lt + 2]
        if is_meta or nxt.isalpha() or (nxt == b"/" and low[lt + 2:lt + 3].isalpha()):
            pos = lt + 6
            if not is_meta:  # skip the tag name; its attributes are read and dropped
                pos = lt + 1
                while pos < n and low[pos] not in b"\t\n\x0c\r >":
                    pos += 1
            attrs: dict[bytes, bytes] = {}
            while True:
                m = _ATTR.match(low, pos)
                if m is None or m.end() == pos and pos >= n:
                    return None
                pos = m.end()
                name = m.group(1)
                if name is None:  # ">" ends the tag
                    break
                if name not in attrs:
                    attrs[name] = m.group(2) or m.group(3) or m.group(4) or b""
                if pos >= n:
                    return None
            if is_meta:
                found = _meta_charset(attrs)
                if found is not None:
                    return found
            continue
        if low.startswith((b"<!", b"</", b"<?"), lt):
            gt = low.find(b">", lt)
            if gt < 0:
                return None
            pos = gt + 1
            continue
        pos = lt + 1
    return None


def _meta_charset(attrs: dict[bytes, bytes]) -> str | None:
    charset: str | None = None
    need_pragma: bool | None = None
    got_pragma = attrs.get(b"http-equiv") == b"content-type"
    if b"charset" in attrs:
        charset, need_pragma = attrs[b"charset"].decode("latin-1"), False
    elif b"content" in attrs:
        charset = charset_from_content(attrs[b"content"])
        need_pragma = True if charset is not None else None
    if need_pragma is None or (need_pragma and not got_pragma) or charset is None:
        return None
    name = encoding_from_label(charset)
    if name in ("utf-16le", "utf-16be"):  # a meta cannot be read in UTF-16: it means UTF-8
        return "utf-8"
    return name


def decode_body(body: bytes, http_charset: str | None) -> tuple[str | bytes, str]:
    """Choose the encoding and decode; (text or UTF-8 bytes ready to parse, WHATWG name).

    Order: BOM, HTTP charset, <meta> prescan, then UTF-8 if the bytes are valid UTF-8, else
    the detector. A declaration is overridden when (a) it names a single-byte encoding but
    the body is valid UTF-8 with non-ASCII bytes, or (b) decoding with it replaces more than
    0.5% of the characters and another candidate (the detector's guess, else windows-1252)
    replaces fewer. Returns the body itself when it is valid UTF-8 (no copy).
    """
    return _decode_body(body, http_charset, _utf8_valid)


def _decode_body(body: bytes, http_charset: str | None,
                 utf8_valid: Callable[[bytes], int | None]) -> tuple[str | bytes, str]:
    # utf8_valid: _utf8_valid, or its compiled twin on the native path (no decoded copy).
    for bom, name in ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16be"),
                      (b"\xff\xfe", "utf-16le")):
        if body.startswith(bom):
            return _decode(body[len(bom):], name)[0], name
    declared = encoding_from_label(http_charset) if http_charset else None
    if declared is None:
        declared = prescan(body[:1024])
    if declared is None or declared == "utf-8":
        if utf8_valid(body) is not None:
            return body, "utf-8"
        declared = declared or "utf-8"
    elif _single_byte(declared):
        valid = utf8_valid(body)
        if valid is not None and not body[:valid].isascii():
            return body, "utf-8"
        return _decode(body, declared)[0], declared
    text, bad = _decode(body, declared)
    if bad * 200 <= len(text):
        return text, declared
    guess_py = detect_encoding(body, max_len=65536)
    guess = _whatwg_from_python(guess_py) if guess_py else None
    if guess is None or guess == declared:
        guess = "windows-1252"
    other, other_bad = _decode(body, guess)
    if other_bad < bad:
        return other, guess
    return text, declared


# ---------------------------------------------------------------- nesting guard

# Elements that never stay open in a nest (void, or closed implicitly by a sibling start tag,
# HTML §13.2.6.4.7) do not count towards nesting depth.
_FLAT_TAGS = [
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr", "param", "keygen", "basefont", "bgsound", "frame", "image", "p", "li", "dt",
    "dd", "option", "optgroup", "tr", "td", "th", "tbody", "thead", "tfoot", "colgroup",
    "caption", "rb", "rt", "rp", "rtc", "html", "head", "body",
]


def _tag_key(name: str) -> int:
    raw = name.encode("ascii")[:8].ljust(8, b"\0")
    return int.from_bytes(raw, "little")


_FLAT_KEYS = np.array(sorted(_tag_key(t) for t in _FLAT_TAGS), dtype=np.uint64)
_LONG_NAME = np.uint64(1 << 63)  # marks names longer than 8 bytes (ASCII never sets bit 63)


def nesting_cut(data: bytes, max_depth: int) -> int | None:
    """Offset of the first start tag nested deeper than `max_depth`, or None.

    Lexbor's tree builder checks "has a p element in button scope" for every block start tag
    (HTML §13.2.6.4.7), walking the stack of open elements: 100k nested <div>s take ~45 s.
    This estimates the depth with one vectorised pass over the tags (per tag name, stray end
    tags ignored) so such a document can be cut before parsing.
    """
    arr = np.frombuffer(data, dtype=np.uint8)
    lt = np.flatnonzero(arr == 0x3C)
    if len(lt) <= max_depth:
        return None
    pad = np.concatenate([arr, np.zeros(12, dtype=np.uint8)])
    is_end = pad[lt + 1] == 0x2F
    start = lt + 1 + is_end
    first = pad[start] | 0x20
    tag = (first >= 0x61) & (first <= 0x7A)
    lt, is_end, start = lt[tag], is_end[tag], start[tag]
    if len(lt) <= max_depth:
        return None
    grid = pad[start[:, None] + np.arange(9)]
    valid = ~np.isin(grid, np.frombuffer(b"\t\n\x0c\r />\0", dtype=np.uint8))
    valid = np.logical_and.accumulate(valid, axis=1)
    upper = (grid >= 0x41) & (grid <= 0x5A)
    names = np.where(valid, grid + upper * np.uint8(0x20), np.uint8(0))
    keys = np.ascontiguousarray(names[:, :8]).view("<u8").ravel()
    keys = np.where(valid[:, 8], keys | _LONG_NAME, keys)
    keep = ~np.isin(keys, _FLAT_KEYS)
    lt, keys, delta = lt[keep], keys[keep], np.where(is_end[keep], -1, 1).astype(np.int64)
    m = len(lt)
    if m <= max_depth:
        return None
    # Per tag name: running count of open elements, clipped at zero (a stray end tag closes
    # nothing); summed over names in document order it is the depth estimate.
    order = np.argsort(keys, kind="stable")
    ks, ds = keys[order], delta[order]
    new_group = np.empty(m, dtype=bool)
    new_group[0] = True
    new_group[1:] = ks[1:] != ks[:-1]
    gid = np.cumsum(new_group) - 1
    csum = np.cumsum(ds)
    base = (csum - ds)[new_group]
    run = csum - base[gid]
    big = 2 * m + 2
    shifted = run - gid * big
    low = np.minimum.accumulate(shifted) + gid * big
    clipped = run - np.minimum(low, 0)
    prev = np.empty(m, dtype=np.int64)
    prev[0] = 0
    prev[1:] = clipped[:-1]
    prev[new_group] = 0
    change = np.empty(m, dtype=np.int64)
    change[order] = clipped - prev
    depth = np.cumsum(change)
    over = np.flatnonzero(depth > max_depth)
    return int(lt[over[0]]) if len(over) else None


# ---------------------------------------------------------------- headers and small parsers

def _header_list(headers: Headers) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    out: list[tuple[str, str]] = []
    try:
        for item in items:
            name, value = item
            if isinstance(name, str) and isinstance(value, str):
                out.append((name.strip().lower(), value))
    except (TypeError, ValueError):  # a malformed header list is treated as absent
        return out
    return out


def _first(headers: list[tuple[str, str]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value
    return None


# HTTP header names for which a "name:" prefix in X-Robots-Tag is a directive, not a bot.
_VALUED_DIRECTIVES = frozenset({
    "unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
# Bot groups whose robots directives inlink obeys ("googlebot: noindex" applies to us).
_OUR_BOTS = frozenset({"googlebot", "inlink"})


def robots_flags(values: list[str], *, header: bool) -> tuple[bool, bool]:
    """(noindex, nofollow) from meta robots contents or X-Robots-Tag values."""
    noindex = nofollow = False
    for value in values:
        applies = True
        for token in re.split(r"[,\s]+", value.lower()) if not header else value.lower().split(","):
            token = token.strip()
            if header and ":" in token:
                left, _, right = token.partition(":")
                left = left.strip()
                if left not in _VALUED_DIRECTIVES:
                    applies = left in _OUR_BOTS
                    token = right.strip()
            if not applies:
                continue
            for word in token.split():
                if word in ("noindex", "none"):
                    noindex = True
                if word in ("nofollow", "none"):
                    nofollow = True
    return noindex, nofollow


def refresh_url(content: str) -> str | None:
    """The URL of a refresh declaration (HTML §7.11.1 "shared declarative refresh steps")."""
    ws = "\t\n\x0c\r "
    s, n, pos = content, len(content), 0
    while pos < n and s[pos] in ws:
        pos += 1
    start = pos
    while pos < n and s[pos].isascii() and s[pos].isdigit():
        pos += 1
    if pos == start and not (pos < n and s[pos] == "."):
        return None
    while pos < n and (s[pos] == "." or (s[pos].isascii() and s[pos].isdigit())):
        pos += 1
    if pos >= n:
        return None  # a plain reload: no URL, not a link
    if s[pos] not in ";," + ws:
        return None
    while pos < n and s[pos] in ws:
        pos += 1
    if pos < n and s[pos] in ";,":
        pos += 1
    while pos < n and s[pos] in ws:
        pos += 1
    if pos >= n:
        return None
    url_start = pos
    if s[pos:pos + 3].lower() == "url":
        pos += 3
        while pos < n and s[pos] in ws:
            pos += 1
        if pos < n and s[pos] == "=":
            pos += 1
            while pos < n and s[pos] in ws:
                pos += 1
        else:
            pos = url_start
    quote = s[pos] if pos < n and s[pos] in "\"'" else ""
    url = s[pos + 1:] if quote else s[pos:]
    if quote and quote in url:
        url = url[:url.index(quote)]
    return url or None


_LINK_PARAM = re.compile(r'\s*;\s*([^\s=;,]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^;,]*))?')


def parse_link_header(value: str) -> list[tuple[str, dict[str, str]]]:
    """RFC 8288 §3 `Link` header -> [(uri-reference, {param: value})], malformed parts skipped."""
    out: list[tuple[str, dict[str, str]]] = []
    pos, n = 0, len(value)
    while pos < n:
        lt = value.find("<", pos)
        gt = value.find(">", lt + 1) if lt >= 0 else -1
        if gt < 0:
            break
        uri, pos = value[lt + 1:gt], gt + 1
        params: dict[str, str] = {}
        while (m := _LINK_PARAM.match(value, pos)) is not None and m.end() > pos:
            raw = m.group(2) or ""
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params.setdefault(m.group(1).lower(), raw.strip())
            pos = m.end()
        out.append((uri.strip(), params))
        comma = value.find(",", pos)
        if comma < 0:
            break
        pos = comma + 1
    return out


_XML_ROOTS = (b"<?xml", b"<rss", b"<feed", b"<urlset", b"<sitemapindex", b"<svg")
_UNKNOWN_TYPES = frozenset({"", "unknown/unknown", "application/unknown", "*/*"})


def _looks_html(body: bytes) -> bool:
    """Sniff a body served without a usable Content-Type.

    Looser than MIME Sniffing §7.1 (which lists ~17 tag names): markup that starts with a
    tag or `<!` is HTML unless it is an XML prolog or a feed/sitemap/SVG root, so fragments
    such as `<nav>...` still extract; binary formats (PDF, images) never start with `<`.
    """
    low = body[:512].lstrip(_WS_BYTES)
    if low.startswith((b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe")):
        return True  # a text BOM: decoded below, and its markup decides nothing here
    low = low[:16].lower()
    if not low.startswith(b"<") or low.startswith(_XML_ROOTS):
        return False
    return low[1:2].isalpha() or low[1:2] == b"!"


def _language(lang: str | None) -> str | None:
    if not lang:
        return None
    primary = lang.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary.isascii() and primary.isalpha() and len(primary) <= 8 else None


def collapse(text: str) -> str:
    """Whitespace-collapsed, stripped text (every Unicode whitespace run becomes one space)."""
    return " ".join(text.split())


# ---------------------------------------------------------------- the extractor

_MISSING: tuple[str, str] = ("", "")
# A distinct link before Link() is built: target_url, target_key, kind, anchor, nofollow, ugc,
# sponsored, alt, image_url, text_pre, text_post, location, hreflang.
_Row = tuple[str, str, LinkKind, str, bool, bool, bool, str | None, str | None, str, str,
             str | None, str | None]
_LINK_SELECTOR = "a[href], area[href], link[href], meta, base[href], title, a[href] img"


def _context(node: LexborNode, forward: bool, limits: ExtractLimits,
             texts: dict[int, str]) -> str:
    """text_post (forward) or text_pre: collapsed text of up to `context_siblings` siblings.

    Stops early once the collapsed text is longer than the cap: the kept end of the string
    cannot change after that, so the result equals reading every allowed sibling.
    """
    limit = limits.context_chars
    sib = node.next if forward else node.prev
    if sib is None or limit <= 0:
        return ""
    if sib.tag == "-text":
        # Common case: one text node holds enough. Collapsing a slice is exact here: the
        # collapsed end (or start) of a string never depends on text beyond it once the
        # collapsed slice is longer than the cap.
        text = sib.text()
        piece = collapse(text[:3 * limit] if forward else text[-3 * limit:])
        if len(piece) > limit:
            return piece[:limit].rstrip() if forward else piece[-limit:].lstrip()
    parts: list[str] = []
    total = 0
    budget = limits.context_siblings
    while sib is not None and budget > 0:
        budget -= 1
        tag = sib.tag
        text = ""
        if tag == "-text":
            text = sib.text()
        elif tag is not None and tag[0] != "-" and tag not in _NON_TEXT_TAGS:
            mid = sib.mem_id
            cached = texts.get(mid)
            if cached is None:
                cached = texts[mid] = sib.text()
            text = cached
        if text:
            parts.append(text)
            total += len(text)
            if total > limit and len(collapse("".join(parts if forward else parts[::-1]))) > limit:
                break
        sib = sib.next if forward else sib.prev
    if not parts:
        return ""
    joined = collapse("".join(parts if forward else parts[::-1]))
    return joined[:limit].rstrip() if forward else joined[-limit:].lstrip()


def _location(node: LexborNode, memo: dict[int, str | None]) -> str | None:
    """Nearest ancestor among SEMANTIC_TAGS, memoized per ancestor (links share ancestors)."""
    chain: list[int] = []
    found: str | None = None
    parent = node.parent
    while parent is not None:
        mid = parent.mem_id
        if mid in memo:
            found = memo[mid]
            break
        tag = parent.tag
        if tag in SEMANTIC_TAGS:
            found = tag
            memo[mid] = tag
            break
        chain.append(mid)
        parent = parent.parent
    for mid in chain:
        memo[mid] = found
    return found


class _Page:
    """Per-page state of one extract() call: caches, identities, counters."""

    def __init__(self, page_url: str, limits: ExtractLimits) -> None:
        self.limits = limits
        self.base = page_url
        self.resolved: dict[str, tuple[str, str] | None] = {}
        self.domains: dict[str, str] = {}
        self.page_domain = self.domain_of(normalize_url(page_url))
        self.index: dict[tuple[str, str, str, str | None], int] = {}
        self.rows: list[_Row] = []
        self.counts: list[int] = []
        self.dropped: set[tuple[str, str, str, str | None]] = set()
        self.dropped_native = 0  # distinct <a>/<area> identities the C walk dropped
        self.internal = 0
        self.external = 0

    def resolve(self, href: str | None, base: str | None = None) -> tuple[str, str] | None:
        href = href or ""
        if base is not None:
            return resolve_link(href, base)
        got = self.resolved.get(href, _MISSING)
        if got is _MISSING:
            got = resolve_link(href, self.base)
            if len(self.resolved) < 65536:
                self.resolved[href] = got
        return got

    def domain_of(self, key: str) -> str:
        # Mirrored by domain_for() in _linkwalk.c: change both.
        start = key.index("://") + 3
        end = key.find("/", start)
        authority = key[start:] if end < 0 else key[start:end]
        domain = self.domains.get(authority)
        if domain is None:
            if authority.startswith("["):
                host = authority[:authority.find("]") + 1]
            else:
                host = authority.partition(":")[0]
            domain = self.domains[authority] = registrable_domain(host)
        return domain

    def add(self, ident: tuple[str, str, str, str | None]) -> bool:
        """Count an occurrence; True when it is new and the caller must append its row."""
        at = self.index.get(ident)
        if at is not None:
            self.counts[at] += 1
            return False
        if len(self.rows) >= self.limits.max_links:
            self.dropped.add(ident)
            return False
        return True

    def append(self, ident: tuple[str, str, str, str | None], row: _Row) -> None:
        self.index[ident] = len(self.rows)
        self.rows.append(row)
        self.counts.append(1)


def _rel_flags(rel: str | None) -> tuple[bool, bool, bool]:
    if not rel:
        return False, False, False
    tokens = rel.lower().split()
    return "nofollow" in tokens, "ugc" in tokens, "sponsored" in tokens


def extract(
    body: bytes,
    url: str,
    headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    *,
    status: int = 200,
    limits: ExtractLimits = DEFAULT_LIMITS,
    native: bool | None = None,
) -> Extraction:
    """Page facts and distinct outgoing links of one fetched page.

    Raises InvalidUrl only when `url` is not an absolute http(s) URL; any body and any headers
    are accepted. Deterministic: the same input always gives the same Extraction, whichever
    walk runs (`native`: see use_native; both give identical results).

    >>> ex = extract(b'<a href="/b" rel="nofollow">B</a>', "https://example.com/a")
    >>> (ex.links[0].target_url, ex.links[0].anchor, ex.links[0].nofollow)
    ('https://example.com/b', 'B', True)
    """
    url_key = normalize_url(url)
    page_url = parse_url(url.strip()) or url_key
    hdrs = _header_list(headers)
    content_type = _first(hdrs, "content-type")
    media = content_type.split(";", 1)[0].strip().lower() if content_type is not None else ""
    if media in _UNKNOWN_TYPES:
        is_html = _looks_html(body)
    else:
        is_html = media in ("text/html", "application/xhtml+xml")
    content_language = _first(hdrs, "content-language")
    language = _language(content_language.split(",", 1)[0]) if content_language else None
    noindex, nofollow = robots_flags([v for k, v in hdrs if k == "x-robots-tag"], header=True)
    page = _Page(page_url, limits)
    header_canonical = _header_links(page, hdrs, page_url)
    fast = use_native(native) and _native_limits_ok(limits)

    title: str | None = None
    encoding: str | None = None
    truncated = False
    html_canonical: str | None = None
    if is_html:
        data = body
        if len(data) > limits.max_bytes:
            data, truncated = data[:limits.max_bytes], True
        match = _CHARSET_PARAM.search(content_type) if content_type else None
        doc, encoding = _decode_body(data, match.group(1) if match else None,
                                     _native.utf8_valid if fast else _utf8_valid)
        raw = doc if isinstance(doc, bytes) else doc.encode("utf-8", "replace")
        tags = _native.count_lt(raw) if fast else raw.count(b"<")
        if tags > max(limits.max_depth, 4096):
            cut = (_native.nesting_cut(raw, limits.max_depth) if fast and limits.max_depth >= 0
                   else nesting_cut(raw, limits.max_depth))
            if cut is not None:
                raw, truncated = raw[:cut], True
        tree = LexborHTMLParser(raw)
        root = tree.root
        if root is not None:
            lang = _language(root.attributes.get("lang"))
            language = lang or language
        walk = _walk_native if fast else _walk
        title, html_canonical, meta_noindex, meta_nofollow = walk(page, tree)
        noindex, nofollow = noindex or meta_noindex, nofollow or meta_nofollow

    links = _native.build_links(page.rows, page.counts, nofollow) if fast else [
        Link(r[0], r[1], r[2], r[3], r[4] or nofollow, r[5], r[6], r[7], r[8], r[9], r[10],
             r[11], count, r[12])
        for r, count in zip(page.rows, page.counts, strict=True)
    ]
    facts = PageFacts(
        url=page_url, url_key=url_key, status=status, content_type=content_type,
        is_html=is_html, title=title, language=language, encoding=encoding, size=len(body),
        internal_links=page.internal, external_links=page.external, noindex=noindex,
        nofollow=nofollow, canonical=html_canonical or header_canonical, base_url=page.base,
        truncated=truncated, links_dropped=len(page.dropped) + page.dropped_native,
    )
    return Extraction(facts=facts, links=links)


def _header_links(page: _Page, hdrs: list[tuple[str, str]], page_url: str) -> str | None:
    """HTTP `Link` canonical/alternate links (resolved against the request URL, RFC 8288 §3.1)."""
    canonical: str | None = None
    for name, value in hdrs:
        if name != "link":
            continue
        for uri, params in parse_link_header(value):
            rels = params.get("rel", "").lower().split()
            hreflang = params.get("hreflang", "").strip().lower() or None
            if "canonical" in rels:
                kind, hreflang = LinkKind.CANONICAL, None
            elif "alternate" in rels and hreflang:
                kind = LinkKind.ALTERNATE
            else:
                continue
            got = page.resolve(uri, page_url)
            if got is None:
                continue
            if kind is LinkKind.CANONICAL and canonical is None:
                canonical = got[0]
            _add_head_link(page, kind, got, hreflang, params.get("rel", ""))
    return canonical


def _add_head_link(page: _Page, kind: LinkKind, got: tuple[str, str], hreflang: str | None,
                   rel: str | None) -> None:
    ident = (kind.value, got[1], "", None)
    if page.add(ident):
        nf, ugc, sp = _rel_flags(rel)
        page.append(ident, (got[0], got[1], kind, "", nf, ugc, sp, None, None, "", "", None,
                            hreflang))


def _walk(page: _Page, tree: LexborHTMLParser) -> tuple[str | None, str | None, bool, bool]:
    """Collect links in document order; returns (title, canonical, noindex, nofollow)."""
    limits = page.limits
    title: str | None = None
    canonical: str | None = None
    robots: list[str] = []
    base_href: str | None = None
    # Pass 1: element order, the first <base href>, robots metas and image ownership. URLs
    # are resolved afterwards because a <base> applies to links before it too (HTML §2.4.1).
    pending: list[tuple[str, LexborNode, dict[str, str | None]]] = []
    images: dict[int, LexborNode] = {}
    last_a: LexborNode | None = None
    last_a_index = -1
    for node in tree.css(_LINK_SELECTOR):
        tag = node.tag
        if tag == "a":
            last_a, last_a_index = node, len(pending)
            pending.append((tag, node, node.attributes))
        elif tag == "img":
            if last_a_index not in images and last_a is not None and _owner(node, last_a):
                images[last_a_index] = node
        elif tag == "area" or tag == "link":
            pending.append((tag, node, node.attributes))
        elif tag == "meta":
            attrs = node.attributes
            role = _meta_role(attrs)
            if role == "robots":
                robots.append(attrs["content"] or "")
            elif role == "refresh":
                pending.append((tag, node, attrs))
        elif tag == "base":
            if base_href is None:
                base_href = node.attributes.get("href") or ""
        elif tag == "title" and title is None:
            title = collapse(node.text())[:limits.max_title]
    if base_href is not None:
        # HTML §2.4.1 "frozen base URL": the href parsed against the document URL; a failure
        # leaves the document URL in place.
        page.base = parse_url(base_href, page.base) or page.base
        page.resolved.clear()
    noindex, nofollow = robots_flags(robots, header=False)

    texts: dict[int, str] = {}
    locations: dict[int, str | None] = {}
    page_domain = page.page_domain
    max_anchor = limits.max_anchor
    for i, (tag, node, attrs) in enumerate(pending):
        if tag == "a" or tag == "area":
            got = page.resolve(attrs.get("href"))
            if got is None:
                continue
            if page.domain_of(got[1]) == page_domain:
                page.internal += 1
            else:
                page.external += 1
            if tag == "a":
                anchor = node.text()
                if anchor:
                    anchor = collapse(anchor)[:max_anchor]
            else:
                anchor = collapse(attrs.get("alt") or "")[:max_anchor]
            img = images.get(i)
            alt: str | None = None
            image_url: str | None = None
            if img is not None:
                img_attrs = img.attributes
                src = page.resolve(img_attrs.get("src")) if img_attrs.get("src") else None
                image_url = src[0] if src else None
                raw_alt = img_attrs.get("alt")
                alt = collapse(raw_alt)[:limits.max_alt] if raw_alt is not None else None
            kind = LinkKind.IMAGE if img is not None else LinkKind.ANCHOR
            ident = (kind.value, got[1], anchor, image_url)
            if page.add(ident):
                nf, ugc, sp = _rel_flags(attrs.get("rel"))
                page.append(ident, (
                    got[0], got[1], kind, anchor, nf, ugc, sp, alt, image_url,
                    _context(node, False, limits, texts), _context(node, True, limits, texts),
                    _location(node, locations), None))
        elif tag == "link":
            head = _head_link_kind(attrs)
            if head is None:
                continue
            kind, hreflang = head
            got = page.resolve(attrs.get("href"))
            if got is None:
                continue
            if kind is LinkKind.CANONICAL and canonical is None:
                canonical = got[0]
            _add_head_link(page, kind, got, hreflang, attrs.get("rel"))
        else:  # meta refresh
            target = refresh_url(attrs.get("content") or "")
            got = page.resolve(target) if target else None
            if got is not None:
                _add_head_link(page, LinkKind.META, got, None, None)
    return title, canonical, noindex, nofollow


def _meta_role(attrs: Mapping[str, str | None]) -> str | None:
    """"robots" for a robots/googlebot meta, "refresh" for a refresh declaration, else None
    (a meta without `content` is neither). Shared by both walks."""
    if attrs.get("content") is None:
        return None
    name = (attrs.get("name") or "").strip().lower()
    if name in ("robots", "googlebot"):
        return "robots"
    if (attrs.get("http-equiv") or "").strip().lower() == "refresh":
        return "refresh"
    return None


def _head_link_kind(attrs: Mapping[str, str | None]) -> tuple[LinkKind, str | None] | None:
    """(kind, hreflang) of a <link>, None when it is not a link inlink keeps (both walks)."""
    rels = (attrs.get("rel") or "").lower().split()
    hreflang = (attrs.get("hreflang") or "").strip().lower() or None
    if "canonical" in rels:
        return LinkKind.CANONICAL, None
    if "alternate" in rels and hreflang:
        return LinkKind.ALTERNATE, hreflang
    return None


def _owner(img: LexborNode, anchor: LexborNode) -> bool:
    """True when `anchor` is the nearest <a href> ancestor of `img`."""
    want = anchor.mem_id
    parent = img.parent
    while parent is not None:
        if parent.tag == "a" and parent.attributes.get("href", 0) != 0:
            return parent.mem_id == want
        parent = parent.parent
    return False


# ---------------------------------------------------------------- native fast path
#
# inlink/_linkwalk.c does what _walk does, in C, on the same Lexbor tree; _walk stays the
# reference. The extension is optional (setup.py) and is used only after a self-check on this
# machine's selectolax/ada builds: node layout probe, then both walks on known documents.

_log = logging.getLogger(__name__)
NATIVE_ENV = "INLINK_EXTRACT_NATIVE"
_native: Any = None          # the configured module once the self-check passed
_native_checked = False


def use_native(flag: bool | None = None) -> bool:
    """Whether extract() takes the native walk: `flag` when given (False forces the Python
    walk), else the INLINK_EXTRACT_NATIVE environment variable read now ("0" turns it off);
    in both cases only when the extension is built and passed its self-check."""
    if flag is None:
        flag = os.environ.get(NATIVE_ENV, "1").strip() != "0"
    return flag and native_available()


def native_available() -> bool:
    """True when the native walk is built, loads, and agrees with the Python walk here."""
    if not _native_checked:
        _load_native()
    return _native is not None


def _native_limits_ok(limits: ExtractLimits) -> bool:
    # The C walk assumes sane caps; odd ones (negative slices, no siblings) take the Python
    # walk, whose slicing semantics define them.
    return min(limits.max_links, limits.max_anchor, limits.max_alt, limits.max_title,
               limits.context_chars) >= 0 and 1 <= limits.context_siblings <= 1 << 20


def _walk_native(page: _Page, tree: LexborHTMLParser) -> tuple[str | None, str | None, bool,
                                                               bool]:
    """_walk in C; the parser object is passed along so the tree outlives the call."""
    root = tree.root
    if root is None:
        return None, None, False, False
    title, canonical, robots, page.dropped_native = _native.walk(root.mem_id, tree, page,
                                                                 page.limits)
    noindex, nofollow = robots_flags(robots, header=False)
    return title, canonical, noindex, nofollow


_TAG_PROBE = (
    b"<html><head><title>t</title><base href=x><link href=x><meta name=x><style></style>"
    b"<script></script><noframes></noframes><template></template></head><body>"
    b"<a href=x>a</a><img><map><area href=x></map><article></article><aside></aside>"
    b"<blockquote></blockquote><details><summary></summary></details><figure></figure>"
    b"<footer></footer><form></form><header></header><main></main><nav></nav>"
    b"<section></section><table></table></body></html>"
)

#: Documents both walks must agree on before the native one is used: every rule of
#: docs/extract.md that the C code implements, plus the awkward inputs.
SELF_CHECK_PAGES: tuple[bytes, ...] = (
    b"<!DOCTYPE html><html lang=en><head><title> Self \n check\xe3\x80\x80</title>"
    b"<base href='/base/'><link rel='Canonical' href='c'><link rel=alternate hreflang=DE href=/de>"
    b"<meta name=robots content='nofollow'><meta http-equiv=refresh content='0; url=/m'>"
    b"</head><body><nav><ul><li><a href=/x rel='nofollow UGC'>X</a></li></ul></nav>"
    b"<article><p>Read\xc2\xa0the <!-- c --> <a href='g#i'> getting  started </a> now."
    b"<script>x()</script><a href=g#j>getting started</a><b>bold</b> tail</p>"
    b"<p>" + b"w\xe2\x80\x83" * 80 + b"<a href=//cdn.example.org/i><img src=i.png alt=' A  B '>"
    b"</a>" + b"z " * 80 + b"</p><map><area href=/ar alt=' Area '></map>"
    b"<table><tr><td><a href=javascript:x>js</a><a href='  /sp ace '>ws</a></td></tr></table>"
    b"<svg><a xlink:href=/s>svg</a><nav><a href=/n>n</a></nav></svg>"
    b"<a href=/x\x00y>n\x00ul</a><a href=/q?PHPSESSID=1&a=2;jsessionid=3>q</a>"
    b"<a href=/p%7e%2fq>p</a><a>no</a><a href=https://user@Other.ORG./x>o</a></article>"
    b"<footer><a href=/x rel=\xe2\x80\x83nofollow>X</a>caf\xc3",
    b"<p>" + b'<a href="/a">a</a> ' * 40 + b"</p><template><a href=/t>t</a></template>",
    b"",
    b"<title>only</title>",
)


def _load_native() -> None:
    """Import, configure and self-check the extension once; log why it is not used."""
    global _native, _native_checked
    _native_checked = True
    try:
        from inlink import _linkwalk  # type: ignore[attr-defined]
    except ImportError:
        _log.info("native link walk not built; using the Python walk")
        return
    try:
        import ada_url._ada_wrapper as ada_wrapper
        import selectolax.lexbor as lexbor_module

        from inlink import urls
        from inlink.errors import InvalidUrl

        if getattr(urls, "_ada_lib", None) is None:  # urls then resolves via ada's wrapper
            _log.warning("native link walk disabled: ada-url C API not importable")
            return
        probe = LexborHTMLParser(_TAG_PROBE)
        tags: dict[str, int] = {}
        for name in ("a", "area", "link", "meta", "base", "title", "img", "script", "style",
                     "template", "noframes"):
            node = probe.css_first(name)
            if node is None:
                raise RuntimeError(f"no <{name}> in the tag probe")
            tags[name] = int(node.tag_id)
        text_node = probe.css_first("title").first_child  # type: ignore[union-attr]
        tags["-text"] = int(text_node.tag_id)  # type: ignore[union-attr]
        semantic: dict[int, str] = {}
        for name in sorted(SEMANTIC_TAGS):
            node = probe.css_first(name)
            if node is None:
                raise RuntimeError(f"no <{name}> in the tag probe")
            semantic[int(node.tag_id)] = name
        _linkwalk.configure(
            lexbor_path=lexbor_module.__file__, ada_path=ada_wrapper.__file__, tag_ids=tags,
            semantic=semantic,
            kinds=(LinkKind.ANCHOR, LinkKind.IMAGE, LinkKind.META, LinkKind.CANONICAL),
            key_fn=urls._key_from_href, invalid_url=InvalidUrl,
            max_url_length=urls.MAX_URL_LENGTH, meta_fn=_meta_role, link_fn=_head_link_kind,
            refresh_fn=refresh_url, add_head_fn=_add_head_link, collapse_fn=collapse,
            parse_url_fn=parse_url, domain_fn=registrable_domain,
        )
        names = tuple(f.name for f in dataclasses.fields(Link))
        if Link.__slots__ != names or hasattr(Link, "__post_init__"):
            raise RuntimeError("Link is no longer a plain slots dataclass")
        _linkwalk.configure_links(Link, names)
        _linkwalk.configure_nesting([int(k) for k in _FLAT_KEYS])
        problem = _native_self_check(_linkwalk)
    except Exception as err:  # any failure here only means "use the Python walk"
        problem = f"{type(err).__name__}: {err}"
    if problem:
        _log.warning("native link walk disabled, self-check failed: %s", problem)
        return
    _native = _linkwalk


def _native_self_check(mod: Any) -> str | None:
    """None when the C walk reads this selectolax build correctly; else what differs."""
    global _native
    tree = LexborHTMLParser(SELF_CHECK_PAGES[0])
    root = tree.root
    if root is None or not mod.probe(root.mem_id, tree):
        return "Lexbor node layout differs from the one _linkwalk.c declares"
    for node in root.traverse(include_text=True):
        if mod.text(node.mem_id, tree) != node.text():
            return f"text of <{node.tag}> differs"
    deep = b"<p>" + b"<div><b>" * 300 + b"<br><li>x" + b"</b></div>" * 300 + b"<div>" * 600
    for depth in (0, 7, 512):
        if mod.nesting_cut(deep, depth) != nesting_cut(deep, depth):
            return "nesting_cut differs from the numpy reference"
    _native = mod  # _walk_native reads the module from here
    try:
        for body in SELF_CHECK_PAGES:
            for limits in (DEFAULT_LIMITS, ExtractLimits(context_chars=7, max_anchor=3)):
                want = extract(body, "https://www.example.com/a/p.html", native=False,
                               limits=limits)
                got = extract(body, "https://www.example.com/a/p.html", native=True,
                              limits=limits)
                if got != want:
                    return f"extractions differ on self-check page {body[:40]!r}"
    finally:
        _native = None
    return None
