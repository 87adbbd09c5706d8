"""Country of a page's IP: offline data only; loopback/private are None; a bad mmdb is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from inlink.errors import InvalidInput
from inlink.sources.geo import CountryLookup


def test_private_and_loopback_need_no_data() -> None:
    geo = CountryLookup()
    assert geo.country("127.0.9.1") is None and geo.country("10.1.2.3") is None
    assert geo.country("::1") is None and geo.country(None) is None
    assert geo._reader is None            # the data file was never opened


def test_public_address_from_bundled_data() -> None:
    pytest.importorskip("geoip2fast")
    assert CountryLookup().country("8.8.8.8") == "US"


def test_missing_mmdb_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="INLINK_GEOIP_MMDB"):
        CountryLookup(tmp_path / "nope.mmdb")
