"""The native link walk (inlink/_linkwalk.c) against the Python walk it replaces: identical
Extractions on fixtures, hostile pages, generated documents and the benchmark corpus.

Skipped when the extension is not built (`python setup.py build_ext --inplace`)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlink import extract as extract_module
from inlink.extract import (
    DEFAULT_LIMITS,
    SELF_CHECK_PAGES,
    Extraction,
    ExtractLimits,
    collapse,
    extract,
    native_available,
    use_native,
)
from inlink.urls import parse_url, registrable_domain
from tests.test_extract import PAGE, check_invariants, document, header_names, header_values


def test_the_native_walk_is_there_when_required() -> None:
    """.ci/run sets INLINK_REQUIRE_NATIVE: in CI a missing extension is a failure, not a
    skip of every test below."""
    if not os.environ.get("INLINK_REQUIRE_NATIVE"):
        pytest.skip("INLINK_REQUIRE_NATIVE not set")
    assert native_available(), "inlink._linkwalk is not built or failed its self-check"


pytestmark = pytest.mark.skipif(not native_available() and not os.environ.get(
    "INLINK_REQUIRE_NATIVE"), reason="native link walk not built or disabled")

HTML = Path(__file__).parent / "data" / "html"
SMALL = ExtractLimits(max_links=7, max_anchor=5, max_alt=4, max_title=3, context_chars=9,
                      context_siblings=3)


def both(body: bytes, headers: object = None, url: str = PAGE,
         limits: ExtractLimits = DEFAULT_LIMITS) -> Extraction:
    """Extract with both walks, assert they agree, return the native result."""
    want = extract(body, url, headers, limits=limits, native=False)  # type: ignore[arg-type]
    got = extract(body, url, headers, limits=limits, native=True)  # type: ignore[arg-type]
    assert got.facts == want.facts
    assert got.links == want.links
    return got


# ------------------------------------------------------------------ fixtures and rules

@pytest.mark.parametrize("name", sorted(p.name for p in HTML.glob("*.html")))
@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, SMALL], ids=["default", "small"])
def test_fixtures(name: str, limits: ExtractLimits) -> None:
    body = (HTML / name).read_bytes()
    both(body, limits=limits)
    both(body, {"Content-Type": "text/html", "X-Robots-Tag": "nofollow",
                "Link": '</h>; rel="canonical"'}, limits=limits)


@pytest.mark.parametrize("body", SELF_CHECK_PAGES)
def test_self_check_pages(body: bytes) -> None:
    both(body)
    both(body, limits=SMALL)


@pytest.mark.parametrize("html", [
    # context: comments, scripts, styles, templates skipped; element siblings read whole
    "<p>one<!-- c --> two<script>x()</script><a href=/x>X</a><style>.a{}</style> three</p>",
    "<p><b>bold</b> and <i>it<u>al</u></i><a href=/x>X</a><span>s</span><template>t"
    "</template><noframes>n</noframes>after</p>",
    # Unicode whitespace: NBSP, em space, ideographic space, U+0085, U+001C..U+001F, U+200B
    "<p>a\u00a0b\u2003c\u3000d\u0085e\x1cf\x1dg\x1eh\x1fi\u200bj<a href=/x>\u00a0X\u2003Y"
    "\u3000</a>\u2028k\u2029l\u00a0</p>",
    # long contexts: one text node, many small siblings, more than 32 siblings
    "<p>" + "word " * 300 + "<a href=/x>X</a>" + " tail" * 300 + "</p>",
    "<p>" + "<b>ab</b>" * 80 + "<a href=/x>X</a>" + "<i>cd</i>" * 80 + "</p>",
    "<p>" + "x" * 5000 + "<a href=/x>X</a>" + "\u00e9" * 5000 + "</p>",
    "<p>" + " " * 5000 + "y<a href=/x>X</a>" + " " * 5000 + "z</p>",
    "<p>" + "\u4e2d" * 400 + "<a href=/x>X</a>" + "\U0001f600 " * 400 + "</p>",
    # anchors longer than the cap, nested markup, images
    "<a href=/x>" + "<b>long anchor</b> " * 200 + "</a>",
    "<a href=/x>t<img src=/a.png alt=' one  two '><img src=/b.png alt=b></a>",
    "<a href=/x><span><img src='' alt=''></span></a><a href=/y><img alt=noalt></a>",
    "<a href=/x><a href=/y><img src=/i></a></a>",
    "<svg><a href=/s><image href=/i /></a></svg><a href=/o><svg><a><img src=/n></a></svg></a>",
    # rel tokens, ASCII and not
    "<a href=/a rel='NOFOLLOW\x0bugc'>a</a><a href=/b rel='\u2003sponsored\u00a0ugc'>b</a>"
    "<a href=/c rel>c</a><a href=/d rel=''>d</a><a href=/e rel='no\u212afollow'>e</a>",
    # location by nearest semantic ancestor
    "<table><tr><td><form><a href=/f>f</a></form></td></tr></table><details><summary>"
    "<a href=/s>s</a></summary></details><figure><a href=/g>g</a></figure>",
    # head links and metas in the body, several bases
    "<a href=rel1>1</a><base href=/b1/><base href=/b2/><link rel='canonical alternate' "
    "href=c><link rel=alternate href=/feed><meta content='0;url=/r' http-equiv=REFRESH>"
    "<meta name=GoogleBot content='noindex'><meta name=robots><a href=rel2>2</a>",
    "<base href='https://[::1'><a href=x>x</a>",
    "<base><a href=x>x</a>",
    "<title>one</title><title>two</title><svg><title>three</title></svg>",
    "<svg><title>first</title></svg><title>second</title>",
    # URL shapes
    "<a href='  https://EXAMPLE.com:443/%7Euser/./a/../b?SID=1&x=%41#f'>u</a>"
    "<a href='http://user:pw@h.example.net./;jsessionid=9?q'>v</a><a href='//'>w</a>"
    "<a href='https://x.com/" + "a" * 9000 + "'>long</a><a href='http://[::1]:8080/'>ip</a>",
    "<a href='http://xn--nxasmq6b.example/'>idn</a><a href='https://Bücher.example/ü?ü#ü'>u</a>",
])
@pytest.mark.parametrize("limits", [DEFAULT_LIMITS, SMALL], ids=["default", "small"])
def test_rules(html: str, limits: ExtractLimits) -> None:
    both(html.encode(), limits=limits)


def test_dedupe_and_cap_across_kinds() -> None:
    html = ("<link rel=canonical href=/c>" + "".join(
        f'<a href="/p{i % 9}">x</a><meta http-equiv=refresh content="0;url=/m{i}">'
        for i in range(40))).encode()
    ex = both(html, [("Link", "</h>; rel=canonical")], limits=ExtractLimits(max_links=12))
    assert ex.facts.links_dropped > 0


# ------------------------------------------------------------------ hostile pages

HOSTILE = [
    b"<a href='/x\x00y'>n\x00ul</a>\x00\x00",
    "<a href='/\ud800'>\udfff</a>".encode("utf-8", "surrogatepass"),
    b"<a href='/x' title='" + b"z" * 3_000_000 + b"'>big</a>",
    b"<html><head><title>cut", b"<a href='/x'", b"<a href=\"/x\">unterminated",
    b"\xff\xfe<\x00a\x00", b"\xfe\xff\x00<\x00a", b"",
    b"<meta charset=utf-8>" + bytes(range(256)) * 40,
    b"<svg><a href='/s'>svg</a></svg><math><a href=/m>m</a></math>",
    b"<template><a href=/t>t</a></template><noscript><a href=/n>n</a></noscript>",
    b"<base href='javascript:alert(1)'><a href='rel'>r</a><a href='https://ok.com/'>ok</a>",
    # a UTF-8 sequence cut by the end of the body reaches Lexbor's strings undecoded
    b"<p>before<a href=/x>caf\xc3</a>",
    b"<p>before<a href=/x>X</a>after \xe2\x82",
    b"<p>\xf0\x9f\x98<a href=/x>X</a>",
    b"<a href=/x><img src=/i alt='cut \xe2",
    b"<a href=/x rel='nofollow \xc3",
    b"<p>" + b"<b>" * 3000 + b"<a href=/x>deep</a>" + b"</b>" * 3000 + b"text</p>",
]


@pytest.mark.parametrize("body", HOSTILE)
def test_hostile_bodies(body: bytes) -> None:
    check_invariants(both(body))
    both(body, limits=SMALL)


def test_deep_nesting_is_cut_before_the_native_walk() -> None:
    body = b"<div>" * 100_000 + b"<a href=/deep>deep</a>" + b"</div>" * 100_000
    start = time.perf_counter()
    ex = extract(body, PAGE, native=True)
    assert time.perf_counter() - start < 5
    assert ex.facts.truncated


def test_a_million_links() -> None:
    body = b"<p>" + b'<a href="/x">y</a>' * 1_000_000
    start = time.perf_counter()
    ex = extract(body, PAGE, native=True)
    assert time.perf_counter() - start < 5
    assert ex.facts.truncated and len(ex.links) == 1
    assert ex.links[0].links_count == ex.facts.internal_links > 400_000


def test_many_distinct_links_agree() -> None:
    body = b"".join(b'<p>t%d <a href="/p%d">y</a> u</p>' % (i, i) for i in range(12_000))
    ex = both(body)
    assert len(ex.links) == DEFAULT_LIMITS.max_links and ex.facts.links_dropped == 2_000


# ------------------------------------------------------------------ generated documents

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_generated_documents(html: str) -> None:
    both(html.encode(), {"Content-Type": "text/html"})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_generated_documents_small_limits(html: str) -> None:
    both(html.encode(), limits=SMALL)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=3000),
       headers=st.lists(st.tuples(header_names, header_values), max_size=4))
def test_random_bytes(body: bytes, headers: list[tuple[str, str]]) -> None:
    both(body, headers)


MARKUP = st.lists(st.one_of(
    st.sampled_from(["<a href=/x>", "<a href='?q'>", "</a>", "<p>", "</p>", "<b>", "</b>",
                     "<img src=i alt=' a '>", "<nav>", "</nav>", "<!--c-->", "<script>s",
                     "</script>", "<base href=/b/>", "<title>", "</title>", "<svg>", "</svg>",
                     "<link rel=canonical href=c>", "<area href=/ar alt=z>", " ", "\u00a0"]),
    st.text(max_size=12)), max_size=40).map("".join)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MARKUP)
def test_generated_markup_soup(html: str) -> None:
    both(html.encode("utf-8", "surrogatepass"), limits=SMALL)
    both(html.encode("utf-8", "surrogatepass"))


@settings(max_examples=500, deadline=None)
@given(st.text(), st.integers(0, 50))
def test_collapse_matches_python(text: str, cap: int) -> None:
    native = extract_module._native
    assert native is not None
    if any("\ud800" <= c <= "\udfff" for c in text):
        return  # not encodable; the walk never sees such text (Lexbor strings are bytes)
    assert native.collapse(text, cap) == collapse(text)[:cap]
    assert native.collapse(text) == collapse(text)


# Whitespace-heavy text in several siblings on both sides of a link, short context caps: the
# branch-free ASCII collapsing (forwards and backwards) against the Python reading.
SPACEY = st.text(alphabet=" \t\n\x0b\x0c\r\x1cab.\u00a0\u00e9\u3000", max_size=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SPACEY, min_size=7, max_size=7), st.integers(1, 14), st.integers(1, 4))
def test_context_collapsing(parts: list[str], chars: int, siblings: int) -> None:
    t = [p.replace("<", "") for p in parts]
    html = (f"<p>{t[0]}<b>{t[1]}</b>{t[2]}<a href=/x>{t[3]}</a>{t[4]}<i>{t[5]}</i>{t[6]}</p>"
            f"<a href=/y>{t[6]}{t[0]}</a>")
    limits = ExtractLimits(context_chars=chars, context_siblings=siblings, max_anchor=chars)
    both(html.encode(), limits=limits)


@settings(max_examples=300, deadline=None)
@given(SPACEY, st.integers(0, 12))
def test_collapse_matches_python_on_whitespace(text: str, cap: int) -> None:
    native = extract_module._native
    assert native is not None
    assert native.collapse(text, cap) == collapse(text)[:cap]
    assert native.collapse(text) == collapse(text)


# Relative resolution without ada (resolve_simple) against ada on the same base: it may
# decline an href (None) but never disagree.
BASES = st.builds(
    lambda scheme, cred, host, port, path, query, frag: parse_url(
        f"{scheme}://{cred}{host}{port}{path}{query}{frag}"),
    st.sampled_from(["http", "https", "HTTP", "ftp"]), st.sampled_from(["", "u:p@", "u@"]),
    st.sampled_from(["h.example.com", "[::1]", "127.0.0.1", "xn--bcher-kva.example", "h"]),
    st.sampled_from(["", ":8080", ":443", ":80"]),
    st.lists(st.sampled_from(["", "a", "b.html", "..", ".", "%2e", "c;d", "x:y"]),
             max_size=4).map(lambda segs: "/" + "/".join(segs)),
    st.sampled_from(["", "?", "?q=1", "?a/b"]), st.sampled_from(["", "#", "#f", "#a/b"]),
)
SEGMENTS = st.lists(st.sampled_from(["", ".", "..", "a", "b.c", "x:y", "%2e", ".%2E", "~u",
                                     "a b", "\\", "é", "(1)", "=;,+$!*@&"]), max_size=5)
HREFS = st.one_of(
    st.text(alphabet="ab./?#:;@=&%-_~!$'()*+, \t\n\\|^`{}<>\"\x00\u00e9", max_size=16),
    st.builds(lambda lead, segs, tail: lead + "/".join(segs) + tail,
              st.sampled_from(["", "/", "//", "./", "../", "?", "#", "a:", "http:"]), SEGMENTS,
              st.sampled_from(["", "?", "?x=1", "#", "#f/g", "?a#b#c", "/"])),
)


@settings(max_examples=1500, deadline=None)
@given(HREFS, BASES)
def test_simple_resolution_matches_ada(href: str, base: str | None) -> None:
    native = extract_module._native
    assert native is not None
    if base is None:
        return
    got = native.resolve_simple(href, base)
    if got is not None:
        assert got == parse_url(href, base)


def test_simple_resolution_takes_the_usual_hrefs() -> None:
    native = extract_module._native
    assert native is not None
    base = "https://docs.example.org/std/index.html?x#y"
    for href in ("../a/b.html#m", "/x", "p?q=1", "#top", "?page=2", "", "a//b/./c/.."):
        assert native.resolve_simple(href, base) == parse_url(href, base)
    for href in ("https://a.example/", "//cdn.example/x", " x", "a b", "%2e%2e/x", "mailto:x"):
        assert native.resolve_simple(href, base) is None


UTF8_TAILS = st.binary(max_size=6) | st.text(max_size=8).map(
    lambda t: t.encode("utf-8", "surrogatepass"))


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=40), UTF8_TAILS, st.integers(0, 4))
def test_utf8_valid_twin(head: bytes, tail: bytes, cut: int) -> None:
    native = extract_module._native
    assert native is not None
    for data in (head, tail, tail[:len(tail) - cut], b"a" * 37 + tail[:len(tail) - cut],
                 head + tail):
        assert native.utf8_valid(data) == extract_module._utf8_valid(data)


# The C walk calls a link external without the PSL when its host neither is the page's
# registrable domain nor ends with "." + it; that needs a registrable domain to be its host
# or a label-aligned suffix of it.
HOSTS = ["example.com", "www.example.com", "a.b.example.co.uk", "co.uk", "uk", "github.io",
         "user.github.io", "x.user.github.io", "blogspot.com", "a.blogspot.com", "localhost",
         "127.0.0.1", "[::1]", "xn--bcher-kva.example", "a.xn--p1ai", "x.s3.amazonaws.com",
         "a..b.example.com", "1.2.3.4.example", "foo.appspot.com", "com", "a.b.c.d.e.f.g"]


@pytest.mark.parametrize("host", HOSTS)
def test_registrable_domain_is_a_label_suffix(host: str) -> None:
    domain = registrable_domain(host)
    assert domain == host or host.endswith("." + domain)


@pytest.mark.parametrize("page", ["https://user.github.io/p", "https://github.io/p",
                                  "http://127.0.0.1/p", "https://a.b.example.co.uk/p",
                                  "https://co.uk/p", "http://[::1]:8080/p"])
def test_internal_and_external_counts_agree(page: str) -> None:
    body = "".join(f'<a href="{"//" + h + "/x"}">{h}</a>' for h in HOSTS)
    body += '<a href="/rel">r</a><a href="https://user.github.io:8443/">p</a>'
    ex = both(body.encode(), url=page)
    assert ex.facts.internal_links + ex.facts.external_links == len(HOSTS) + 2


def test_concurrent_walks_agree() -> None:
    # Walks in several threads: one keeps the reused tables, the others (entering while it
    # is inside a Python callback such as the <meta> and <link> helpers) make their own.
    import sys
    from concurrent.futures import ThreadPoolExecutor

    pages = [("".join(f'<meta name=m{i} content=x><link rel=canonical href=/c{i}>'
                      f'<p>t{i} <a href="/p{i % 37}">a{j}</a> u</p>' for i in range(300))
              ).encode() for j in range(8)]
    want = [extract(p, PAGE, native=False) for p in pages]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(4) as pool:
            for _ in range(3):
                got = list(pool.map(lambda p: extract(p, PAGE, native=True), pages))
                assert got == want
    finally:
        sys.setswitchinterval(interval)


def test_count_lt_matches_bytes_count() -> None:
    native = extract_module._native
    assert native is not None
    for body in (b"", b"<", b"a<b" * 1000, bytes(range(256)) * 40, b"<" * 4097 + b"x"):
        for cut in (0, 1, 7, 8, 9, 2041):
            assert native.count_lt(body[cut:]) == body[cut:].count(b"<")


# ------------------------------------------------------------------ the benchmark corpus

def test_benchmark_corpus_pages_agree() -> None:
    from bench.extract_bench import build_corpus

    corpus = build_corpus(60)
    for page in corpus:
        both(page.body, {"Content-Type": "text/html"}, url=page.url)


# ------------------------------------------------------------------ switching

def test_env_var_turns_the_native_walk_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INLINK_EXTRACT_NATIVE", "0")
    assert not use_native()
    assert use_native(True)
    monkeypatch.setenv("INLINK_EXTRACT_NATIVE", "1")
    assert use_native()
    assert not use_native(False)


def test_odd_limits_take_the_python_walk() -> None:
    body = b"<p>" + b"x" * 500 + b"<a href=/x>X</a>"
    limits = ExtractLimits(context_siblings=0)
    assert extract(body, PAGE, limits=limits, native=True) == extract(
        body, PAGE, limits=limits, native=False)


# ------------------------------------------------------------------ compiled twins

NEST_MARKUP = st.lists(st.sampled_from(
    ["<div>", "</div>", "<DIV >", "<p>", "</p>", "<b>", "</b>", "<li>", "<br/>", "< a>", "<",
     "</", "<!-- x -->", "<basefont>", "<basefontx>", "<blockquote>", "</blockquote>",
     "<blockquotes>", "<x\x00y>", "</x>", "<\u00e9>", "text", "<a\tb>", "</span >", "<span/>",
     "<SPAN>", "<image>", "<tbody>"]), max_size=200).map("".join)


@settings(max_examples=400, deadline=None)
@given(NEST_MARKUP, st.integers(0, 12))
def test_nesting_cut_twin_matches_numpy(html: str, max_depth: int) -> None:
    native = extract_module._native
    assert native is not None
    data = html.encode()
    assert native.nesting_cut(data, max_depth) == extract_module.nesting_cut(data, max_depth)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 6))
def test_nesting_cut_twin_matches_numpy_on_bytes(data: bytes, max_depth: int) -> None:
    native = extract_module._native
    assert native is not None
    assert native.nesting_cut(data, max_depth) == extract_module.nesting_cut(data, max_depth)


def test_nesting_cut_twin_on_deep_pages() -> None:
    native = extract_module._native
    assert native is not None
    for body in (b"<div>" * 100_000 + b"</div>" * 100_000,
                 b"<p>" + b"<span><b>" * 3000 + b"x" + b"</b></span>" * 3000,
                 b"".join(b"<t%d>" % (i % 700) for i in range(20_000))):
        for depth in (0, 1, 512, 4096):
            assert native.nesting_cut(body, depth) == extract_module.nesting_cut(body, depth)


def test_native_key_function_is_used() -> None:
    from inlink import urls

    assert urls._key_from_href is not urls._key_from_href_py  # the compiled twin is in use
