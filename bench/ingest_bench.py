"""Ingest benchmark: `inlink.index.ingest` vs bare FastWARC + extract() vs warcio, same file.

Run as `python -m bench.ingest_bench` or through `inlink bench ingest`; see docs/ingest.md.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastwarc.warc import ArchiveIterator, WarcRecordType

from inlink.extract import extract
from inlink.index.ingest import BATCH_LINKS, BATCH_PAGES, COMPACT_MEMORY_LIMIT

SEED = 20240611
_WORDS = (  # noqa: SIM905 - one string reads better than 38 literals
    "backlink index crawler anchor domain rank page link search engine optimisation content "
    "market report analysis guide review news blog article product service price best how why "
    "the of and to in for on with by at from about"
).split()
ROOT = Path(__file__).resolve().parents[1]


def _page(rng: random.Random, i: int, hosts: int) -> tuple[str, bytes]:
    """A 50-150 KB article page: nav, paragraphs with external/internal/image links, footer."""
    host = f"www.site{rng.randrange(hosts)}.example"
    target = rng.randrange(50_000, 150_000)
    w = rng.choices
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{' '.join(w(_WORDS, k=7))}</title>"
             f"<link rel='canonical' href='https://{host}/p/{i}'>"
             "<style>body{font:14px sans-serif}.x{color:#333}</style>"
             "<script>var a=1;function f(){return a}</script></head><body><header><nav>"]
    parts += [f"<a href='/section/{k}'>{rng.choice(_WORDS)}</a> " for k in range(20)]
    parts.append("</nav></header><main><article>")
    size = sum(map(len, parts))
    while size < target:
        r = rng.random()
        if r < 0.55:
            rel = rng.choice(["", "", "", " rel='nofollow'", " rel='ugc'", " rel='sponsored'"])
            link = (f"<a href='https://www.site{rng.randrange(hosts)}.example/a/"
                    f"{rng.randrange(10**6)}'{rel}>{' '.join(w(_WORDS, k=3))}</a>")
        elif r < 0.65:
            link = (f"<a href='/gallery/{rng.randrange(999)}'><img src='/i/{rng.randrange(999)}"
                    f".jpg' alt='{rng.choice(_WORDS)}'></a>")
        else:
            link = f"<a href='/local/{rng.randrange(10**4)}'>{rng.choice(_WORDS)}</a>"
        text = (f"<p class='x'>{' '.join(w(_WORDS, k=rng.randrange(60, 160)))} {link} "
                f"{' '.join(w(_WORDS, k=30))}</p>\n")
        parts.append(text)
        size += len(text)
    parts.append("</article></main><footer><a href='https://social.example/share'>share</a>"
                 "</footer></body></html>")
    return f"https://{host}/p/{i}", "".join(parts).encode()


def write_archive(path: Path, pages: int, seed: int = SEED) -> dict[str, int]:
    """A Common Crawl style .warc.gz (one gzip member per record) of `pages` responses."""
    rng = random.Random(seed)
    payload = 0
    with open(path, "wb") as f:
        for i in range(pages):
            url, body = _page(rng, i, max(50, pages // 10))
            http = (b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
            block = http + body
            when = f"2026-01-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            head = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: {url}\r\n"
                    f"WARC-Date: {when}\r\nWARC-IP-Address: 127.0.{i % 250}.1\r\n"
                    f"WARC-Record-ID: <urn:uuid:00000000-0000-0000-0000-{i:012d}>\r\n"
                    "Content-Type: application/http; msgtype=response\r\n"
                    f"Content-Length: {len(block)}\r\n\r\n").encode()
            f.write(gzip.compress(head + block + b"\r\n\r\n", compresslevel=1))
            payload += len(body)
    return {"pages": pages, "payload_bytes": payload, "file_bytes": path.stat().st_size}


def bare_reference(path: Path) -> dict[str, float]:
    """(a) FastWARC iteration + extract() on every response, one process, nothing stored."""
    t0, c0 = time.perf_counter(), time.process_time()
    pages = links = size = 0
    for rec in ArchiveIterator(str(path), record_types=WarcRecordType.response):
        body = rec.reader.read()
        headers = rec.http_headers.to_tuples() if rec.http_headers else []
        ex = extract(body, rec.headers.get("WARC-Target-URI") or "", headers)
        pages += 1
        links += len(ex.links)
        size += len(body)
    return {"seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            "pages": pages, "links": links, "bytes": size}


def read_only(path: Path) -> dict[str, float]:
    """FastWARC and warcio iteration alone (payload read, no parsing) as peer references."""
    t0 = time.perf_counter()
    n = 0
    for rec in ArchiveIterator(str(path), record_types=WarcRecordType.response):
        n += len(rec.reader.read())
    fast = time.perf_counter() - t0
    from warcio.archiveiterator import ArchiveIterator as WarcioIterator
    t0 = time.perf_counter()
    m = 0
    with open(path, "rb") as f:
        for record in WarcioIterator(f):
            if record.rec_type == "response":
                m += len(record.content_stream().read())
    slow = time.perf_counter() - t0
    assert n == m
    return {"fastwarc_seconds": fast, "warcio_seconds": slow, "bytes": n}


_CHILD = """
import json, resource, sys, time
from inlink.index.ingest import COMPACT_MEMORY_LIMIT, ingest, release_memory
from inlink.index.store import Store
def cpu():
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
store = Store(sys.argv[1])
t0, c0 = time.perf_counter(), cpu()
# What ingest() does with its growth rule on a fresh index (compact), timed in two parts.
s = ingest(store, [sys.argv[2]], workers=None if sys.argv[3] == "auto" else int(sys.argv[3]),
           malloc_tuning=sys.argv[4] == "1", compact=False)
