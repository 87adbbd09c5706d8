"""Run one crawl of the resume test's site in a child process (killed with SIGKILL by the test)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from inlink.index.crawljob import CrawlOptions, crawl
from inlink.index.store import Store
from inlink.settings import Settings


def main() -> None:
    db, resolve_json, seeds = Path(sys.argv[1]), sys.argv[2], sys.argv[3].split(",")
    resolve = {k: (v[0], v[1]) for k, v in json.loads(resolve_json).items()}
    options = CrawlOptions(resolve=resolve, dns=False, delay=0.0, per_host=2, concurrency=8,
                           batch_size=5, batch_seconds=0.05, extract_mode="inline",
                           country=False, timeout=5.0)
    with Store(db) as store:
        summary = crawl(store, seeds, options, Settings(db=db, as_of=dt.date(2026, 1, 1)))
    print(json.dumps({"resumed": summary.resumed, "pages": summary.pages}))


if __name__ == "__main__":
    main()
