"""One `Settings` value built from command-line flags and `INLINK_*` environment variables.

Nothing reads the environment at import time: `Settings.from_env()` is called by the CLI (or a
test) and the result is passed down explicitly, together with the clock.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from inlink.errors import InvalidInput

DEFAULT_DB = "inlink.duckdb"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs to know that is not its own arguments.

    db: the DuckDB file (flag `--db`, env `INLINK_DB`, default `./inlink.duckdb`).
    as_of: the date the clock says it is (flag `--as-of`, env `INLINK_AS_OF`); None = today.
    memory_limit: DuckDB's buffer pool cap for this process (env `INLINK_MEMORY_LIMIT`, e.g.
        "2GB"; "none" keeps DuckDB's default of 80% of RAM).
    compact_memory_limit: DuckDB's cap while an ingest re-sorts the index (env
        `INLINK_COMPACT_MEMORY_LIMIT`; "none": the store's own). The default keeps an
        ingest under 1 GiB; the sort spills past it, and a cap the sort fits in makes it as
        fast as a copy (docs/ingest.md).

    access_log: `inlink serve` logs one line per request to standard output, the API key
        masked (env `INLINK_ACCESS_LOG=0` or `--no-access-log` turns it off).

    Crawl options (`INLINK_CRAWL_*`, `INLINK_GEOIP_MMDB`) are read by `CrawlOptions.from_env`.
    """

    db: Path = field(default_factory=lambda: Path(DEFAULT_DB))
    as_of: dt.date | None = None
    memory_limit: str | None = "1GB"
    compact_memory_limit: str | None = "512MB"
    export_dir: Path | None = None
    refresh_aggregates: bool = True
    api_cache_mb: int = 256
    access_log: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `INLINK_*` variables, then explicit overrides (flags) on top."""
        env = os.environ if env is None else env
        settings = cls()
        if db := env.get("INLINK_DB"):
            settings = replace(settings, db=Path(db))
        if as_of := env.get("INLINK_AS_OF"):
            settings = replace(settings, as_of=parse_date(as_of, "INLINK_AS_OF"))
        if limit := env.get("INLINK_MEMORY_LIMIT"):
            settings = replace(settings, memory_limit=parse_memory_limit(limit))
        if limit := env.get("INLINK_COMPACT_MEMORY_LIMIT"):
            settings = replace(settings, compact_memory_limit=parse_memory_limit(
                limit, "INLINK_COMPACT_MEMORY_LIMIT"))
        if export_dir := env.get("INLINK_EXPORT_DIR"):
            settings = replace(settings, export_dir=Path(export_dir))
        if (cache_mb := env.get("INLINK_API_CACHE_MB")) is not None:
            if not cache_mb.strip().isdigit():
                raise InvalidInput("INLINK_API_CACHE_MB", f"expected a whole number of MiB, "
                                                          f"got {cache_mb!r}")
            settings = replace(settings, api_cache_mb=int(cache_mb))
        if (refresh := env.get("INLINK_REFRESH_AGGREGATES")) is not None:
            settings = replace(settings, refresh_aggregates=_switch(refresh))
        if (access := env.get("INLINK_ACCESS_LOG")) is not None:
            settings = replace(settings, access_log=_switch(access))
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]

    def exports_path(self) -> Path:
        """The folder for API export files: `export_dir`, else `<db stem>-exports` beside
        the index file."""
        return self.export_dir or self.db.with_name(self.db.stem + "-exports")

    def today(self) -> dt.date:
        """The clock: `as_of` when set (tests, demos, back-fills), else the UTC date."""
        return self.as_of or dt.datetime.now(dt.UTC).date()


def _switch(text: str) -> bool:
    """An on/off environment variable: `0`, `false`, `no` and `off` are off."""
    return text.strip().lower() not in ("0", "false", "no", "off")


def parse_date(text: str, name: str = "date") -> dt.date:
    """A YYYY-MM-DD date, or InvalidInput naming the option."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(name, f"expected a date as YYYY-MM-DD, got {text!r}") from None


def parse_memory_limit(text: str, name: str = "INLINK_MEMORY_LIMIT") -> str | None:
    """A DuckDB memory size ("512MB", "2GB", "1.5GiB") or "none"; InvalidInput (naming the
    setting) otherwise."""
    value = text.strip()
    if value.lower() == "none":
        return None
    if not re.fullmatch(r"\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)", value, re.IGNORECASE):
        raise InvalidInput(name, f"expected a size like 512MB or 2GB, or none; got {text!r}")
    return value
