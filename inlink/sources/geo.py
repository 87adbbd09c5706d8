"""IP address -> ISO country code for crawled pages, from offline data only.

Default: the data file geoip2fast ships. `INLINK_GEOIP_MMDB` may name a MaxMind .mmdb instead.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Any

from inlink.errors import InvalidInput


def _not_public(ip: str) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return True
    return not addr.is_global


class CountryLookup:
    """`country(ip)` -> "US" | None. Loopback, private and reserved addresses are None."""

    def __init__(self, mmdb: Path | str | None = None) -> None:
        self.mmdb = Path(mmdb) if mmdb else None
        if self.mmdb is not None and not self.mmdb.is_file():
            raise InvalidInput("INLINK_GEOIP_MMDB",
                               f"{self.mmdb} does not exist: point it at a MaxMind GeoLite2/"
                               "GeoIP2 Country .mmdb file, or unset it to use the data "
                               "geoip2fast ships")
        self._reader: Any = None
        self.source = f"mmdb:{self.mmdb}" if self.mmdb else "geoip2fast"

    def _load(self) -> Any:
        # Loaded on the first public address only: crawls of loopback webs never pay for it.
        if self._reader is None:
            if self.mmdb is not None:
                try:
                    import geoip2.database
                except ImportError:
                    raise InvalidInput("INLINK_GEOIP_MMDB",
                                       "reading .mmdb files needs `pip install geoip2`") from None
                self._reader = geoip2.database.Reader(str(self.mmdb))
            else:
                try:
                    from geoip2fast import GeoIP2Fast
                except ImportError:
                    raise InvalidInput("country lookup",
                                       "needs `pip install geoip2fast` (offline data "
                                       "included), or INLINK_GEOIP_MMDB") from None
                self._reader = GeoIP2Fast(verbose=False)
        return self._reader

    def country(self, ip: str | None) -> str | None:
        if not ip or _not_public(ip):
            return None
        return self._cached(ip)

    @lru_cache(maxsize=65536)  # noqa: B019 - one lookup object per crawl
    def _cached(self, ip: str) -> str | None:
        reader = self._load()
        if self.mmdb is not None:
            import geoip2.errors

            try:
                code = reader.country(ip).country.iso_code
            except (geoip2.errors.AddressNotFoundError, ValueError):
                return None
            return str(code) if code else None
        result = reader.lookup(ip)
        code = getattr(result, "country_code", None)
        if not code or code == "--" or getattr(result, "is_private", False):
            return None
        return str(code)

    def close(self) -> None:
        if self.mmdb is not None and self._reader is not None:
            self._reader.close()
