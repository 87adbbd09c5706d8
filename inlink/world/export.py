"""Writes a world's ground truth as Parquet (streamed in batches) and, optionally, a WARC.

Files: hosts, pages (per page per day), links (per live interval), events, seeds, resolve
map; `day-N.warc.gz` holds every page a polite crawl of day N fetches, as served.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from inlink.world import names
from inlink.world.build import HREFLANGS
from inlink.world.model import (
    BROKEN_NAMES,
    FRAGMENT,
    KIND_NAMES,
    SESSION_AMP,
    SESSION_Q,
    SLOT_LOCATION,
    HostRobots,
    Kind,
    PageKind,
    State,
    Style,
    World,
    ip_str,
)
from inlink.world.server import write_resolve_file
from inlink.world.truth import ORIGINS, REASONS, world_truth

I64 = npt.NDArray[np.int64]
Progress = Callable[[str, int, int], None]   # (stage, done, total)

_ROBOTS = ("allow", "private", "crawl_delay", "missing", "unavailable")
_MODES = ("header", "meta", "both", "none")
_OUTCOMES = ("indexable", "noindex", "not_canonical", "redirect", "broken_redirect",
             "not_found", "crawl_error", "dropped", "other")
_PAGE_KINDS = ("home", "normal", "dead", "private", "thin")


@dataclass(frozen=True)
class ExportSummary:
    out_dir: Path
    hosts: int
    pages: int
    links: int
    link_rows: int
    events: int
    warc_records: int
    seconds: float


class _Universe:
    """Column arrays over the link universe (stored rows, then derived rows)."""

    def __init__(self, w: World) -> None:
        t = world_truth(w)
        dv = t.derived
        nd = len(dv.src)
        self.w = w
        self.src = np.concatenate([w.l_src, dv.src]).astype(np.int64)
        self.dst = np.concatenate([w.l_dst, dv.dst]).astype(np.int64)
        self.kind = np.concatenate([w.l_kind, dv.kind])
        self.anchor = np.concatenate([w.l_anchor, np.zeros(nd, np.int32)])
        self.alt = np.concatenate([w.l_alt, np.full(nd, -1, np.int32)])
        self.img = np.concatenate([w.l_img, np.full(nd, -1, np.int32)])
        self.rel = np.concatenate([w.l_rel, np.zeros(nd, np.int8)])
        self.slot = np.concatenate([w.l_slot, np.zeros(nd, np.int8)])
        self.style = np.concatenate([w.l_style, np.zeros(nd, np.int8)])
        self.count = np.concatenate([w.l_count, np.ones(nd, np.int8)])
        self.pre = np.concatenate([w.l_pre, np.zeros(nd, np.int32)])
        self.post = np.concatenate([w.l_post, np.zeros(nd, np.int32)])
        self.hreflang = np.concatenate([w.l_hreflang, np.full(nd, -1, np.int8)])
        self.origin = np.concatenate([np.zeros(w.n_links, np.int8), dv.origin])
        page_nf = (w.page_flags & 12) != 0
        self.nofollow = ((self.rel & 1) != 0) | (page_nf[self.src] & (self.kind != Kind.REDIRECT))
        urls = [w.url_of(p) for p in range(w.n_pages)]
        self.urls = pa.array(urls, pa.string())
        pct: list[str] = []
        for p, u in enumerate(urls):
            k = w.page_kind[p]
            if k in (PageKind.HOME, PageKind.PRIVATE):
                pct.append(u)
                continue
            sec = names.SECTIONS[int(w.page_section[p])]
            host = w.hosts.key[int(w.page_host[p])]
            pct.append(f"http://{host}/{names.SECTION_PCT[sec]}{w.paths[p][len(sec) + 1:]}")
        self.pct_urls = pa.array(pct, pa.string())
        self.has_query = np.asarray(["?" in p for p in w.paths], dtype=np.bool_)
        self.host_urls = pa.array([w.host_url(h) for h in range(w.n_hosts)], pa.string())
        self.anchors = pa.array(w.anchors, pa.string())
        self.snippets = pa.array(w.snippets, pa.string())

    def columns(self, ids: I64) -> dict[str, pa.Array]:
        """Link attribute columns for universe rows `ids`."""
        w = self.w
        src, dst = self.src[ids], self.dst[ids]
        style = self.style[ids]
        src_url = self.urls.take(pa.array(src))
        key = self.urls.take(pa.array(dst))
        suffix = np.full(len(ids), "", dtype=object)
        suffix[style == Style.FRAG] = FRAGMENT
        sess = style == Style.SESSION
        suffix[sess & self.has_query[dst]] = SESSION_AMP
        suffix[sess & ~self.has_query[dst]] = SESSION_Q
        base = pc.if_else(pa.array(style == Style.PCT), self.pct_urls.take(pa.array(dst)), key)
        target_url = pc.binary_join_element_wise(base, pa.array(suffix, pa.string()), "")
        img = self.img[ids]
        no_img = img < 0
        img_url = pc.binary_join_element_wise(
            self.host_urls.take(pa.array(w.page_host[src].astype(np.int64))),
            pa.array(np.char.mod("/img/%d.jpg", np.maximum(img, 0)).astype(object),
                     pa.string()), "")
        img_url = pc.if_else(pa.array(no_img), pa.scalar(None, pa.string()), img_url)
        alt = self.alt[ids]
        hl = self.hreflang[ids]
        return {
            "link_id": pa.array(ids, pa.int64()),
            "source_url": src_url,
            "source_key": src_url,
            "target_url": target_url,
            "target_key": key,
            "kind": pa.array(np.asarray(KIND_NAMES, dtype=object)[self.kind[ids]], pa.string()),
            "anchor": self.anchors.take(pa.array(self.anchor[ids])),
            "nofollow": pa.array(self.nofollow[ids]),
            "ugc": pa.array((self.rel[ids] & 2) != 0),
            "sponsored": pa.array((self.rel[ids] & 4) != 0),
            "alt": self.anchors.take(pa.array(np.maximum(alt, 0), mask=alt < 0)),
            "image_url": img_url,
            "text_pre": self.snippets.take(pa.array(self.pre[ids])),
            "text_post": self.snippets.take(pa.array(self.post[ids])),
            "location": pa.array(list(SLOT_LOCATION), pa.string()).take(
                pa.array(self.slot[ids].astype(np.int64))),
            "links_count": pa.array(self.count[ids].astype(np.int32)),
            "hreflang": pa.array(list(HREFLANGS), pa.string()).take(
                pa.array(np.maximum(hl, 0).astype(np.int64), mask=hl < 0)),
            "origin": pa.array(np.asarray(ORIGINS, dtype=object)[self.origin[ids]], pa.string()),
        }


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for a in range(0, n, size):
        yield a, min(n, a + size)


def export_world(
    world: World,
    out_dir: Path | str,
    *,
    warc_day: int | None = None,
    batch_size: int = 500_000,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the world's truth files into `out_dir` (created if missing)."""
    t0 = time.perf_counter()
    w = world
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t = world_truth(w)
    hs = w.hosts
    note = progress or (lambda stage, done, total: None)

    # hosts
    ips = [ip_str(int(i)) for i in hs.ip]
    pq.write_table(pa.table({
        "host": hs.key, "host_unicode": hs.name, "ip": ips,
        "subnet": [i.rsplit(".", 1)[0] + ".0/24" for i in ips],
        "domain": hs.domain, "tld": hs.tld, "language": hs.lang, "encoding": hs.encoding,
        "charset_declared": [_MODES[int(m)] for m in hs.charset_mode],
        "robots": [_ROBOTS[int(r)] for r in hs.robots],
        "broken": [BROKEN_NAMES[int(b)] or None for b in hs.broken],
        "slow": hs.slow, "is_farm": hs.is_farm,
        "is_money": [h == w.money_host for h in range(w.n_hosts)],
        "pages": np.diff(hs.page_start),
    }), out / "hosts.parquet")
    (out / "seeds.txt").write_text("\n".join(w.seeds()) + "\n", encoding="utf-8")
    write_resolve_file(out / "resolve.txt", {hs.key[h]: (ips[h], None) for h in range(w.n_hosts)})

    # pages: one row per page per day
    uni = _Universe(w)
    state_names = np.asarray(State.NAMES, dtype=object)
    status = np.asarray(State.STATUS, dtype=np.int32)
    outcome_names = np.asarray(_OUTCOMES, dtype=object)
    reasons = np.asarray(REASONS, dtype=object)
    host_arr = pa.array(hs.key, pa.string())
    kinds = np.asarray(_PAGE_KINDS, dtype=object)
    with pq.ParquetWriter(out / "pages.parquet", _pages_schema()) as pw:
        for d in range(1, w.days + 1):
            oc = t.outcome(d)
            st = w.state[:, d]
            aux = w.aux.astype(np.int64)
            has_aux = aux >= 0
            aux_url = uni.urls.take(pa.array(np.maximum(aux, 0), mask=~has_aux))
            is_red = np.isin(st, State.REDIRECTS)
            is_can = np.isin(st, (State.CANON_OTHER, State.CANON_OTHER_HEADER))
            st_code = status[st].copy()
            st_code[hs.broken[w.page_host] != 0] = 0
            st_code[st == State.RESET] = 0
            none_s = pa.scalar(None, pa.string())
            pw.write_table(pa.table({
                "day": pa.array(np.full(w.n_pages, d, np.int16)),
                "date": pa.array([w.date_of(d)] * w.n_pages, pa.date32()),
                "url": uni.urls,
                "host": host_arr.take(pa.array(w.page_host.astype(np.int64))),
                "page_kind": pa.array(kinds[w.page_kind], pa.string()),
                "state": pa.array(state_names[st], pa.string()),
                "status": pa.array(st_code),
                "robots_allowed": pa.array(~(w.disallow[:, d] | (
                    hs.robots[w.page_host] == HostRobots.UNAVAILABLE))),
                "outcome": pa.array(outcome_names[oc], pa.string()),
                "lost_reason": pa.array(reasons[oc], pa.string()),
                "redirect_to": pc.if_else(pa.array(is_red), aux_url, none_s),
                "canonical_to": pc.if_else(pa.array(is_can), aux_url, none_s),
                "is_farm": pa.array(hs.is_farm[w.page_host]),
            }, schema=_pages_schema()))
            note("pages", d, w.days)

    # links: one row per (link, maximal live interval); never-live links once, days null
    days = w.days
    live = np.zeros((t.n_universe, days + 2), dtype=np.bool_)
    for d in range(1, days + 1):
        live[:, d] = t.live(d)
    starts = live[:, 1:days + 1] & ~live[:, 0:days]
    ends = live[:, 1:days + 1] & ~live[:, 2:days + 2]
    s_row, s_day = np.nonzero(starts)
    e_row, e_day = np.nonzero(ends)
    never = np.flatnonzero(~live.any(axis=1))
    del live, starts, ends
    rows = np.concatenate([s_row, never]).astype(np.int64)
    first = np.concatenate([s_day + 1, np.zeros(len(never), np.int64)])
    last = np.concatenate([e_day + 1, np.zeros(len(never), np.int64)])
    order = np.argsort(rows, kind="stable")
    rows, first, last = rows[order], first[order], last[order]
    n_rows = len(rows)
    birth = np.concatenate([w.l_birth, np.zeros(len(t.derived.src), np.int8)])
    death = np.concatenate([w.l_death, np.zeros(len(t.derived.src), np.int8)])
    reborn = np.concatenate([w.l_reborn, np.zeros(len(t.derived.src), np.int8)])
    with pq.ParquetWriter(out / "links.parquet", _links_schema()) as lw:
        for a, b in _batches(n_rows, batch_size):
            ids = rows[a:b]
            cols = uni.columns(ids)
            f, la = first[a:b], last[a:b]
            cols["first_day"] = pa.array(f.astype(np.int16), mask=f == 0)
            cols["last_day"] = pa.array(la.astype(np.int16), mask=la == 0)
            cols["in_html_from"] = pa.array(birth[ids].astype(np.int16), mask=birth[ids] == 0)
            cols["in_html_until"] = pa.array(death[ids].astype(np.int16), mask=death[ids] == 0)
            cols["back_on"] = pa.array(reborn[ids].astype(np.int16), mask=reborn[ids] == 0)
            lw.write_table(pa.table(cols, schema=_links_schema()))
            note("links", b, n_rows)

    # events
    n_events = 0
    with pq.ParquetWriter(out / "events.parquet", _events_schema()) as ew:
        for d, new, lost, codes in t.iter_event_arrays(days):
            ids = np.concatenate([new, lost]).astype(np.int64)
            ev = np.asarray(["new"] * len(new) + ["lost"] * len(lost), dtype=object)
            reason = np.concatenate([np.full(len(new), None, dtype=object),
                                     np.asarray([REASONS[c] or "link_removed"
                                                 for c in codes.tolist()], dtype=object)])
            for a, b in _batches(len(ids), batch_size):
                cols = uni.columns(ids[a:b])
                tbl = {
                    "date": pa.array([w.date_of(d)] * (b - a), pa.date32()),
                    "day": pa.array(np.full(b - a, d, np.int16)),
                    "link_id": cols["link_id"], "source_key": cols["source_key"],
                    "target_key": cols["target_key"], "kind": cols["kind"],
                    "anchor": cols["anchor"], "image_url": cols["image_url"],
                    "event": pa.array(ev[a:b], pa.string()),
                    "reason": pa.array(reason[a:b], pa.string()),
                }
                ew.write_table(pa.table(tbl, schema=_events_schema()))
            n_events += len(ids)
            note("events", d, days)

    n_warc = write_warc(w, out / f"day-{warc_day}.warc.gz", warc_day, progress=progress) \
        if warc_day is not None else 0
    return ExportSummary(out, w.n_hosts, w.n_pages, t.n_universe, n_rows, n_events, n_warc,
                         time.perf_counter() - t0)


