"""The server's access log: one line per request, the API key never in it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from inlink.api import accesslog
from inlink.api.app import COST_HEADER

if TYPE_CHECKING:
    from conftest import Api  # tests/api/conftest.py

V1 = "/v1/backlinks"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    accesslog.configure(True, out)
    yield out
    accesslog.configure(False)


def logged(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_masked_query() -> None:
    m = accesslog.masked_query
    assert m(b"") == b""
    assert m(b"apikey=K1&target=a.com") == b"apikey=***&target=a.com"
    assert m(b"target=a.com&APIKEY=K1&apiKey=K2") == b"target=a.com&APIKEY=***&apiKey=***"
    assert m(b"api%4Bey=K1&api%6bey=K2") == b"api%4Bey=***&api%6bey=***"   # %4B is K
    assert m(b"xapikey=1&apikeys=2&apikey") == b"xapikey=1&apikeys=2&apikey"
    assert m(b"apikey=&a=%20") == b"apikey=***&a=%20"


def test_each_request_is_one_line_without_the_key(api: Api, lines: io.StringIO) -> None:
    key = api.key
    r = api.client.get(V1 + "/summary", params={"target": "example.com", "apiKey": key})
    assert r.status_code == 200
    r2 = api.client.get(V1 + "/anchors", params={"target": "example.com"},
                        headers={"Authorization": f"Token {key}"})
    assert r2.status_code == 200
    assert api.client.get(V1 + "/summary", params={"target": "example.com",
                                                   "apikey": "not-a-key"}).status_code == 401
    assert api.client.get("/nowhere").status_code == 404
    got = logged(lines)
    assert len(got) == 4
    assert all(key not in line and "not-a-key" not in line for line in got)
    first = got[0]
    assert '"GET /v1/backlinks/summary?target=example.com&apiKey=*** HTTP/1.1" 200' in first
    assert first.endswith(f"credits={r.headers[COST_HEADER]}")
    assert "testclient:" in first and "ms credits=" in first
    assert '"GET /v1/backlinks/anchors?target=example.com HTTP/1.1" 200' in got[1]
    assert '?target=example.com&apikey=*** HTTP/1.1" 401' in got[2]
    assert got[2].endswith("credits=-")
    assert '"GET /nowhere HTTP/1.1" 404' in got[3]


def test_off_means_no_lines(api: Api) -> None:
    out = io.StringIO()
    accesslog.configure(True, out)
    accesslog.configure(False)
    assert api.client.get("/healthz").status_code == 200
    assert out.getvalue() == ""


def test_setting_and_flag() -> None:
    from inlink.settings import Settings
    assert Settings.from_env({}).access_log is True
    assert Settings.from_env({"INLINK_ACCESS_LOG": "0"}).access_log is False
    assert Settings.from_env({"INLINK_ACCESS_LOG": "off"}).access_log is False
    assert Settings.from_env({"INLINK_ACCESS_LOG": "1"}).access_log is True
