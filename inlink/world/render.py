"""Renders a world page (or robots.txt) for one day as an HTTP response: status, headers, bytes.

Shared by the loopback server and the WARC export, so both serve the same bytes; pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from html import escape

from inlink.world import names
from inlink.world.build import HREFLANGS
from inlink.world.model import (
    BROKEN_NAMES,
    FRAGMENT,
    LIST_SLOTS,
    SESSION_AMP,
    SESSION_Q,
    HostRobots,
    PageKind,
    Slot,
    State,
    Style,
    World,
)
from inlink.world.truth import REASONS as _REASONS
from inlink.world.truth import world_truth

REASON_PHRASES = {200: "OK", 301: "Moved Permanently", 302: "Found", 308: "Permanent Redirect",
                  404: "Not Found", 410: "Gone", 500: "Internal Server Error",
                  503: "Service Unavailable"}
PY_CODECS = {"utf-8": "utf-8", "windows-1251": "cp1251", "windows-1252": "cp1252",
             "shift_jis": "shift_jis"}


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    misbehave: str | None = None   # "reset", "truncated" or "trickle": the server breaks off
    delay: float = 0.0             # seconds to wait before answering (slow hosts)

    @property
    def reason(self) -> str:
        return REASON_PHRASES.get(self.status, "Unknown")

    def header(self, name: str) -> str | None:
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)


@lru_cache(maxsize=1)
def _script_blob() -> str:
    # ASCII boilerplate used to pad large pages: inline JS the way CMS themes ship it.
    lines = [f"  window.__cfg_{i} = {{id: {i}, flag: {str(i % 2 == 0).lower()}, "
             f"label: 'widget-{i}', url: '/static/w{i}.js'}};" for i in range(3000)]
    return "\n".join(lines)


_STYLE = ("body{font-family:sans-serif;margin:0}header,footer{background:#eee;padding:1em}"
          "nav ul{list-style:none}nav li{display:inline;margin-right:1em}"
          "article{max-width:48em}figure img{max-width:100%}.sitemap li{font-size:90%}")


def _rel_path(from_dir: str, to: str) -> str:
    """Document-relative reference from directory `from_dir` (ends with /) to path `to`."""
    fd = from_dir.strip("/").split("/") if from_dir != "/" else []
    tp = to.lstrip("/").split("/")
    tdirs, tfile = tp[:-1], tp[-1]
    common = 0
    while common < min(len(fd), len(tdirs)) and fd[common] == tdirs[common]:
        common += 1
    rel = "../" * (len(fd) - common) + "".join(d + "/" for d in tdirs[common:]) + tfile
    return rel or "./"


class PageRenderer:
    """Renders pages of one world; keeps per-world lookups warm."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.t = world_truth(world)

    # --- hrefs ---------------------------------------------------------------------------
    def base_dir(self, page: int) -> tuple[str, str | None]:
        """Directory relative hrefs are written against, and the <base href> if any."""
        w = self.w
        if w.page_flags[page] & 16:
            sec = names.SECTIONS[(int(w.page_section[page]) + 1) % len(names.SECTIONS)]
            return f"/{sec}/", f"http://{w.hosts.key[int(w.page_host[page])]}/{sec}/"
        path = w.paths[page].split("?", 1)[0]
        return path[: path.rfind("/") + 1], None

    def href(self, i: int, base_dir: str) -> str:
        w = self.w
        dst = int(w.l_dst[i])
        h = int(w.page_host[dst])
        host = w.hosts.key[h]
        path = w.paths[dst]
        style = int(w.l_style[i])
        if style == Style.ROOT:
            return path
        if style == Style.REL:
            return _rel_path(base_dir, path)
        if style == Style.PROTO:
            return f"//{host}{path}"
        if style == Style.UPPER:
            return f"HTTP://{host.upper()}{path}"
        if style == Style.PORT:
            return f"http://{host}:80{path}"
        if style == Style.DOTS:
            return f"http://{host}/a/./b/../..{path}"
        if style == Style.FRAG:
            return f"http://{host}{path}{FRAGMENT}"
        if style == Style.SESSION:
            return f"http://{host}{path}{SESSION_AMP if '?' in path else SESSION_Q}"
        if style == Style.PCT:
            sec = names.SECTIONS[int(w.page_section[dst])]
            return f"http://{host}/{names.SECTION_PCT[sec]}{path[len(sec) + 1:]}"
        if style == Style.UNI:
            return f"http://{w.hosts.name[h]}{path}"
        if style == Style.SPACE:
            return f"\n  http://{host}{path} "
        return f"http://{host}{path}"

    def _a(self, i: int, base_dir: str) -> str:
        w = self.w
        href = escape(self.href(i, base_dir))
        rel = int(w.l_rel[i])
        tokens: list[str] = []
        if rel & 1:
            tokens.append("NoFollow" if i % 10 == 3 else "nofollow")
        if rel & 2:
            tokens.append("ugc")
        if rel & 4:
            tokens.append("sponsored")
        if tokens and i % 3 == 0:
            tokens.insert(0, "noopener")
        attrs = f' href="{href}"'
        if tokens:
            attrs += f' rel="{" ".join(tokens)}"'
        elif i % 7 == 0:
            attrs += ' rel="noopener" target="_blank"'
        anchor = w.anchors[int(w.l_anchor[i])]
        text = escape(anchor, quote=False)
        if i % 5 == 0 and " " in text:
            text = text.replace(" ", "\n   ", 1)  # source whitespace the extractor collapses
        elif i % 11 == 0 and text:
            text = f" {text} "
        img = int(w.l_img[i])
        if img >= 0:
            alt = escape(w.anchors[int(w.l_alt[i])])
            pic = f'<img src="/img/{img}.jpg" alt="{alt}" width="320" height="200">'
            text = pic + (f" {text}" if text else "")
        return f"<a{attrs}>{text}</a>"

    def _occurrence(self, i: int, base_dir: str, n: int) -> str:
        w = self.w
        slot = int(w.l_slot[i])
        a = self._a(i, base_dir)
        pre = w.snippets[int(w.l_pre[i])] if n == 0 else ""
        post = w.snippets[int(w.l_post[i])] if n == 0 else ""
        if slot in LIST_SLOTS:
            return f'<div class="logo">{a}</div>' if slot == Slot.LOGO else f"<li>{a}</li>"
        if slot == Slot.FIGURE:
            cap = f"<figcaption>{escape(post, quote=False)}</figcaption>" if post else ""
            return f"<figure>{a}{cap}</figure>"
        inner = (escape(pre, quote=False) + " " if pre else "") + a + (
            " " + escape(post, quote=False) if post else "")
        if slot == Slot.TABLE:
            return f"<tr><td>{inner}</td><td>{n + 1}</td></tr>"
        return f"<p>{inner}</p>"

    # --- pages ----------------------------------------------------------------------------
    def render(self, page: int, day: int) -> Response:
        w = self.w
        h = int(w.page_host[page])
        hs = w.hosts
        st = int(w.state[page, day])
        delay = w.slow_delay if hs.slow[h] else 0.0
        base = [("Server", "inlink-world"), ("Date", _http_date(w, day))]
        broken = int(hs.broken[h])
        if broken:
            return Response(200, base + [("Content-Type", "text/html")], b"x" * 4096,
                            BROKEN_NAMES[broken], delay)
        if st == State.RESET:
            return Response(200, base, b"", "reset", delay)
        if st in State.REDIRECTS:
            body = b"<html><body><h1>Moved</h1><p>This page has moved.</p></body></html>"
            return Response(State.STATUS[st], base + [
                ("Location", w.url_of(int(w.aux[page]))),
                ("Content-Type", "text/html; charset=utf-8")], body, None, delay)
        if st in (State.NOT_FOUND, State.GONE, State.ERR_500, State.ERR_503):
            code = State.STATUS[st]
            body = (f"<html><head><title>{code} {REASON_PHRASES[code]}</title></head>"
                    f"<body><h1>{REASON_PHRASES[code]}</h1></body></html>").encode()
            extra = [("Retry-After", "3600")] if code == 503 else []
            return Response(code, base + extra + [("Content-Type", "text/html; charset=utf-8")],
                            body, None, delay)
        if st == State.TEXT_PLAIN:
            body = (f"{w.page_title[page]}\n\nPlain text edition. See {w.url_of(hs.page_start[h])}"
                    " for the site.\n").encode()
            return Response(200, base + [("Content-Type", "text/plain; charset=utf-8")], body,
                            None, delay)
        if st == State.PDF:
            body = (b"%PDF-1.4\n% inlink world\n1 0 obj << /Type /Catalog >> endobj\n"
                    b"trailer <<>>\n%%EOF\n")
            return Response(200, base + [("Content-Type", "application/pdf")], body, None, delay)
        html = self.html(page, day)
        enc = hs.encoding[h]
        body = html.encode(PY_CODECS[enc], errors="xmlcharrefreplace")
        mode = int(hs.charset_mode[h])
        ctype = f"text/html; charset={hs.charset_label[h]}" if mode in (0, 2) else "text/html"
        headers = base + [("Content-Type", ctype)]
        robots: list[str] = []
        if st == State.NOINDEX_HEADER:
            robots.append("noindex")
        if w.page_flags[page] & 8:
            robots.append("nofollow")
        if robots:
            headers.append(("X-Robots-Tag", ", ".join(robots)))
        for j in self.t.page_derived(page, day):
            rec = self.t.link(j)
            if rec.origin == "link_header":
                headers.append(("Link", f'<{rec.target_url}>; rel="canonical"'))
        if st == State.TRUNCATED:
            return Response(200, headers, body, "truncated", delay)
        return Response(200, headers, body, None, delay)

    def html(self, page: int, day: int) -> str:
        """The page's HTML document as text (before encoding)."""
        w = self.w
        hs = w.hosts
        h = int(w.page_host[page])
        st = int(w.state[page, day])
        lang = hs.lang[h]
        host = hs.key[h]
        title = w.page_title[page] if w.page_kind[page] == PageKind.HOME else (
            f"{w.page_title[page]} | {hs.brand[h]}")
        head: list[str] = []
        mode = int(hs.charset_mode[h])
        if mode in (1, 2):
            label = hs.charset_label[h]
            head.append(f'<meta charset="{label}">' if page % 2 else
                        f'<meta http-equiv="Content-Type" content="text/html; charset={label}">')
        head.append(f"<title>{escape(title, quote=False)}</title>")
        head.append('<meta name="viewport" content="width=device-width, initial-scale=1">')
        robots: list[str] = []
        if st == State.NOINDEX_META:
            robots.append("noindex")
        if w.page_flags[page] & 4:
            robots.append("nofollow")
        if robots:
            head.append(f'<meta name="robots" content="{", ".join(robots)}">')
        for j in self.t.page_derived(page, day):
            rec = self.t.link(j)
            if rec.origin != "html":
                continue
            if rec.kind.value == "canonical":
                head.append(f'<link rel="canonical" href="{escape(rec.target_url)}">')
            elif rec.kind.value == "meta":
                url = escape(rec.target_url)
                head.append(f'<meta http-equiv="refresh" content="0; url={url}">')
        base_dir, base_href = self.base_dir(page)
        if base_href:
            head.append(f'<base href="{base_href}">')
        head.append('<link rel="stylesheet" href="/static/site.css">')
        head.append(f"<style>{_STYLE}</style>")
        head.append("<script>var tracker = 'http://tracker.invalid/t.js'; "
                    "document.write('<span>' + tracker + '</span>');</script>")
        rows = self.t.page_rows(page, day)
        slots: dict[int, list[str]] = {}
        for i in rows:
            slot = int(w.l_slot[i])
            if slot == Slot.HEAD:
                hl = HREFLANGS[int(w.l_hreflang[i])]
                head.append(f'<link rel="alternate" hreflang="{hl}" '
                            f'href="{escape(self.href(i, base_dir))}">')
                continue
            out = slots.setdefault(slot, [])
            for n in range(int(w.l_count[i])):
                out.append(self._occurrence(i, base_dir, n))
        if w.page_kind[page] == PageKind.THIN:
            body = f"<body><p>{escape(w.page_title[page], quote=False)}</p></body>"
            return (f'<!DOCTYPE html>\n<html lang="{hs.lang_tag[h]}">\n<head>\n'
                    + "\n".join(head) + "\n</head>\n" + body + "\n</html>\n")
        paras = w.paragraphs[lang]
        filler = [f"<p>{paras[(page + k) % len(paras)]}</p>" for k in range(2 + page % 3)]

        def block(slot: int, open_: str, close: str) -> str:
            items = slots.get(slot)
            return open_ + "\n".join(items) + close if items else ""

        article = slots.get(Slot.ARTICLE, [])
        mixed: list[str] = []
        for k, item in enumerate(article):
            mixed.append(item)
            if k < len(filler):
                mixed.append(filler[k])
        mixed.extend(filler[len(article):])
        parts = [
            "<body>", '<header class="site-header">', *slots.get(Slot.LOGO, []),
            '<div class="menu"><a href="javascript:void(0)">Menu</a></div>',
            block(Slot.NAV, "<nav><ul>\n", "\n</ul></nav>"), "</header>", "<main>",
            *slots.get(Slot.MAIN, []),
            "<article>", f"<h1>{escape(w.page_title[page], quote=False)}</h1>", *mixed,
            *slots.get(Slot.FIGURE, []),
            block(Slot.SECTION, "<section><h2>More</h2>\n", "\n</section>"),
            block(Slot.BLOCKQUOTE, "<blockquote>\n", "\n</blockquote>"),
            block(Slot.TABLE, "<table>\n", "\n</table>"),
            block(Slot.DETAILS, "<details><summary>Details</summary>\n", "\n</details>"),
            "</article>", block(Slot.ASIDE, "<aside><h3>Related</h3><ul>\n", "\n</ul></aside>"),
            "</main>", block(Slot.MORE, '<div class="more">\n', "\n</div>"),
            "<!-- <a href=\"http://old-partner.invalid/\">old partner</a> -->",
            block(Slot.SITEMAP, '<div class="sitemap"><ul>\n', "\n</ul></div>"),
            "<footer>", *slots.get(Slot.FOOTER, []),
            f'<p class="contact"><a href="mailto:info@{host}">Mail</a> '
            '<a href="tel:+15550100">Call</a> <a name="bottom"></a></p>', "</footer>",
        ]
        body = "\n".join(p for p in parts if p)
        doc = (f'<!DOCTYPE html>\n<html lang="{hs.lang_tag[h]}">\n<head>\n' + "\n".join(head)
               + "\n</head>\n" + body)
        target = int(w.page_big[page])
        if target > len(doc):
            # Pad towards a realistic 50-150 KB: link-free text, then inline script.
            need = target - len(doc)
            text: list[str] = []
            got = 0
            while got < need // 3:
                p = f"<p>{paras[(page + got) % len(paras)]}</p>"
                text.append(p)
                got += len(p) + 1
            blob = _script_blob()
            rest = max(0, need - got - 40)
            doc += ('\n<div class="content-extra">\n' + "\n".join(text) + "\n</div>\n<script>\n"
                    + blob[: min(rest, len(blob))] + "\n</script>")
        return doc + "\n</body>\n</html>\n"

    # --- robots.txt ------------------------------------------------------------------------
    def robots(self, h: int, day: int) -> Response:
        w = self.w
        hs = w.hosts
        base = [("Server", "inlink-world"), ("Date", _http_date(w, day))]
        delay = w.slow_delay if hs.slow[h] else 0.0
        mode = int(hs.robots[h])
        if mode == HostRobots.MISSING:
            return Response(404, base + [("Content-Type", "text/html")],
                            b"<html><body>Not Found</body></html>", None, delay)
        if mode == HostRobots.UNAVAILABLE:
            return Response(503, base + [("Content-Type", "text/html")],
                            b"<html><body>Service Unavailable</body></html>", None, delay)
        lines = ["# robots.txt for " + hs.key[h], "User-agent: BadBot", "Disallow: /", "",
                 "User-agent: *"]
        if mode == HostRobots.DELAY:
            lines.append("Crawl-delay: 1")
        rules: list[str] = []
        if mode == HostRobots.PRIVATE:
            rules.append("Disallow: /private/")
        for p in w.host_pages(h):
            if w.disallow[p, day] and w.page_kind[p] != PageKind.PRIVATE:
                rules.append(f"Disallow: {w.paths[p]}")
        lines.extend(rules or ["Disallow:"])
        lines.append("")
        return Response(200, base + [("Content-Type", "text/plain")],
                        "\n".join(lines).encode(), None, delay)


