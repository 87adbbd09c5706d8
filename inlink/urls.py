"""What a URL, a host and a domain are: the one place inlink decides URL identity.

Parsing follows the WHATWG URL Standard (ada-url); registrable domains come from the Public
Suffix List shipped inside the `publicsuffixlist` package (never downloaded at run time).
Everything above this module (extract, index, query, api) asks here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING

import ada_url

from inlink.errors import InvalidUrl

try:  # ada-url's cffi module: the C API the public wrapper calls
    from ada_url._ada_wrapper import ffi as _ada_ffi
    from ada_url._ada_wrapper import lib as _ada_lib
except ImportError:  # pragma: no cover - a future ada-url may move it
    _ada_ffi = _ada_lib = None

if TYPE_CHECKING:
    from publicsuffixlist import PublicSuffixList

#: URLs longer than this (in characters, after resolution) are not indexed. Browsers and
#: crawlers cap around 2-8 KiB; a longer one is a trap or an attack, not a page.
MAX_URL_LENGTH = 8192

#: Query parameters that carry a session, not a resource (compared case-insensitively).
#: Dropping them keeps one page from becoming thousands of keys in the index.
SESSION_PARAMS = frozenset({
    "jsessionid", "phpsessid", "sid", "sessionid", "session_id", "sessid", "aspsessionid",
    "cfid", "cftoken", "oscsid", "zenid", "ps_session", "s_sid",
})
_SESSION_HINT_RE = re.compile(r"sid|sess|cfid|cftoken|zenid", re.IGNORECASE)
# `;jsessionid=...` path parameters (Java servlets) and their cousins.
_PATH_SESSION_RE = re.compile(r";(?:jsessionid|phpsessid|sessionid|sid)=[^/?#]*", re.IGNORECASE)
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_PERCENT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986 section 2.3: percent-encoded unreserved characters are equivalent to the characters.
_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)


def _percent_fix(match: re.Match[str]) -> str:
    hexpair = match.group(1)
    char = chr(int(hexpair, 16))
    return char if char in _UNRESERVED else "%" + hexpair.upper()


def _join(href: str, base: str | None) -> str | None:
    """WHATWG-parse `href` (against `base`); None when it is not a URL."""
    try:
        data = href.encode("utf-8")
        base_data = base.encode("utf-8") if base is not None else None
    except UnicodeError:  # lone surrogates: not representable, so not a URL
        return None
    if _ada_lib is not None:
        # The C API directly, with explicit lengths: a third faster per call than the
        # wrapper's join_url (this runs for every distinct href extracted), and NUL-safe.
        if base_data is None:
            obj = _ada_lib.ada_parse(data, len(data))
        else:
            obj = _ada_lib.ada_parse_with_base(data, len(data), base_data, len(base_data))
        try:
            if not _ada_lib.ada_is_valid(obj):
                return None
            got = _ada_lib.ada_get_href(obj)
            return str(_ada_ffi.unpack(got.data, got.length).decode("utf-8"))
        finally:
            _ada_lib.ada_free(obj)
    return _join_public(href, base)


def _join_public(href: str, base: str | None) -> str | None:
    """The same through ada-url's public wrapper (used when its C API is not importable)."""
    nul = "\x00" in href
    if nul:
        # The wrapper reads C strings and stops at NUL. WHATWG strips leading/trailing C0
        # controls and spaces, percent-encodes NUL inside a path or query, and rejects it
        # inside a host: do the first two here and check the third on the result.
        href = href.strip(_C0_AND_SPACE).replace("\x00", "%00")
    try:
        url = ada_url.join_url(base, href) if base is not None else ada_url.normalize_url(href)
    except (ValueError, UnicodeError, TypeError):
        return None
    if nul and "%00" in _authority(url):
        return None
    return url


def _authority(url: str) -> str:
    start = url.find("//")
    if start < 0:
        return ""
    end = url.find("/", start + 2)
    return url[start + 2:] if end < 0 else url[start + 2:end]


def parse_url(url: str, base: str | None = None) -> str | None:
    """WHATWG-parse any URL (any scheme) and return its serialization, or None on failure.

    The general parser the rest of this module builds on; checked against the
    web-platform-tests URL cases in tests/test_urls.py.
    """
    return _join(url, base)


def _is_http(href: str) -> bool:
    return href.startswith("http://") or href.startswith("https://")


def resolve_url(href: str, base: str) -> str | None:
    """Resolve a link as a browser would; None unless the result is an http(s) URL.

    >>> resolve_url("../b?x=1#top", "https://example.com/a/c/d.html")
    'https://example.com/a/b?x=1#top'
    """
    url = _join(href, base)
    if url is None or not _is_http(url) or len(url) > MAX_URL_LENGTH:
        return None
    return url


