"""extract(): hand-checked fixtures, rule-by-rule cases, hostile pages, fuzzing, and agreement
with the BeautifulSoup reference in tests/reference_extract.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inlink.errors import InvalidUrl
from inlink.extract import (
    DEFAULT_LIMITS,
    Extraction,
    ExtractLimits,
    LinkKind,
    decode_body,
    encoding_from_label,
    extract,
    nesting_cut,
    parse_link_header,
    prescan,
    refresh_url,
    robots_flags,
)
from inlink.urls import normalize_url
from tests.reference_extract import reference_extract

HTML = Path(__file__).parent / "data" / "html"
PAGE = "https://www.example.com/a/page.html"


def rows(ex: Extraction) -> list[tuple[object, ...]]:
    return [(link.kind.value, link.target_url, link.anchor, link.nofollow, link.ugc,
             link.sponsored, link.alt, link.image_url, link.text_pre, link.text_post,
             link.location, link.links_count, link.hreflang) for link in ex.links]


def fixture(name: str, headers: dict[str, str] | None = None) -> Extraction:
    return extract((HTML / name).read_bytes(), PAGE, headers)


# ------------------------------------------------------------------ hand-checked fixtures

BASIC = [
    ("anchor", "https://www.example.com/docs/index.html", "Home", False, False, False,
     None, None, "", "", "nav", 1, None),
    ("anchor", "https://partner.example.org/", "Partner", True, False, True,
     None, None, "", "", "nav", 1, None),
    ("anchor", "https://www.example.com/guide.html#intro", "getting started guide", False,
     False, False, None, None, "Read the", "before you begin.", "article", 2, None),
    ("anchor", "https://blog.other.net/post?id=7", "a reader", False, True, False,
     None, None, "Comments:", "said hi.", "article", 1, None),
    ("image", "https://cdn.example.com/big", "", False, False, False, "Big picture",
     "https://www.example.com/docs/thumb.png", "", "", "article", 1, None),
    ("anchor", "https://sub.example.com/x", "spaced", False, False, False, None, None,
     "efore you begin. Comments: a reader said hi. Again: getting started guide. js mail "
     "phone data broken", "", "article", 1, None),
    ("anchor", "https://www.example.com/map/region", "Region A", False, False, False,
     None, None, "", "", "section", 1, None),
    ("anchor", "https://www.example.com/about", "About", False, False, False,
     None, None, "", "", "footer", 1, None),
]


def test_basic_fixture_links() -> None:
    # base href, rel tokens (case-insensitive), dedupe with links_count, image link, area,
    # javascript:/mailto:/tel:/data:/unparsable dropped, whitespace in href stripped,
    # text_pre cut to its last 100 characters, semantic location.
    assert rows(fixture("basic.html")) == BASIC


def test_basic_fixture_facts() -> None:
    facts = fixture("basic.html", {"Content-Type": "text/html"}).facts
    assert facts.title == "Basic fixture page"
    assert facts.language == "en"
    assert facts.encoding == "utf-8"
    assert facts.base_url == "https://www.example.com/docs/"
    assert (facts.internal_links, facts.external_links) == (7, 2)  # cdn./sub. are internal
    assert facts.size == len((HTML / "basic.html").read_bytes())
    assert facts.is_html and facts.content_type == "text/html"
    assert not facts.noindex and not facts.nofollow and not facts.truncated
    assert facts.url_key == normalize_url(PAGE)


def test_meta_robots_none_makes_every_link_nofollow() -> None:
    ex = fixture("robots_none.html")
    assert ex.facts.noindex and ex.facts.nofollow
    assert [(link.anchor, link.nofollow, link.ugc) for link in ex.links] == [
        ("A", True, False), ("B", True, True)]
    assert [(link.text_pre, link.text_post) for link in ex.links] == [("", "B"), ("A", "")]


def test_head_links() -> None:
    assert rows(fixture("head_links.html")) == [
        ("canonical", "https://www.example.com/canonical-page", "", False, False, False,
         None, None, "", "", None, 1, None),
        ("alternate", "https://www.example.com/de/", "", False, False, False,
         None, None, "", "", None, 1, "de-de"),
        ("alternate", "https://www.example.com/", "", False, False, False,
         None, None, "", "", None, 1, "x-default"),
        ("meta", "https://www.example.com/moved?x=1", "", False, False, False,
         None, None, "", "", None, 1, None),
        ("anchor", "https://www.example.com/de/", "Deutsch", False, False, False,
         None, None, "text", "", None, 1, None),
    ]
    assert fixture("head_links.html").facts.canonical == "https://www.example.com/canonical-page"


def test_windows_1251_declared_in_meta_http_equiv() -> None:
    ex = fixture("windows1251.html")
    assert ex.facts.encoding == "windows-1251"
    assert ex.facts.title == "Привет"
    assert [(link.anchor, link.text_pre) for link in ex.links] == [("Москва", "Ссылка:")]


def test_lying_utf8_declaration_falls_back_to_detector() -> None:
    ex = fixture("lying_utf8.html")
    assert ex.facts.encoding == "windows-1252"
    assert ex.facts.title == "Café crème brûlée"
    assert ex.links[0].anchor == "Voilà où aller"


# The reference has no detector: pages whose declared charset lies are checked by hand above.
@pytest.mark.parametrize("name", sorted(p.name for p in HTML.glob("*.html")
                                        if not p.name.startswith("lying")))
def test_fixtures_agree_with_reference(name: str) -> None:
    body = (HTML / name).read_bytes()
    assert_agrees(body, {"Content-Type": "text/html"})


# ------------------------------------------------------------------ rules, one case each

def links_of(html: str, url: str = PAGE, **kw: object) -> list[tuple[object, ...]]:
    return rows(extract(html.encode(), url, kw.pop("headers", None)))  # type: ignore[arg-type]


@pytest.mark.parametrize(("html", "expected"), [
    ('<a href="/x">X</a><a href="/x">X</a><a href="/x">Y</a>',
     [("/x", "X", 2), ("/x", "Y", 1)]),
    ('<a href="/x#a">X</a><a href="/x#b">X</a>', [("/x#a", "X", 2)]),  # key drops fragment
    ('<a href="/x"><img src="/i.png"></a><a href="/x"><img src="/j.png"></a>',
     [("/x", "", 1), ("/x", "", 1)]),  # image_url is part of identity
    ('<a href="">self</a>', [("/a/page.html", "self", 1)]),
    ('<a href="?q=1">q</a>', [("/a/page.html?q=1", "q", 1)]),
    ('<a href=" \t/a\nb \n">ws</a>', [("/ab", "ws", 1)]),  # WHATWG strips tab/newline
    ('<a href="ftp://x.com/">f</a><a href="//cdn.example.com/p">p</a>',
     [("https://cdn.example.com/p", "p", 1)]),
    ('<a>no href</a><a href="/y">  lots \n of\t space  </a>', [("/y", "lots of space", 1)]),
])
def test_identity_and_resolution(html: str, expected: list[tuple[str, str, int]]) -> None:
    got = [(link.target_url.removeprefix("https://www.example.com"), link.anchor,
            link.links_count) for link in extract(html.encode(), PAGE).links]
    assert got == expected


def test_first_occurrence_supplies_attributes() -> None:
    ex = extract(b'<nav><a href="/x" rel=nofollow>X</a></nav><footer><a href="/x">X</a></footer>',
                 PAGE)
    (link,) = ex.links
    assert (link.nofollow, link.location, link.links_count) == (True, "nav", 2)


def test_anchor_and_alt_caps() -> None:
    limits = ExtractLimits(max_anchor=5, max_alt=3, max_title=4)
    ex = extract(b'<title>abcdefgh</title><a href="/x">abcdefgh<img src=i alt="xyzw"></a>', PAGE,
                 limits=limits)
    assert ex.facts.title == "abcd"
    assert (ex.links[0].anchor, ex.links[0].alt) == ("abcde", "xyz")


def test_links_cap_counts_dropped_distinct_links() -> None:
    html = "".join(f'<a href="/p{i % 7}">x</a>' for i in range(70)).encode()
    ex = extract(html, PAGE, limits=ExtractLimits(max_links=5))
    assert len(ex.links) == 5 and ex.facts.links_dropped == 2
    assert all(link.links_count == 10 for link in ex.links)
    assert ex.facts.internal_links == 70  # occurrences beyond the cap still count


def test_max_bytes_truncates() -> None:
    body = b"<p>" + b'<a href="/a">a</a>' * 100 + b'<a href="/late">late</a>'
    ex = extract(body, PAGE, limits=ExtractLimits(max_bytes=200))
    assert ex.facts.truncated and ex.facts.size == len(body)
    assert "/late" not in {link.target_url[-5:] for link in ex.links}


def test_text_pre_and_post_are_cut_at_100_chars() -> None:
    before, after = "b" * 150, "a " * 150
    (link,) = extract(f"<p>{before}<a href=/x>X</a>{after}</p>".encode(), PAGE).links
    assert link.text_pre == "b" * 100
    assert link.text_post == ("a " * 50).strip()


def test_context_skips_scripts_and_comments() -> None:
    (link,) = extract(b"<p>one<!-- c --> two<script>x()</script><a href=/x>X</a>"
                      b"<style>.a{}</style> three</p>", PAGE).links
    assert (link.text_pre, link.text_post) == ("one two", "three")


@pytest.mark.parametrize(("html", "loc"), [
    ("<table><tr><td><a href=/x>x</a></td></tr></table>", "table"),
    ("<article><section><div><a href=/x>x</a></div></section></article>", "section"),
    ("<aside><a href=/x>x</a></aside>", "aside"),
    ("<div><a href=/x>x</a></div>", None),
    ("<form><a href=/x>x</a></form>", "form"),
    ("<blockquote><a href=/x>x</a></blockquote>", "blockquote"),
    ("<details><summary><a href=/x>x</a></summary></details>", "summary"),
])
def test_location(html: str, loc: str | None) -> None:
    assert extract(html.encode(), PAGE).links[0].location == loc


def test_http_link_header_canonical_and_alternate() -> None:
    headers = [("Content-Type", "text/html"),
               ("Link", '<https://www.example.com/c>; rel="canonical", </de>; rel=alternate; '
                        'hreflang="de"'),
               ("Link", '</style.css>; rel=preload')]
    ex = extract(b"<p>hi</p>", PAGE, headers)
    assert [(link.kind, link.target_url, link.hreflang) for link in ex.links] == [
        (LinkKind.CANONICAL, "https://www.example.com/c", None),
        (LinkKind.ALTERNATE, "https://www.example.com/de", "de"),
    ]
    assert ex.facts.canonical == "https://www.example.com/c"


def test_html_canonical_wins_and_same_target_dedupes() -> None:
    headers = {"Link": '<https://www.example.com/h>; rel="canonical"'}
    ex = extract(b'<link rel=canonical href="/h"><link rel=canonical href="/other">', PAGE, headers)
    assert ex.facts.canonical == "https://www.example.com/h"
    assert [(link.target_url, link.links_count) for link in ex.links] == [
        ("https://www.example.com/h", 2), ("https://www.example.com/other", 1)]


@pytest.mark.parametrize(("values", "expected"), [
    (["noindex"], (True, False)),
    (["nofollow, noarchive"], (False, True)),
    (["googlebot: none"], (True, True)),
    (["otherbot: noindex, nofollow"], (False, False)),
    (["unavailable_after: 25 Jun 2010 15:00:00 PST", "NoIndex"], (True, False)),
])
def test_x_robots_tag(values: list[str], expected: tuple[bool, bool]) -> None:
    assert robots_flags(values, header=True) == expected


def test_x_robots_header_applies_to_links() -> None:
    ex = extract(b'<a href="/x">x</a>', PAGE, [("X-Robots-Tag", "nofollow")])
    assert ex.facts.nofollow and ex.links[0].nofollow and not ex.facts.noindex


@pytest.mark.parametrize(("content", "url"), [
    ("0; url=/a", "/a"), ("5;URL='/b c'", "/b c"), ("3, url = \"/q\"x", "/q"),
    ("10", None), ("abc; url=/x", None), ("1; /plain", "/plain"), (".5; url=/d", "/d"),
    ("0;url=", None),
])
def test_refresh_url(content: str, url: str | None) -> None:
    assert refresh_url(content) == url


def test_parse_link_header() -> None:
    assert parse_link_header('<a>; rel="x y"; title="a,b", <b>;rel=z') == [
        ("a", {"rel": "x y", "title": "a,b"}), ("b", {"rel": "z"})]
    assert parse_link_header("garbage, <unterminated") == []


@pytest.mark.parametrize(("lang", "header", "expected"), [
    ("en-US", None, "en"), ("PT_br", None, "pt"), ("", "de-DE, en", "de"),
    (None, "fr", "fr"), ("12", None, None),
])
def test_language(lang: str | None, header: str | None, expected: str | None) -> None:
    html = f'<html lang="{lang}"><p>x' if lang is not None else "<html><p>x"
    headers = {"Content-Language": header} if header else None
    assert extract(html.encode(), PAGE, headers).facts.language == expected


@pytest.mark.parametrize(("headers", "body", "is_html"), [
    ({"Content-Type": "application/pdf"}, b"%PDF-1.4 <a href='/x'>x</a>", False),
    ({"Content-Type": "text/plain"}, b"<html><a href='/x'>x</a>", False),
    ({}, b"  <!DOCTYPE html><a href='/x'>x</a>", True),
    ({}, b"\x89PNG\r\n<a href='/x'>", False),
    ({"Content-Type": "application/xhtml+xml"}, b"<a href='/x'>x</a>", True),
    ({"content-type": "TEXT/HTML; charset=utf-8"}, b"<a href='/x'>x</a>", True),
])
def test_html_detection(headers: dict[str, str], body: bytes, is_html: bool) -> None:
    ex = extract(body, PAGE, headers)
    assert ex.facts.is_html is is_html
    assert bool(ex.links) is is_html
    assert (ex.facts.encoding is not None) is is_html


@pytest.mark.parametrize("url", ["", "/relative", "ftp://x.com/", "mailto:a@b.c", "http://"])
def test_invalid_page_url_raises(url: str) -> None:
    with pytest.raises(InvalidUrl):
        extract(b"<a href=/x>x</a>", url)


# ------------------------------------------------------------------ encodings

@pytest.mark.parametrize(("body", "http", "encoding"), [
    (b"\xef\xbb\xbf<p>x", "windows-1252", "utf-8"),                 # BOM beats HTTP
    ("<p>é".encode("utf-16-le").join([b"\xff\xfe", b""]), None, "utf-16le"),
    ("<p>é".encode("cp1252"), "latin1", "windows-1252"),             # label normalisation
    ("<meta charset=koi8-r><p>Привет".encode("koi8-r"), None, "koi8-r"),
    (b"<!-- <meta charset=koi8-r> --><p>plain", None, "utf-8"),  # meta in comment
    ('<meta http-equiv="content-type" content="text/html; charset=\'shift_jis\'">'
     "<p>日本語".encode("shift_jis"), None, "shift_jis"),
    (b"<meta content='charset=gbk'><p>x", None, "utf-8"),     # needs the pragma
    ("<p>déjà vu, là-bas".encode(), "iso-8859-1", "utf-8"),          # valid UTF-8 overrides
    (b"<meta charset=utf-16><p>x", None, "utf-8"),            # meta UTF-16 -> UTF-8
    ("<p>Это текст на русском языке, который довольно длинный.".encode("cp1251") * 3, None,
     "windows-1251"),                                                  # detector
    (b"<p>\x00\x01\x02 nul bytes", None, "utf-8"),
])
def test_encoding_order(body: bytes, http: str | None, encoding: str) -> None:
    assert decode_body(body, http)[1] == encoding


@pytest.mark.parametrize(("label", "name"), [
    ("UTF8", "utf-8"), (" latin1 ", "windows-1252"), ("ascii", "windows-1252"),
    ("x-sjis", "shift_jis"), ("gb2312", "gbk"), ("iso-8859-9", "windows-1254"),
    ("tis-620", "windows-874"), ("bogus", None), ("hz-gb-2312", None), ("", None),
])
def test_encoding_labels(label: str, name: str | None) -> None:
    assert encoding_from_label(label) == name


def test_prescan_attribute_rules() -> None:
    assert prescan(b'<meta name=x charset="ISO-8859-2">') == "iso-8859-2"
    assert prescan(b"<div title='<meta charset=koi8-r>'><meta charset=utf-8>") == "utf-8"
    assert prescan(b"x" * 1030 + b"<meta charset=koi8-r>") is None
    assert prescan(b"<meta charset=koi8-r charset=gbk>") == "koi8-r"


def test_windows_1252_holes_decode_to_c1() -> None:
    text, name = decode_body("<p>caf\u00e9 ".encode("cp1252") + b"\x81", "windows-1252")
    assert name == "windows-1252" and isinstance(text, str) and text.endswith("\x81")


# ------------------------------------------------------------------ hostile pages

def test_deep_nesting_is_cut_in_bounded_time() -> None:
    body = b"<div>" * 100_000 + b"<a href=/deep>deep</a>" + b"</div>" * 100_000
    start = time.perf_counter()
    ex = extract(body, PAGE)
    assert time.perf_counter() - start < 5
    assert ex.facts.truncated


def test_nesting_cut_ignores_flat_and_stray_tags() -> None:
    assert nesting_cut(b"<p>x" * 5000 + b"<br>" * 5000, 512) is None
    assert nesting_cut(b"<div></div>" * 5000, 512) is None
    assert nesting_cut(b"</x>" * 5000 + b"<div>" * 600, 512) is not None
    assert nesting_cut(b"<div></span>" * 600, 512) is not None


def test_a_million_links_in_seconds() -> None:
    body = b"<p>" + b'<a href="/x">y</a>' * 1_000_000
    start = time.perf_counter()
    ex = extract(body, PAGE)
    assert time.perf_counter() - start < 10
    assert ex.facts.truncated and len(ex.links) == 1
    assert ex.links[0].links_count == ex.facts.internal_links > 400_000


def test_many_distinct_links_hit_the_cap() -> None:
    body = b"".join(b'<a href="/p%d">y</a>' % i for i in range(30_000))
    ex = extract(body, PAGE)
    assert len(ex.links) == DEFAULT_LIMITS.max_links
    assert ex.facts.links_dropped == 20_000


@pytest.mark.parametrize("body", [
    b"<a href='/x\x00y'>n\x00ul</a>\x00\x00",
    "<a href='/\ud800'>\udfff</a>".encode("utf-8", "surrogatepass"),
    b"<a href='/x' title='" + b"z" * 3_000_000 + b"'>big</a>",
    b"<html><head><title>cut", b"<a href='/x'", b"<a href=\"/x\">unterminated",
    b"\xff\xfe<\x00a\x00", b"\xfe\xff\x00<\x00a", b"",
    b"<meta charset=utf-8>" + bytes(range(256)) * 40,
    b"<svg><a href='/s'>svg</a></svg><math><a href=/m>m</a></math>",
    b"<template><a href=/t>t</a></template><noscript><a href=/n>n</a></noscript>",
    b"<base href='javascript:alert(1)'><a href='rel'>r</a><a href='https://ok.com/'>ok</a>",
])
def test_hostile_bodies_do_not_crash(body: bytes) -> None:
    check_invariants(extract(body, PAGE))


# ------------------------------------------------------------------ fuzzing and reference

def check_invariants(ex: Extraction, limits: ExtractLimits = DEFAULT_LIMITS) -> None:
    assert len(ex.links) <= limits.max_links
    seen = set()
    for link in ex.links:
        assert link.links_count >= 1
        assert link.target_url.startswith(("http://", "https://"))
        assert normalize_url(link.target_key) == link.target_key
        assert normalize_url(link.target_url) == link.target_key
        assert len(link.anchor) <= limits.max_anchor
        assert len(link.text_pre) <= limits.context_chars >= len(link.text_post)
        assert (link.kind is LinkKind.IMAGE) or (link.alt is None and link.image_url is None)
        ident = (link.kind, link.target_key, link.anchor, link.image_url)
        assert ident not in seen
        seen.add(ident)
    assert ex.facts.title is None or len(ex.facts.title) <= limits.max_title


header_names = st.sampled_from(["Content-Type", "Link", "X-Robots-Tag", "Content-Language",
                                "content-type", "X-Other"])
header_values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["text/html; charset=koi8-r", "text/html;charset=utf-16", "application/pdf",
                     "<https://x.com/>; rel=canonical", "<//x>;rel=alternate;hreflang=de",
                     "noindex, nofollow", "googlebot: none", "text/html; charset=bogus"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=3000),
       headers=st.lists(st.tuples(header_names, header_values), max_size=4))
def test_random_bytes_never_raise(body: bytes, headers: list[tuple[str, str]]) -> None:
    check_invariants(extract(body, PAGE, headers))


HREFS = st.sampled_from([
    "/a", "/a", "b.html", "../c/d", "?q=1", "#top", "https://other.org/x", "HTTP://Other.ORG/x",
    "//cdn.example.com/i", "javascript:go()", "mailto:x@y.z", "https://www.example.com/a#f",
    " /spaced ", "https://sub.example.com/p?x=1&y=2", "/p%7Eq", "", "/a b",
])
WORD = st.sampled_from(["alpha", "beta", "gamma", "  ", "delta epsilon", "x", "Ünïcödé",
                        "&amp;", "a\nb", "long " * 30])
REL = st.sampled_from(["", "nofollow", "UGC", "sponsored nofollow", "noopener"])


@st.composite
def inline(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 5 if depth < 2 else 2))
    if kind <= 1:
        return draw(WORD)
    if kind == 2:
        rel = draw(REL)
        rel_attr = f' rel="{rel}"' if rel else ""
        inner = draw(WORD)
        if draw(st.booleans()):
            inner += f'<img src="{draw(HREFS)}" alt="{draw(WORD)}">'
        return f'<a href="{draw(HREFS)}"{rel_attr}>{inner}</a>'
    if kind == 3:
        return f"<b>{draw(inline(depth + 1))}</b>"
    if kind == 4:
        return f"<span>{draw(inline(depth + 1))}{draw(inline(depth + 1))}</span>"
    return "<!-- note -->"


@st.composite
def block(draw: st.DrawFn, depth: int = 0) -> str:
    items = "".join(draw(st.lists(inline(), min_size=1, max_size=6)))
    tag = draw(st.sampled_from(["p", "div", "li"]))
    para = f"<ul><li>{items}</li></ul>" if tag == "li" else f"<{tag}>{items}</{tag}>"
    if depth < 2 and draw(st.booleans()):
        wrapper = draw(st.sampled_from(["nav", "article", "footer", "section", "aside", "div",
                                        "header", "blockquote"]))
        inner = "".join(draw(st.lists(block(depth + 1), min_size=1, max_size=3)))
        return f"<{wrapper}>{para}{inner}</{wrapper}>"
    return para


@st.composite
def document(draw: st.DrawFn) -> str:
    head = [f"<title>{draw(WORD)}</title>"]
    if draw(st.booleans()):
        head.append(f'<base href="{draw(st.sampled_from(["/base/", "https://x.org/d/"]))}">')
    if draw(st.booleans()):
        head.append(f'<link rel="canonical" href="{draw(HREFS)}">')
    if draw(st.booleans()):
        head.append(f'<meta name="robots" content="{draw(st.sampled_from(["noindex", "none"]))}">')
    if draw(st.booleans()):
        head.append(f'<meta http-equiv="refresh" content="0; url={draw(HREFS)}">')
    lang = draw(st.sampled_from(["en", "de-AT", ""]))
    body = "".join(draw(st.lists(block(), min_size=1, max_size=5)))
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">{"".join(head)}'
            f"</head><body>{body}</body></html>")


def assert_agrees(body: bytes, headers: dict[str, str]) -> None:
    ex = extract(body, PAGE, headers)
    ref = reference_extract(body, PAGE, headers)
    facts = ex.facts
    assert (facts.title, facts.language, facts.noindex, facts.nofollow) == (
        ref.title, ref.language, ref.noindex, ref.nofollow)
    assert (facts.internal_links, facts.external_links) == (ref.internal, ref.external)
    assert normalize_url(facts.base_url) == normalize_url(ref.base_url)
    assert (facts.canonical and normalize_url(facts.canonical)) == (
        ref.canonical and normalize_url(ref.canonical))
    got = [(link.kind.value, link.target_key, link.anchor, link.nofollow, link.ugc,
            link.sponsored, link.alt, link.image_url and normalize_url(link.image_url),
            link.text_pre, link.text_post, link.location, link.links_count, link.hreflang)
           for link in ex.links]
    want = [(r.kind, r.target_key, r.anchor, r.nofollow, r.ugc, r.sponsored, r.alt,
             r.image_url and normalize_url(r.image_url), r.text_pre, r.text_post, r.location,
             r.links_count, r.hreflang) for r in ref.links]
    assert got == want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document())
def test_generated_documents_agree_with_reference(html: str) -> None:
    assert_agrees(html.encode(), {"Content-Type": "text/html"})
    check_invariants(extract(html.encode(), PAGE))
