"""Instruction-set detection, switching and the DWCORE_FORCE_ISA override."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dwcore.native
from dwcore import ec

KNOWN = dwcore.native.isa_names()


def test_isa_names() -> None:
    assert KNOWN[0] == "scalar"
    assert len(set(KNOWN)) == len(KNOWN)


def test_available_isas() -> None:
    available = dwcore.native.available_isas()
    assert isinstance(available, list)
    assert available[0] == "scalar"  # the portable path always runs
    assert set(available) <= set(KNOWN)
    assert available == [i for i in KNOWN if i in available]  # slowest first
    assert dwcore.native.detected_isa() == available[-1]  # the best one is detected
    assert dwcore.native.active_isa() in available


def test_active_isa_follows_environment() -> None:
    forced = os.environ.get("DWCORE_FORCE_ISA", "").strip().lower()
    if forced:
        assert dwcore.native.active_isa() == forced
    else:
        assert dwcore.native.active_isa() == dwcore.native.detected_isa()


def test_set_isa_and_force_isa_restore(isa: str) -> None:
    # the isa fixture is inside force_isa(isa)
    assert dwcore.native.active_isa() == isa
    for other in dwcore.native.available_isas():
        with dwcore.native.force_isa(other) as name:
            assert name == other
            assert dwcore.native.active_isa() == other
        assert dwcore.native.active_isa() == isa
    try:
        dwcore.native.set_isa("scalar")
        assert dwcore.native.active_isa() == "scalar"
    finally:
        dwcore.native.set_isa(isa)


def test_force_isa_restores_after_an_exception() -> None:
    before = dwcore.native.active_isa()
    with pytest.raises(RuntimeError), dwcore.native.force_isa("scalar"):
        assert dwcore.native.active_isa() == "scalar"
        raise RuntimeError("boom")
    assert dwcore.native.active_isa() == before


def test_nested_force_isa() -> None:
    before = dwcore.native.active_isa()
    available = dwcore.native.available_isas()
    with dwcore.native.force_isa(available[-1]):
        with dwcore.native.force_isa("scalar"):
            assert dwcore.native.active_isa() == "scalar"
        assert dwcore.native.active_isa() == available[-1]
    assert dwcore.native.active_isa() == before


# --------------------------------------------------------------------------
# DWCORE_FORCE_ISA in a fresh interpreter
# --------------------------------------------------------------------------

PROBE = """
import json, sys
import numpy as np
import dwcore.native
from dwcore import ec
rng = np.random.default_rng(7)
data = rng.integers(0, 256, (6, 4097), dtype=np.uint8)
rs = ec.ReedSolomon(6, 5)
parity = rs.encode(data)
p, q, r = ec.pqr_parity(data)
shards = [*data, *parity]
shards[0] = shards[3] = shards[7] = None
rec = rs.reconstruct(shards)
digest = [bytes(x).hex()[:64] + str(int(np.asarray(x, dtype=np.uint64).sum())) for x in
          [*parity, p, q, r, rec[0], rec[3], rec[7]]]
print(json.dumps({"active": dwcore.native.active_isa(), "digest": digest}))
"""


def run_probe(force: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("DWCORE_FORCE_ISA", None)
    if force is not None:
        env["DWCORE_FORCE_ISA"] = force
    # Run from tests/ so `python -c` imports the installed package, never the
    # source tree at the repository root.
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parent,
    )


def local_digest() -> list[str]:
    rng = np.random.default_rng(7)
    data = rng.integers(0, 256, (6, 4097), dtype=np.uint8)
    rs = ec.ReedSolomon(6, 5)
    parity = rs.encode(data)
    p, q, r = ec.pqr_parity(data)
    shards: list[np.ndarray | None] = [*data, *parity]
    shards[0] = shards[3] = shards[7] = None
    rec = rs.reconstruct(shards)
    return [
        bytes(x).hex()[:64] + str(int(np.asarray(x, dtype=np.uint64).sum()))
        for x in [*parity, p, q, r, rec[0], rec[3], rec[7]]
    ]


@pytest.mark.parametrize("name", KNOWN)
def test_force_isa_environment_variable(name: str) -> None:
    if name not in dwcore.native.available_isas():
        pytest.skip(f"{name} cannot run on this CPU")
    proc = run_probe(name)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["active"] == name
    with dwcore.native.force_isa("scalar"):
        assert result["digest"] == local_digest()


def test_unset_or_empty_environment_variable_detects() -> None:
    for value in (None, ""):
        proc = run_probe(value)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["active"] == dwcore.native.detected_isa()


@pytest.mark.parametrize("bad", ["bogus", "avx512", "sse"])
def test_invalid_environment_variable_is_a_clear_error(bad: str) -> None:
    proc = run_probe(bad)
    assert proc.returncode != 0
    assert proc.returncode > 0, f"crashed instead of raising: {proc.returncode}"
    err = proc.stderr
    assert "DWCORE_FORCE_ISA" in err, err
    assert bad in err, err
    assert "scalar" in err, f"the message should list the valid names: {err}"
    assert "Error" in err.splitlines()[-1], err


def test_unrunnable_environment_variable_is_a_clear_error() -> None:
    missing = [i for i in KNOWN if i not in dwcore.native.available_isas()]
    if not missing:
        pytest.skip("this CPU runs every instruction set dwcore knows")
    proc = run_probe(missing[-1])
    assert proc.returncode > 0
    assert "DWCORE_FORCE_ISA" in proc.stderr and missing[-1] in proc.stderr