_FAST_PATH_BLOCKERS = ("#", "%", ";", "@", "./", ".:")


def _key_from_href_py(href: str) -> str:
    """Normalize a WHATWG-serialized http(s) href into the index key.

    The definition of URL identity. `_key_from_href` below is this function, or its compiled
    twin `inlink._linkwalk.key_from_href` when the extension is built (checked equal by
    tests/test_urls.py; the twin hands any input outside its ASCII common path back here).
    """
    # Most links need nothing beyond the WHATWG serialization: decide that with a few
    # substring scans before doing any slicing (this runs for every link extracted).
    if "?" not in href:
        for blocker in _FAST_PATH_BLOCKERS:
            if blocker in href:
                break
        else:
            return href
    scheme_end = href.index("://") + 3
    path_start = href.find("/", scheme_end)
    if path_start < 0:  # WHATWG always serializes a path for special schemes
        path_start = len(href)
    authority = href[scheme_end:path_start]
    rest = href[path_start:]
    changed = False

    if "@" in authority:  # credentials are not part of a resource's identity
        authority = authority[authority.rindex("@") + 1:]
        changed = True
    if "." in authority and not authority.startswith("["):
        host, sep, port = authority.partition(":")
        if host.endswith("."):  # "example.com." and "example.com" are one host
            authority = host.rstrip(".") + sep + port
            changed = True

    hash_at = rest.find("#")
    if hash_at >= 0:
        rest = rest[:hash_at]
    if ";" in rest:
        fixed = _PATH_SESSION_RE.sub("", rest)
        changed |= fixed != rest
        rest = fixed
    if "%" in rest:
        fixed = _PERCENT_RE.sub(_percent_fix, rest)
        changed |= fixed != rest
        rest = fixed
    query_at = rest.find("?")
    if query_at >= 0:
        query = rest[query_at + 1:]
        if _SESSION_HINT_RE.search(query):
            kept = [p for p in query.split("&")
                    if p.partition("=")[0].lower() not in SESSION_PARAMS
                    and not p.lower().startswith("aspsessionid")]
            query = "&".join(kept)
        rest = rest[:query_at] + ("?" + query if query else "")

    key = href[:scheme_end] + authority + rest
    if changed:
        # Decoding may have produced text the parser serializes differently (a "%2E" that
        # was not a dot segment, an unescaped character): re-parse so the key is a fixpoint.
        again = _join(key, None)
        if again is None or not _is_http(again):
            raise InvalidUrl(href, "normalizes to an unparsable URL")
        if again != key:
            return _key_from_href_py(again)
    return key


_key_from_href = _key_from_href_py
if _ada_lib is not None:
    try:
        import ada_url._ada_wrapper as _ada_module

        from inlink import _linkwalk  # type: ignore[attr-defined]

        _linkwalk.configure_keys(_ada_module.__file__, _key_from_href_py)
        _key_from_href = _linkwalk.key_from_href
    except (ImportError, AttributeError):  # not built, or an older build: the Python twin
        pass


def normalize_url(url: str) -> str:
    """The index key of an absolute http(s) URL; raises InvalidUrl for anything else.

    Lowercase scheme and host, IDNA (punycode), default port dropped, dot segments resolved,
    credentials and fragment dropped, percent-escapes uppercased and unreserved ones decoded,
    session-id parameters dropped, an empty query dropped. http and https stay distinct, and
    `www.` is kept: they are different URLs.

    >>> normalize_url("HTTP://Www.Example.COM:80/a/./b/../%7euser/?PHPSESSID=42#top")
    'http://www.example.com/a/~user/'
    """
    if not isinstance(url, str):
        raise InvalidUrl(repr(url), "not a string")
    href = _join(url.strip(), None)
    if href is None:
        raise InvalidUrl(url, "not a valid absolute URL (WHATWG URL parser rejected it)")
    if not _is_http(href):
        raise InvalidUrl(url, "only http and https URLs can be indexed")
    if len(href) > MAX_URL_LENGTH:
        raise InvalidUrl(url, f"longer than {MAX_URL_LENGTH} characters")
    return _key_from_href(href)


def try_normalize_url(url: str) -> str | None:
    """normalize_url, or None instead of InvalidUrl."""
    try:
        return normalize_url(url)
    except InvalidUrl:
        return None