def _pages_schema() -> pa.Schema:
    return pa.schema([
        ("day", pa.int16()), ("date", pa.date32()), ("url", pa.string()), ("host", pa.string()),
        ("page_kind", pa.string()), ("state", pa.string()), ("status", pa.int32()),
        ("robots_allowed", pa.bool_()), ("outcome", pa.string()), ("lost_reason", pa.string()),
        ("redirect_to", pa.string()), ("canonical_to", pa.string()), ("is_farm", pa.bool_()),
    ])


def _links_schema() -> pa.Schema:
    return pa.schema([
        ("link_id", pa.int64()), ("source_url", pa.string()), ("source_key", pa.string()),
        ("target_url", pa.string()), ("target_key", pa.string()), ("kind", pa.string()),
        ("anchor", pa.string()), ("nofollow", pa.bool_()), ("ugc", pa.bool_()),
        ("sponsored", pa.bool_()), ("alt", pa.string()), ("image_url", pa.string()),
        ("text_pre", pa.string()), ("text_post", pa.string()), ("location", pa.string()),
        ("links_count", pa.int32()), ("hreflang", pa.string()), ("origin", pa.string()),
        ("first_day", pa.int16()), ("last_day", pa.int16()), ("in_html_from", pa.int16()),
        ("in_html_until", pa.int16()), ("back_on", pa.int16()),
    ])