def _http_date(w: World, day: int) -> str:
    return w.date_of(day).strftime("%a, %d %b %Y 12:00:00 GMT")



def renderer(w: World) -> PageRenderer:
    """The `PageRenderer` of a world, built once per world object."""
    r: PageRenderer | None = w.__dict__.get("_renderer")
    if r is None:
        r = w.__dict__["_renderer"] = PageRenderer(w)
    return r


@dataclass(frozen=True)
class PageTruth:
    """Facts of one page on one day, as a correct fetch + extraction would report them."""

    url: str
    url_key: str
    host: str
    ip: str
    day: int
    date: dt.date
    state: str                     # model.State name
    status: int                    # HTTP status; 0 when the connection is reset
    error: str | None              # "reset" | "truncated" | "trickle" (a fetch error)
    headers: dict[str, str]        # served headers, lowercase names
    content_type: str | None
    is_html: bool
    robots_allowed: bool
    title: str | None
    language: str | None
    encoding: str | None           # WHATWG name of the encoding the bytes are in
    charset_declared: str          # "header" | "meta" | "both" | "none"
    noindex: bool
    nofollow: bool
    canonical: str | None          # absolute canonical URL (HTML or HTTP Link)
    redirect_to: str | None        # Location of a 3xx
    base_url: str
    internal_links: int
    external_links: int
    size: int                      # body bytes as served
    outcome: str                   # truth.Outcome name, lowercase
    lost_reason: str | None        # reason links of this page are lost today, if not indexable
    is_farm: bool
    is_home: bool
    delay: float                   # seconds the server waits before answering