t1, c1 = time.perf_counter(), cpu()
release_memory()
store.compact(memory_limit=COMPACT_MEMORY_LIMIT)
t2, c2 = time.perf_counter(), cpu()
links = store.counts()["links"]
store.close()
print(json.dumps({"seconds": t2 - t0, "write_seconds": t1 - t0, "compact_seconds": t2 - t1,
                  "cpu_seconds": c2 - c0, "write_cpu_seconds": c1 - c0,
                  "compact_cpu_seconds": c2 - c1,
                  "pages": s.pages, "links_new": s.links_new,
                  "links_rows": links, "records_bad": s.records_bad,
                  "rss_main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rss_worker_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def full_ingest(path: Path, db: Path, workers: str = "auto", malloc: bool = True,
                timeout: float = 7200) -> dict[str, Any]:
    """(b) `ingest()` into a fresh DuckDB file, in a subprocess (for its peak RSS)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", _CHILD, str(db), str(path), workers,
                          "1" if malloc else "0"], capture_output=True, check=True,
                         timeout=timeout, env=env)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return result


def run(quick: bool = False, pages: int | str | None = None, malloc_compare: bool | None = None,
        **_: Any) -> dict[str, Any]:
    """Generate the archive, then measure (a) reference, (b) ingest and the read-only peers."""
    n = int(pages) if pages else (300 if quick else 3000)     # -o pages=N gives a str
    if isinstance(malloc_compare, str):
        malloc_compare = malloc_compare.lower() in ("1", "true", "yes")
    with tempfile.TemporaryDirectory(prefix="inlink-ingest-bench-") as tmp:
        folder = Path(tmp)
        archive = folder / "bench.warc.gz"
        t0 = time.perf_counter()
        meta: dict[str, Any] = dict(write_archive(archive, n))
        meta["generate_seconds"] = time.perf_counter() - t0
        load_before = os.getloadavg()[0]
        reads = read_only(archive)
        ref = bare_reference(archive)
        ing = full_ingest(archive, folder / "a.duckdb")
        # The reference again right after: the machine is shared, its load changes.
        ref_after = bare_reference(archive)
        result: dict[str, Any] = {"archive": meta, "read": reads, "reference": ref,
                                  "reference_after": ref_after,
                                  "ingest": ing, "cores": os.cpu_count(),
                                  "load_before": load_before, "load_after": os.getloadavg()[0],
                                  "rss_self_kb": resource.getrusage(
                                      resource.RUSAGE_SELF).ru_maxrss}
        if malloc_compare:
            result["ingest_no_malloc_tuning"] = full_ingest(archive, folder / "b.duckdb",
                                                            malloc=False)
        result["ingest_one_worker"] = full_ingest(archive, folder / "c.duckdb", workers="1")
    mb = meta["payload_bytes"] / 1e6
    # Against the mean of the two reference runs (before and after the ingest).
    ref_seconds = (ref["seconds"] + ref_after["seconds"]) / 2
    result["reference_seconds"] = ref_seconds
    result["ratio"] = ref_seconds / ing["seconds"]
    result["ratio_before_compact"] = ref_seconds / ing["write_seconds"]
    ref_cpu = (ref["cpu_seconds"] + ref_after["cpu_seconds"]) / 2
    result["reference_cpu_seconds"] = ref_cpu
    # On `cores` idle cores the ingest could not take less than its CPU time / cores.
    result["cpu_bound_ratio"] = ref_cpu / (ing["cpu_seconds"] / (os.cpu_count() or 1))
    result["cpu_bound_ratio_batches"] = ref_cpu / (ing["write_cpu_seconds"]
                                                   / (os.cpu_count() or 1))
    result["ingest_pages_per_s"] = n / ing["seconds"]
    result["ingest_mb_per_s"] = mb / ing["seconds"]
    result["ingest_links_per_s"] = ing["links_new"] / ing["seconds"]
    result["reference_pages_per_s"] = n / ref_seconds
    result["reference_mb_per_s"] = mb / ref_seconds
    result["reference_links_per_s"] = ref["links"] / ref_seconds
    gb_file = 1e9 / meta["file_bytes"]
    result["one_gb_file_seconds"] = ing["seconds"] * gb_file
    result["one_gb_file_pages"] = n * gb_file
    return result


def to_markdown(result: dict[str, Any]) -> str:
    a, r, ing = result["archive"], result["read"], result["ingest"]
    mb = a["payload_bytes"] / 1e6
    n = a["pages"]
    ref, ref_after = result["reference"], result["reference_after"]

    def row(name: str, sec: float, cpu: float | None, links: float | None) -> str:
        pages = f"{n / sec:.0f}" if links is not None else ""
        lps = f"{links / sec:.0f}" if links is not None else ""
        cpu_s = f"{cpu:.2f}" if cpu is not None else ""
        return f"| {name} | {sec:.2f} | {cpu_s} | {mb / sec:.1f} | {pages} | {lps} |"

    lines = [
        f"Archive: {n} pages of 50-150 KB ({mb:.0f} MB of HTML, "
        f"{a['file_bytes'] / 1e6:.0f} MB .warc.gz, one gzip member per record), "
        f"{ing['links_new']} distinct links. {result['cores']} cores shared with other work: "
        f"1-min load average {result['load_before']:.1f} before, "
        f"{result['load_after']:.1f} after; CPU = user + system seconds of the process and "
        "its workers.",
        "",
        "| run | seconds | CPU s | MB/s (HTML) | pages/s | links/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        row("FastWARC iteration only", r["fastwarc_seconds"], None, None),
        row("warcio iteration only (peer)", r["warcio_seconds"], None, None),
        row("(a) FastWARC + extract(), 1 process, before the ingest", ref["seconds"],
            ref["cpu_seconds"], ref["links"]),
        row("(a) the same, after the ingest", ref_after["seconds"], ref_after["cpu_seconds"],
            ref_after["links"]),
        row(f"(b) ingest() into DuckDB, default workers ({result['cores']} cores): "
            "batches committed and checkpointed, a queryable index", ing["write_seconds"],
            ing["write_cpu_seconds"], ing["links_new"]),
        row("(b) + compaction (links re-sorted by target, for big targets' reads)",
            ing["seconds"], ing["cpu_seconds"], ing["links_new"]),
    ]
    one = result.get("ingest_one_worker")
    if one:
        lines.append(row("ingest() + compaction, one extraction worker (workers=1)",
                         one["seconds"], one["cpu_seconds"], one["links_new"]))
    nomalloc = result.get("ingest_no_malloc_tuning")
    if nomalloc:
        lines.append(row("ingest() + compaction without malloc tuning", nomalloc["seconds"],
                         nomalloc["cpu_seconds"], nomalloc["links_new"]))
    lines += [
        "",
        f"- ingest / reference throughput (reference = mean of the two (a) runs): "
        f"**{result['ratio_before_compact'] * 100:.0f}%** to a queryable index (the batches "
        f"committed and checkpointed: every answer is there; target >= 50%), "
        f"{result['ratio'] * 100:.0f}% to a compacted one. "
        f"By CPU: the ingest used {ing['cpu_seconds']:.1f} CPU s "
        f"({ing['write_cpu_seconds']:.1f} for the batches, {ing['compact_cpu_seconds']:.1f} "
        f"for the compaction) where the reference used {result['reference_cpu_seconds']:.1f}; "
        f"on {result['cores']} idle cores the batches could reach at most "
        f"{result['cpu_bound_ratio_batches'] * 100:.0f}% of the reference, the compacted "
        f"index {result['cpu_bound_ratio'] * 100:.0f}%.",
        f"- peak RSS: ingest process {ing['rss_main_kb'] / 1024:.0f} MiB, largest worker "
        f"{ing['rss_worker_kb'] / 1024:.0f} MiB. Batches are bounded ({BATCH_PAGES:,} pages or "
        f"{BATCH_LINKS:,} links, two in memory at a time) and the compaction's sort is capped "
        f"at {COMPACT_MEMORY_LIMIT} (it spills to disk past it).",
        f"- a 1 GB .warc.gz of such pages (~{result['one_gb_file_pages']:.0f} pages) would take "
        f"~{result['one_gb_file_seconds'] / 60:.0f} min at this rate.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    res = run(quick="--quick" in sys.argv)
    print(to_markdown(res))
    print(json.dumps(res, indent=1, default=str), file=io.StringIO())