def _events_schema() -> pa.Schema:
    return pa.schema([
        ("date", pa.date32()), ("day", pa.int16()), ("link_id", pa.int64()),
        ("source_key", pa.string()), ("target_key", pa.string()), ("kind", pa.string()),
        ("anchor", pa.string()), ("image_url", pa.string()), ("event", pa.string()),
        ("reason", pa.string()),
    ])


def write_warc(world: World, path: Path, day: int, *, progress: Progress | None = None) -> int:
    """Write every page a polite crawl fetches on `day` as gzipped WARC response records."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    from inlink.world.render import renderer

    w = world
    hs = w.hosts
    r = renderer(w)
    stamp = f"{w.date_of(day).isoformat()}T12:00:00Z"
    n = 0
    with open(path, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for p in range(w.n_pages):
            h = int(w.page_host[p])
            if hs.robots[h] == HostRobots.UNAVAILABLE or w.disallow[p, day]:
                continue  # a polite crawler never fetches these
            resp = r.render(p, day)
            if resp.misbehave is not None:
                continue  # no complete response to archive
            headers = [*resp.headers, ("Content-Length", str(len(resp.body)))]
            http = StatusAndHeaders(f"{resp.status} {resp.reason}", headers,
                                    protocol="HTTP/1.1")
            rec = writer.create_warc_record(
                w.url_of(p), "response", payload=io.BytesIO(resp.body), http_headers=http,
                warc_headers_dict={"WARC-Date": stamp, "WARC-IP-Address": w.ip_of_host(h)})
            writer.write_record(rec)
            # warcio buffers the record in a SpooledTemporaryFile and leaves it open.
            rec.raw_stream.close()
            n += 1
            if progress is not None and n % 1000 == 0:
                progress("warc", p + 1, w.n_pages)
    if progress is not None:
        progress("warc", w.n_pages, w.n_pages)
    return n