_OUTCOME_NAMES = ("indexable", "noindex", "not_canonical", "redirect", "broken_redirect",
                  "not_found", "crawl_error", "dropped", "other")
_MODES = ("header", "meta", "both", "none")


def page_truth(w: World, page: int, day: int) -> PageTruth:
    """Build the `PageTruth` of `page` on `day`."""
    t = world_truth(w)
    r = renderer(w)
    resp = r.render(page, day)
    h = int(w.page_host[page])
    hs = w.hosts
    st = int(w.state[page, day])
    headers = {k.lower(): v for k, v in resp.headers}
    ctype = headers.get("content-type")
    is_html = html_ok = st in State.HTML_200 and t.fetch_completes(page, day)
    canonical = None
    links = t.page_links(page, day) if html_ok else []
    for rec in links:
        if rec.kind.value == "canonical":
            canonical = rec.target_url
    xr = headers.get("x-robots-tag", "")
    noindex = st == State.NOINDEX_META or "noindex" in xr
    nofollow = bool(w.page_flags[page] & 12) and html_ok
    inside, outside = t.link_counts(page, day) if html_ok else (0, 0)
    _, base_href = r.base_dir(page)
    outcome = int(t.outcome(day)[page])
    url = w.url_of(page)
    return PageTruth(
        url=url, url_key=url, host=hs.key[h], ip=w.ip_of_host(h), day=day, date=w.date_of(day),
        state=State.NAMES[st], status=0 if resp.misbehave == "reset" else resp.status,
        error=resp.misbehave, headers=headers, content_type=ctype, is_html=is_html,
        robots_allowed=not (w.disallow[page, day] or hs.robots[h] == HostRobots.UNAVAILABLE),
        title=(w.page_title[page] if w.page_kind[page] == PageKind.HOME
               else f"{w.page_title[page]} | {hs.brand[h]}") if html_ok else None,
        language=hs.lang[h] if html_ok else None,
        encoding=hs.encoding[h] if html_ok else (
            "utf-8" if "charset=utf-8" in (ctype or "").lower() else None),
        charset_declared=_MODES[int(hs.charset_mode[h])],
        noindex=noindex and html_ok, nofollow=nofollow, canonical=canonical if html_ok else None,
        redirect_to=headers.get("location"), base_url=(base_href if html_ok else None) or url,
        internal_links=inside, external_links=outside, size=len(resp.body),
        outcome=_OUTCOME_NAMES[outcome],
        lost_reason=None if outcome == 0 else _REASONS[outcome],
        is_farm=bool(hs.is_farm[h]), is_home=bool(w.page_kind[page] == PageKind.HOME),
        delay=resp.delay,
    )
