"""Shared fixtures for the dwcore test suite.

* ``slow`` tests run only with ``DWCORE_SLOW_TESTS=1``.
* ``isa`` runs a test once per instruction set the module knows, switched
  with :func:`dwcore.native.force_isa`; sets this CPU cannot run are skipped
  (with the reason shown by ``-ra``).
* ``isal`` is Intel ISA-L (Debian's libisal2) through ctypes; its tests are
  skipped with a clear reason where the library is not installed.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import dwcore.native

SLOW = os.environ.get("DWCORE_SLOW_TESTS", "") not in ("", "0")

# Modest example counts by default; DWCORE_SLOW_TESTS=1 digs deeper.
settings.register_profile(
    "dwcore",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
settings.register_profile(
    "dwcore-slow",
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("dwcore-slow" if SLOW else "dwcore")

ALL_ISAS = tuple(dwcore.native.isa_names())  # every set this build knows, slowest first


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SLOW:
        return
    skip = pytest.mark.skip(reason="slow: set DWCORE_SLOW_TESTS=1 to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [
        f"dwcore: detected_isa={dwcore.native.detected_isa()} "
        f"active_isa={dwcore.native.active_isa()} "
        f"available={dwcore.native.available_isas()} "
        f"DWCORE_FORCE_ISA={os.environ.get('DWCORE_FORCE_ISA', '')!r} slow={SLOW}"
    ]


@pytest.fixture(params=ALL_ISAS)
def isa(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each instruction set in turn (skipped where this CPU cannot run it)."""
    name: str = request.param
    if name not in dwcore.native.available_isas():
        pytest.skip(f"{name} cannot run on this CPU (available: {dwcore.native.available_isas()})")
    with dwcore.native.force_isa(name):
        yield name


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded from the test id, so failures reproduce."""
    seed = zlib.crc32(request.node.nodeid.encode())
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def isal() -> object:
    """ISA-L through ctypes; skips when libisal2 is not installed."""
    try:
        from dwcore.bench.isal import IsalUnavailableError, load_isal
    except ImportError as exc:  # pragma: no cover - the wrapper is part of the package
        pytest.fail(f"dwcore.bench.isal cannot be imported: {exc}")
    try:
        return load_isal()
    except IsalUnavailableError as exc:
        pytest.skip(f"ISA-L (libisal2) is not installed: {exc}; apt-get install libisal2")