def resolve_link(href: str, base: str) -> tuple[str, str] | None:
    """Resolve a link and normalize it in one step: (url as seen, key), or None.

    The extractor's hot path: one WHATWG parse, then string work on its serialization.
    """
    url = _join(href, base)
    if url is None or not _is_http(url) or len(url) > MAX_URL_LENGTH:
        return None
    try:
        return url, _key_from_href(url)
    except InvalidUrl:
        return None


def host_of(url: str) -> str:
    """The host of an absolute http(s) URL: lowercase, punycode, no port or trailing dot."""
    key = normalize_url(url)
    authority = key[key.index("://") + 3:]
    authority = authority[: authority.find("/")] if "/" in authority else authority
    if authority.startswith("["):
        return authority[: authority.index("]") + 1]
    return authority.partition(":")[0]


def key_host(key: str) -> str:
    """The host of an index key (a `normalize_url` result), without parsing it again.

    Keys are already lowercase punycode without credentials, so slicing the authority is
    exact; the index writer calls this for every link it writes.
    """
    start = key.index("://") + 3
    end = key.find("/", start)
    return authority_host(key[start:] if end < 0 else key[start:end])


def authority_host(authority: str) -> str:
    """The host of a key's authority (`host`, `host:port`, `[v6]` or `[v6]:port`)."""
    if authority.startswith("["):
        return authority[: authority.index("]") + 1]
    return authority.partition(":")[0]


def is_ip(host: str) -> bool:
    """True for an IPv4 address or a bracketed/bare IPv6 address."""
    candidate = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not candidate or (":" not in candidate and not candidate[-1].isdigit()):
        # A name ends in a letter label; only IPv4 (digits last) or IPv6 (colons) can be
        # addresses. Skips the exception path of ipaddress for the common case.
        return False
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    return True


_psl: PublicSuffixList | None = None


def _suffix_list() -> PublicSuffixList:
    # Loaded on first use from the copy the package ships; publicsuffixlist never fetches.
    global _psl
    if _psl is None:
        from publicsuffixlist import PublicSuffixList

        _psl = PublicSuffixList()
    return _psl


def psl_registrable_domain(host: str) -> str | None:
    """Strict Public Suffix List semantics: None when the host has no registrable domain
    (it is a public suffix itself, a bare TLD, or an IP address)."""
    host = host.lower().rstrip(".")
    if not host or is_ip(host):
        return None
    domain: str | None = _suffix_list().privatesuffix(host)
    return domain


@lru_cache(maxsize=1 << 17)
def registrable_domain(host: str) -> str:
    """The registrable domain ("site") of a host, from the Public Suffix List.

    Private-section suffixes count (blogspot.com, github.io), as in browsers. IP addresses,
    hosts that are themselves public suffixes, and single-label hosts are their own domain.

    >>> registrable_domain("www.shop.example.co.uk")
    'example.co.uk'
    """
    domain = psl_registrable_domain(host)
    return domain if domain else host.lower().rstrip(".")


@lru_cache(maxsize=1 << 16)
def public_suffix(host: str) -> str:
    """The public suffix of a host ("co.uk" for "www.example.co.uk"); "" for IPs."""
    host = host.lower().rstrip(".")
    if not host or is_ip(host):
        return ""
    suffix = _suffix_list().publicsuffix(host)
    return suffix if suffix else host.rpartition(".")[2]


def tld(host: str) -> str:
    """The top-level label of a host ("uk" for "www.example.co.uk"); "" for IPs."""
    host = host.lower().rstrip(".")
    if not host or is_ip(host):
        return ""
    return host.rpartition(".")[2]


def domain_of(url: str) -> str:
    """The registrable domain of an absolute URL."""
    return registrable_domain(host_of(url))


def same_site(host_a: str, host_b: str) -> bool:
    """True when two hosts share a registrable domain (links between them are internal)."""
    return registrable_domain(host_a) == registrable_domain(host_b)


def reverse_host(host: str) -> str:
    """A sort key that groups a domain's hosts together: "www.example.com" -> "com,example,www".

    IP addresses are returned unchanged (their labels are not a hierarchy).
    """
    host = host.lower().rstrip(".")
    if is_ip(host):
        return host
    return ",".join(reversed(host.split(".")))


def subnet24(ip: str) -> str | None:
    """The /24 network ("C-block") of an IPv4 address: "203.0.113.77" -> "203.0.113.0/24".

    None for IPv6 and for anything that is not an address: SEO tools count C-blocks of IPv4.
    """
    parts = ip.split(".")
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 and
                                  (p == "0" or p[0] != "0") for p in parts):
        return None  # not a dotted-quad IPv4 address (IPv6, a name, or junk)
    return f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"
