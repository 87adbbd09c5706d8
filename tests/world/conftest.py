"""Shared worlds for the synthetic-web tests: the default world and a small one."""

from __future__ import annotations

import pytest

from inlink.world import World


@pytest.fixture(scope="session")
def world() -> World:
    return World(seed=1)


@pytest.fixture(scope="session")
def small() -> World:
    return World(seed=7, hosts=120, days=4)
