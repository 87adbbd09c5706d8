"""A slow, independent reading of the extract() contract on BeautifulSoup + urllib.parse.

Used only by tests/test_extract.py to cross-check inlink.extract on fixtures and generated
pages. It favours obviousness over speed and over exotic inputs (no WHATWG prescan, no
detector): compare it with extract() on documents whose encoding is declared or UTF-8.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Comment, Tag
from bs4.element import Doctype, NavigableString, PageElement, ProcessingInstruction

from inlink.urls import registrable_domain, try_normalize_url

SEMANTIC = {"article", "aside", "blockquote", "details", "figure", "footer", "form", "header",
            "main", "nav", "section", "summary", "table"}
SKIPPED_SIBLINGS = {"script", "style", "template", "noframes"}
CONTEXT = 100
SIBLINGS = 32


@dataclass
class RefLink:
    target_key: str
    target_url: str
    kind: str
    anchor: str
    nofollow: bool
    ugc: bool
    sponsored: bool
    alt: str | None
    image_url: str | None
    text_pre: str
    text_post: str
    location: str | None
    links_count: int
    hreflang: str | None


@dataclass
class RefResult:
    title: str | None
    language: str | None
    noindex: bool
    nofollow: bool
    canonical: str | None
    base_url: str
    internal: int
    external: int
    links: list[RefLink] = field(default_factory=list)


def collapse(text: str) -> str:
    return " ".join(text.split())


def text_of(node: PageElement) -> str:
    """DOM textContent: every descendant text, comments and doctypes excluded."""
    if isinstance(node, (Comment, Doctype, ProcessingInstruction)):
        return ""
    if isinstance(node, NavigableString):
        return str(node)
    assert isinstance(node, Tag)
    return "".join(str(s) for s in node.descendants
                   if isinstance(s, NavigableString)
                   and not isinstance(s, (Comment, Doctype, ProcessingInstruction)))


def sibling_text(node: Tag, forward: bool) -> str:
    parts: list[str] = []
    sib = node.next_sibling if forward else node.previous_sibling
    for _ in range(SIBLINGS):
        if sib is None:
            break
        if not (isinstance(sib, Tag) and sib.name in SKIPPED_SIBLINGS):
            parts.append(text_of(sib))
        sib = sib.next_sibling if forward else sib.previous_sibling
    if not forward:
        parts.reverse()
    text = collapse("".join(parts))
    return text[:CONTEXT].rstrip() if forward else text[-CONTEXT:].lstrip()


def resolve(href: str | None, base: str) -> str | None:
    """urljoin after the WHATWG input clean-up; http(s) only."""
    href = (href or "").strip("\x00\t\n\x0c\r ").replace("\t", "").replace("\n", "")
    href = href.replace("\r", "")
    try:
        url = urljoin(base, href)
        scheme = urlsplit(url).scheme
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def decode(body: bytes, headers: dict[str, str]) -> str:
    for bom, enc in ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"),
                     (b"\xff\xfe", "utf-16-le")):
        if body.startswith(bom):
            return body[len(bom):].decode(enc, "replace")
    label = None
    m = re.search(r"charset=([\w-]+)", headers.get("content-type", ""), re.I)
    if m:
        label = m.group(1)
    else:
        m2 = re.search(rb"<meta[^>]*charset=[\"']?([\w-]+)", body[:1024], re.I)
        if m2:
            label = m2.group(1).decode()
    if label and label.lower() in ("latin1", "iso-8859-1", "ascii", "us-ascii", "windows-1252"):
        label = "cp1252"
    try:
        codec = codecs.lookup(label).name if label else "utf-8"
    except LookupError:
        codec = "utf-8"
    return body.decode(codec, "replace")


def robots(values: list[str]) -> tuple[bool, bool]:
    words = {w for v in values for w in re.split(r"[,\s]+", v.lower()) if w}
    return bool(words & {"noindex", "none"}), bool(words & {"nofollow", "none"})


def reference_extract(body: bytes, url: str,
                      headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None
                      ) -> RefResult:
    pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    hdrs = {k.lower(): v for k, v in reversed(pairs)}
    soup = BeautifulSoup(decode(body, hdrs), "html.parser")
    base = url
    base_tag = soup.find("base", href=True)
    if isinstance(base_tag, Tag):
        base = urljoin(url, str(base_tag["href"]).strip())
    title_tag = soup.find("title")
    title = collapse(text_of(title_tag))[:1000] if isinstance(title_tag, Tag) else None
    html_tag = soup.find("html")
    language = None
    if isinstance(html_tag, Tag) and html_tag.get("lang"):
        language = str(html_tag["lang"]).strip().split("-")[0].lower() or None
    if language is None and "content-language" in hdrs:
        language = hdrs["content-language"].split(",")[0].strip().split("-")[0].lower() or None
    metas = [m for m in soup.find_all("meta") if isinstance(m, Tag)]
    noindex, nofollow = robots([str(m.get("content", "")) for m in metas
                                if str(m.get("name", "")).lower() in ("robots", "googlebot")])
    x_noindex, x_nofollow = robots([v for k, v in pairs if k.lower() == "x-robots-tag"])
    noindex, nofollow = noindex or x_noindex, nofollow or x_nofollow

    page_domain = registrable_domain(urlsplit(url).hostname or "")
    out: dict[tuple[str, str, str, str | None], RefLink] = {}
    result = RefResult(title, language, noindex, nofollow, None, base, 0, 0)

    def add(kind: str, target: str, anchor: str, rel: str, alt: str | None,
            image_url: str | None, pre: str, post: str, loc: str | None,
            hreflang: str | None) -> None:
        key = try_normalize_url(target)
        if key is None:
            return
        ident = (kind, key, anchor, image_url)
        if ident in out:
            out[ident].links_count += 1
            return
        tokens = rel.lower().split()
        out[ident] = RefLink(key, target, kind, anchor, "nofollow" in tokens or nofollow,
                             "ugc" in tokens, "sponsored" in tokens, alt, image_url, pre, post,
                             loc, 1, hreflang)

    for el in soup.find_all(["a", "area", "link", "meta"]):
        assert isinstance(el, Tag)
        rel = " ".join(el.get_attribute_list("rel")) if el.get("rel") else ""
        if el.name in ("a", "area") and el.has_attr("href"):
            target = resolve(str(el["href"]), base)
            if target is None or try_normalize_url(target) is None:
                continue
            host = urlsplit(target).hostname or ""
            if registrable_domain(host) == page_domain:
                result.internal += 1
            else:
                result.external += 1
            img = el.find("img") if el.name == "a" else None
            kind, alt, image_url = "anchor", None, None
            if isinstance(img, Tag):
                kind = "image"
                alt = collapse(str(img["alt"]))[:1000] if img.has_attr("alt") else None
                image_url = resolve(str(img["src"]), base) if img.get("src") else None
            anchor = text_of(el) if el.name == "a" else str(el.get("alt", ""))
            loc = next((p.name for p in el.parents if p.name in SEMANTIC), None)
            add(kind, target, collapse(anchor)[:1000], rel, alt, image_url,
                sibling_text(el, False), sibling_text(el, True), loc, None)
        elif el.name == "link" and el.has_attr("href"):
            rels = rel.lower().split()
            hreflang = str(el.get("hreflang", "")).strip().lower() or None
            target = resolve(str(el["href"]), base)
            if target is None:
                continue
            if "canonical" in rels:
                if result.canonical is None:
                    result.canonical = target
                add("canonical", target, "", rel, None, None, "", "", None, None)
            elif "alternate" in rels and hreflang:
                add("alternate", target, "", rel, None, None, "", "", None, hreflang)
        elif el.name == "meta" and str(el.get("http-equiv", "")).lower() == "refresh":
            m = re.match(r"\s*[\d.]+\s*[;,]\s*(?:url\s*=\s*)?['\"]?([^'\"]*)",
                         str(el.get("content", "")), re.I)
            target = resolve(m.group(1), base) if m and m.group(1).strip() else None
            if target is not None:
                add("meta", target, "", "", None, None, "", "", None, None)
    result.links = list(out.values())
    return result
