"""An independent BeautifulSoup+lxml link reader agrees with `World.page_links`."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit, urlunsplit

import pytest
from bs4 import BeautifulSoup, Tag
from bs4.element import NavigableString, PageElement

from inlink.world import World
from inlink.world.model import Kind, PageKind, State
from inlink.world.render import PY_CODECS, renderer
from inlink.world.truth import world_truth

SEMANTIC = {"article", "aside", "blockquote", "details", "figure", "footer", "form", "header",
            "main", "nav", "section", "summary", "table"}
SESSION = {"phpsessid", "sid", "sessionid", "jsessionid"}
UNRESERVED = re.compile(r"%(2[DdEe]|3[0-9]|[46][1-9A-Fa-f]|[57][0-9Aa]|5[Ff]|7[Ee])")


def collapse(text: str) -> str:
    return " ".join(text.split())


def remove_dots(path: str) -> str:
    """RFC 3986 5.2.4, for absolute paths."""
    out: list[str] = []
    segs = path.split("/")[1:]
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)


def ref_key(url: str) -> str:
    """A deliberately small normalizer for the shapes the world writes."""
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    # Not the stdlib "idna" codec: it is IDNA 2003 and maps ß to ss, which WHATWG URLs
    # (UTS #46, non-transitional) do not; our labels are lowercase NFC, so punycode suffices.
    host = ".".join(lb if lb.isascii() else "xn--" + lb.encode("punycode").decode()
                    for lb in host.lower().split("."))
    if parts.port not in (None, 80):
        host = f"{host}:{parts.port}"
    path = UNRESERVED.sub(lambda m: chr(int(m.group(1), 16)), remove_dots(parts.path or "/"))
    query = "&".join(q for q in parts.query.split("&")
                     if q and q.split("=")[0].lower() not in SESSION)
    return urlunsplit(("http", host, path, query, ""))


def text_of(nodes: list[PageElement]) -> str:
    return collapse("".join(str(n) if isinstance(n, NavigableString) else n.get_text()
                            for n in nodes))


def read_links(html: str, page_url: str, header_nofollow: bool = False,
               ) -> dict[tuple[str, str, str, str | None], dict[str, object]]:
    soup = BeautifulSoup(html, "lxml")
    base = page_url
    tag = soup.find("base", href=True)
    if isinstance(tag, Tag):
        base = urljoin(page_url, str(tag["href"]))
    robots = soup.find("meta", attrs={"name": "robots"})
    page_nofollow = header_nofollow or (
        isinstance(robots, Tag) and "nofollow" in str(robots.get("content", "")))
    out: dict[tuple[str, str, str, str | None], dict[str, object]] = {}
    for a in soup.find_all("a", href=True):
        href = str(a["href"]).strip()
        if href.split(":", 1)[0].lower() in ("javascript", "mailto", "tel", "data"):
            continue
        target = urljoin(base, href)
        img = a.find("img")
        image_url = urljoin(base, str(img["src"])) if isinstance(img, Tag) else None
        kind = "image" if image_url else "anchor"
        anchor = collapse(a.get_text())
        key = (kind, ref_key(target), anchor, image_url)
        if key in out:
            out[key]["count"] = int(str(out[key]["count"])) + 1
            continue
        rel = {r.lower() for r in a.get_attribute_list("rel") if r}
        parent = a.parent
        assert parent is not None
        sibs = list(parent.children)
        i = sibs.index(a)
        loc = next((p.name for p in a.parents if p.name in SEMANTIC), None)
        out[key] = {
            "nofollow": "nofollow" in rel or page_nofollow, "ugc": "ugc" in rel,
            "sponsored": "sponsored" in rel,
            "alt": str(img.get("alt", "")) if isinstance(img, Tag) else None,
            "pre": text_of(sibs[:i])[-100:], "post": text_of(sibs[i + 1:])[:100],
            "location": loc, "count": 1,
        }
    return out


@pytest.mark.parametrize("day", [1, 3])
def test_reference_reader_agrees_with_truth(world: World, day: int) -> None:
    r = renderer(world)
    checked = 0
    for p in range(0, world.n_pages, 41):
        st = int(world.state[p, day])
        h = int(world.page_host[p])
        if st not in (State.OK, State.NOINDEX_META, State.CANON_OTHER) or world.hosts.broken[h]:
            continue
        if world.page_kind[p] == PageKind.THIN:
            continue
        resp = r.render(p, day)
        html = resp.body.decode(PY_CODECS[world.hosts.encoding[h]])
        got = read_links(html, world.url_of(p),
                         "nofollow" in (resp.header("X-Robots-Tag") or ""))
        want = {(t.kind.value, t.target_key, t.anchor, t.image_url): t
                for t in world.page_links(world.url_of(p), day)
                if t.kind.value in ("anchor", "image")}
        assert set(got) == set(want), (world.url_of(p), set(got) ^ set(want))
        for k, t in want.items():
            g = got[k]
            assert (g["nofollow"], g["ugc"], g["sponsored"]) == (t.nofollow, t.ugc, t.sponsored)
            assert g["alt"] == t.alt, k
            assert g["pre"] == t.text_pre and g["post"] == t.text_post, (k, g, t)
            assert g["location"] == t.location, (k, g["location"], t.location)
            assert g["count"] == t.links_count, k
            assert ref_key(t.target_url) == t.target_key
        inside, outside = (sum(int(str(v["count"])) for k, v in got.items()
                               if urlsplit(k[1]).hostname is not None), 0)
        truth = world.page_truth(world.url_of(p), day)
        assert truth.internal_links + truth.external_links == inside + outside
        checked += 1
    assert checked >= 200


def test_head_links_and_charsets(world: World) -> None:
    r = renderer(world)
    seen_alt = seen_canon = seen_meta = 0
    tr = world_truth(world)
    alt_src = world.l_src[world.l_kind == Kind.ALTERNATE]
    meta_src = tr.derived.src[tr.derived.kind == Kind.META]
    candidates = sorted({*alt_src[:60].tolist(), *meta_src[:10].tolist(),
                         *tr.derived.src[:60].tolist()})
    for p in candidates:
        links = world.page_links(world.url_of(p), 1)
        kinds = {t.kind.value for t in links if t.origin == "html"}
        if not kinds & {"alternate", "meta", "canonical"}:
            continue
        h = int(world.page_host[p])
        html = r.render(p, 1).body.decode(PY_CODECS[world.hosts.encoding[h]])
        soup = BeautifulSoup(html, "lxml")
        for t in links:
            if t.kind.value == "alternate":
                tag = soup.find("link", rel="alternate", hreflang=t.hreflang or "")
                assert isinstance(tag, Tag) and ref_key(str(tag["href"])) == t.target_key
                seen_alt += 1
            elif t.kind.value == "canonical" and t.origin == "html":
                tag = soup.find("link", rel="canonical")
                assert isinstance(tag, Tag) and str(tag["href"]) == t.target_url
                seen_canon += 1
            elif t.kind.value == "meta":
                tag = soup.find("meta", attrs={"http-equiv": "refresh"})
                assert isinstance(tag, Tag) and str(tag["content"]).endswith(t.target_url)
                seen_meta += 1
        if seen_alt > 20 and seen_canon > 20 and seen_meta > 3:
            break
    assert seen_alt > 20 and seen_canon > 20 and seen_meta > 3


def test_non_utf8_pages_carry_their_text(world: World) -> None:
    r = renderer(world)
    for enc, probe in (("windows-1251", "а"), ("shift_jis", "の"), ("windows-1252", "")):
        hosts = [h for h in range(world.n_hosts) if world.hosts.encoding[h] == enc]
        assert hosts, enc
        h = hosts[0]
        body = r.render(world.home_of(h), 1).body
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8") if enc != "windows-1252" else b"\xff".decode("utf-8")
        text = body.decode(PY_CODECS[enc])
        truth = world.page_truth(world.url_of(world.home_of(h)), 1)
        assert truth.encoding == enc and truth.title is not None and truth.title in text
        del probe
