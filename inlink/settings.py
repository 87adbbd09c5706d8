"""One `Settings` value built from command-line flags and `INLINK_*` environment variables.

Nothing reads the environment at import time: `Settings.from_env()` is called by the CLI (or a
test) and the result is passed down explicitly, together with the clock.
"""

from __future__ import annotations

import datetime as dt
import os
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
    """

    db: Path = field(default_factory=lambda: Path(DEFAULT_DB))
    as_of: dt.date | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `INLINK_*` variables, then explicit overrides (flags) on top."""
        env = os.environ if env is None else env
        settings = cls()
        if db := env.get("INLINK_DB"):
            settings = replace(settings, db=Path(db))
        if as_of := env.get("INLINK_AS_OF"):
            settings = replace(settings, as_of=parse_date(as_of, "INLINK_AS_OF"))
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **given)  # type: ignore[arg-type]

    def today(self) -> dt.date:
        """The clock: `as_of` when set (tests, demos, back-fills), else the UTC date."""
        return self.as_of or dt.datetime.now(dt.UTC).date()


def parse_date(text: str, name: str = "date") -> dt.date:
    """A YYYY-MM-DD date, or InvalidInput naming the option."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(name, f"expected a date as YYYY-MM-DD, got {text!r}") from None
