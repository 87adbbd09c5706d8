"""An app over a small synthetic web crawled over three days (as tests/query does), with a
Data API key; the query layer's answers (checked there against the world's truth) are what
the API must return."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette >= 1.x warns that its TestClient will move to httpx2; httpx is what we
    # install (pyproject test extras), so the deprecation is expected here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from inlink.api.app import create_app
from inlink.api.exports import Exports
from inlink.api.keys import Ledger, create_key, hash_key
from inlink.index.crawljob import CrawlOptions, crawl
from inlink.index.store import Store
from inlink.rank import run_rank
from inlink.settings import Settings
from inlink.world import World, serve_in_thread

DAYS = 3


@dataclass
class Built:
    world: World
    db: Path
    today: dt.date


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    world = World(seed=7, hosts=100, days=DAYS)
    db = tmp_path_factory.mktemp("api") / "world.duckdb"
    with serve_in_thread(world, 1, slow_delay=0.3, trickle_max=1.0,
                         idle_timeout=3.0) as served, Store(db) as store:
        for day in range(1, DAYS + 1):
            served.set_day(day)
            options = CrawlOptions(resolve=served.resolve, dns=False, delay=0.01, scope="any",
                                   timeout=3.0, read_timeout=2.0, extract_mode="thread",
                                   country=False)
            crawl(store, world.seeds(), options, Settings(db=db, as_of=world.date_of(day)))
            # a rank run per day, so the authority history endpoints have a history
            run_rank(store, Settings(db=db, as_of=world.date_of(day)))
        store.compact()
    return Built(world, db, world.date_of(DAYS))


@dataclass
class Api:
    client: TestClient
    store: Store
    key: str
    today: dt.date
    world: World
    exports: Exports
    ledger: Ledger

    def balance_in_index(self, key: str) -> int:
        """The key's balance as written in the index (after the ledger's write-back)."""
        self.ledger.flush()
        return int(self.store.query("SELECT balance FROM api_keys WHERE key_hash = ?",
                                    [hash_key(key)])[0][0])

    def new_key(self, credits: int, dialect: str = "data") -> str:
        return create_key(self.store, dialect, credits)


@pytest.fixture(scope="session")
def api(built: Built) -> Iterator[Api]:
    app = create_app(Settings(db=built.db, as_of=built.today))
    with TestClient(app, raise_server_exceptions=False) as client:
        store: Store = app.state.store
        key = create_key(store, "data", 10**9)
        yield Api(client, store, key, built.today, built.world, app.state.exports,
                  app.state.ledger)
