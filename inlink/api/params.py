"""Request parameters from the query string and a JSON body (read_body: capped), read with
the checks every dialect needs (ranges, allowed values, dates); each failure is InvalidInput
naming the parameter as the caller spelled it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request

from inlink.api.errors import PayloadTooLarge
from inlink.errors import InvalidInput

#: Largest POST body read (100 targets of 2,063 characters and every parameter fit in a
#: quarter of it); a longer one is refused with 413 before it is parsed.
MAX_BODY = 1 << 20


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, refused past `limit` bytes (whatever Content-Length claims)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is over {limit} bytes", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)


class Params:
    """Query-string values (repeatable) overlaid with a JSON object body (POST).

    Names are matched case-insensitively (seed 001's own examples write both `apikey` and
    `apiKey`); a body value wins over the query string, except that lists merge for `target`.
    """

    def __init__(self, query: Iterable[tuple[str, str]], body: Mapping[str, Any] | None = None,
                 aliases: Mapping[str, str] | None = None) -> None:
        self._aliases = {k.lower(): v for k, v in (aliases or {}).items()}
        self._values: dict[str, list[Any]] = {}
        #: Every name an endpoint asked for, as it spelled it (the OpenAPI test reads it).
        self.asked: set[str] = set()
        for k, v in query:
            self._values.setdefault(self._name(k), []).append(v)
        for k, v in (body or {}).items():
            name = self._name(k)
            vals = list(v) if isinstance(v, list) else [v]
            if name == "target":
                self._values.setdefault(name, []).extend(vals)
            else:
                self._values[name] = vals

    def _name(self, key: str) -> str:
        k = str(key).lower()
        return self._aliases.get(k, k)

    def items(self, exclude: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
        """Every (name, values) pair but the excluded names (answer-cache keys)."""
        skip = {self._name(n) for n in exclude}
        return [(k, v) for k, v in self._values.items() if k not in skip]

    def __contains__(self, name: str) -> bool:
        self.asked.add(name)
        return self._name(name) in self._values

    def all(self, name: str) -> list[Any]:
        self.asked.add(name)
        return list(self._values.get(self._name(name), []))

    def get(self, name: str) -> Any:
        """The value of a single-valued parameter (None if absent); repeats are an error.
        Errors name the parameter as the caller spells it (the seed's `histogramMode`)."""
        self.asked.add(name)
        vals = self._values.get(self._name(name))
        if not vals:
            return None
        if len(vals) > 1 and any(v != vals[0] for v in vals[1:]):
            raise InvalidInput(name, "given more than once with different values")
        return vals[0]

    def text(self, name: str, default: str | None = None, *, choices: Iterable[str] = (),
             empty_is_none: bool = True, max_len: int | None = None,
             ascii_only: bool = False) -> str | None:
        v = self.get(name)
        if v is None or (empty_is_none and v == ""):
            return default
        if not isinstance(v, str):
            raise InvalidInput(name, f"expected a string, got {v!r}")
        allowed = tuple(choices)
        if allowed and v not in allowed:
            raise InvalidInput(name, f"{v!r} is not one of {', '.join(allowed)}")
        if max_len is not None and len(v) > max_len:
            raise InvalidInput(name, f"at most {max_len} characters, got {len(v)}")
        if ascii_only and not v.isascii():
            raise InvalidInput(name, "only ASCII characters are allowed")
        return v

    def integer(self, name: str, default: int | None, lo: int, hi: int) -> int | None:
        """An integer in [lo, hi]; "" means the default (seed 001: "passing an empty
        parameter" keeps the default behaviour)."""
        v = self.get(name)
        if v is None or v == "":
            return default
        if isinstance(v, bool):
            raise InvalidInput(name, f"expected an integer, got {v!r}")
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        if not isinstance(v, int | str):
            raise InvalidInput(name, f"expected an integer, got {v!r}")
        try:
            n = int(v)
        except ValueError:
            raise InvalidInput(name, f"expected an integer, got {v!r}") from None
        if not lo <= n <= hi:
            raise InvalidInput(name, f"must be within the range [{lo}, {hi}], got {n}")
        return n

    def date(self, name: str, default: dt.date) -> dt.date:
        v = self.get(name)
        if v is None or v == "":
            return default
        try:
            return dt.date.fromisoformat(str(v))
        except ValueError:
            raise InvalidInput(name, f"expected a date as YYYY-MM-DD, got {v!r}") from None
