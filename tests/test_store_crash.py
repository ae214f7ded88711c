"""Crashes of a writer: kill -9 of a subprocess, and power cuts of the pool devices.

After each: reopen, fsck (no problem left after its repair, and a second run
finds nothing to free), every acknowledged put readable byte-exact, every
snapshot showing exactly what it showed (:mod:`tests.store_crash_model`).
The default run does 30 kill trials and 16 power cuts; ``DWCORE_SLOW_TESTS=1``
adds 240 and 100 more.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import blake3
import pytest
from store_crash_model import COMPARTMENT, Model, choose, payload, perform, verify
from store_helpers import CONFIG, audit_records, fast_root, make, reopen

from dwcore.devices import FaultyDevice, RamDevice
from dwcore.store import Catalog, Instance
from dwcore.store.instance import ALLOCATORS_UNSYNCED

WORKER = Path(__file__).with_name("store_crash_worker.py")
N_OPS = 40
DEV_SIZE = 16 << 20


def _kill_trial(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    with fast_root(tmp_path) as root:
        with make(root) as inst:
            inst.create_compartment(COMPARTMENT)
        # half the trials: the worker kills itself at a chosen step (before or after a pool
        # write or sync, a catalog commit, a snapshot's creation or deletion); the other
        # half: this process kills it after a random number of acknowledged operations
        self_kill = seed % 2 == 0
        args = [sys.executable, str(WORKER), str(root), str(seed), str(N_OPS)]
        if self_kill:
            args.append(str(rng.randrange(1, 4 * N_OPS)))
        acks_before_kill = rng.randrange(0, N_OPS)
        proc = subprocess.Popen(
            args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        model = Model()
        assert proc.stdout is not None
        acks = 0
        for line in proc.stdout:  # read to the end: lines printed before the kill count
            kind, _, body = line.partition(" ")
            if not line.endswith("\n"):
                break  # cut off by the kill
            op = json.loads(body)
            if kind == "B":
                model.begin(op)
            else:
                model.ack(op)
                acks += 1
                if not self_kill and acks == acks_before_kill:
                    proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=120)
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.returncode in (0, -signal.SIGKILL), err
        with reopen(root) as inst:
            verify(inst, model)


@pytest.mark.parametrize("seed", range(30))
def test_kill_9_during_puts_deletes_and_snapshots(tmp_path: Path, seed: int) -> None:
    _kill_trial(tmp_path, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(30, 270))
def test_kill_9_many(tmp_path: Path, seed: int) -> None:
    _kill_trial(tmp_path, seed)


class _Cut(BaseException):
    """The power fails here (not an Exception: no handler of the store catches it)."""


def _arm(monkeypatch: pytest.MonkeyPatch, inst: Instance, at: int) -> None:
    """Raise _Cut at the ``at``-th call of a pool write or sync or a catalog change:
    before the call for even ``at``, after it for odd."""
    calls = [0]
    pool = inst.pools["main"]

    def hook(obj: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(obj, name)

        def hooked(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == at and at % 2 == 0:
                raise _Cut
            out = real(*args, **kwargs)
            if calls[0] == at:
                raise _Cut
            return out

        monkeypatch.setattr(obj, name, hooked)

    hook(pool, "write")
    hook(pool, "sync")
    for name in ("apply", "create_snapshot", "delete_snapshot"):
        hook(inst.catalog, name)


def _power_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    devs = [FaultyDevice(RamDevice(DEV_SIZE), close_inner=False) for _ in range(6)]
    with fast_root(tmp_path) as root:
        inst = Instance.create(root, CONFIG, devices={"main": devs}, check_resources=False)
        inst.create_compartment(COMPARTMENT)
        model = Model()
        with monkeypatch.context() as patch:
            _arm(patch, inst, rng.randrange(1, 4 * N_OPS))
            try:
                for _ in range(N_OPS):
                    op = choose(rng, model)
                    data = None
                    if op["op"] == "put":
                        data = payload(rng)
                        op["hash"] = blake3.blake3(data).hexdigest()
                    model.begin(op)
                    model.ack(perform(inst, op, data))
            except _Cut:
                pass
        inst.close(sync=False)
        for i, dev in enumerate(devs):
            dev.power_cut(seed=seed * 10 + i, keep="random")
        with reopen(root, devices={"main": devs}) as inst:
            verify(inst, model)
        for dev in devs:
            dev.inner.close()


@pytest.mark.parametrize("seed", range(16))
def test_power_cut_of_the_pool_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    _power_trial(tmp_path, monkeypatch, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16, 116))
def test_power_cut_many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    _power_trial(tmp_path, monkeypatch, seed)


def test_power_cut_after_unsynced_writes_leaks_nothing_acknowledged(tmp_path: Path) -> None:
    """Data written but never synced (a put cut short) vanishes; reopening frees its rows."""
    devs = [FaultyDevice(RamDevice(DEV_SIZE), close_inner=False) for _ in range(6)]
    with fast_root(tmp_path) as root:
        with Instance.create(root, CONFIG, devices={"main": devs}, check_resources=False) as inst:
            inst.create_compartment(COMPARTMENT)
            inst.put(COMPARTMENT, "kept", b"durable" * 1000)
            snap = inst.snapshots.create("instance")
            inst.pools["main"].write(b"never committed" * 1000)
            inst.pools["main"].sync()  # rows allocated durably, no catalog entry
            inst.pools["main"].write(b"never synced" * 1000)
            assert any(d.unsynced_writes for d in devs)
            inst.close(sync=False)
        for i, dev in enumerate(devs):
            dev.power_cut(seed=i, keep="none")
        with reopen(root, devices={"main": devs}) as inst:
            assert inst.recovered_rows["main"] > 0  # the crash recovery freed them
            report = inst.fsck()
            assert report.ok and report.leaked_rows["main"] == 0
            assert inst.get(COMPARTMENT, "kept") == b"durable" * 1000
            assert inst.snapshots.read(snap.id, COMPARTMENT, "kept") == b"durable" * 1000
            assert inst.fsck().leaked_rows == {"main": 0}


def test_crash_with_the_allocators_unsynced_keeps_every_acknowledged_row(
    tmp_path: Path,
) -> None:
    """Puts sync the devices, not the allocator: after a power cut the allocator has
    forgotten their rows, and the open restores them from the catalog before any write."""
    rng = random.Random(7)
    devs = [FaultyDevice(RamDevice(DEV_SIZE), close_inner=False) for _ in range(6)]
    with fast_root(tmp_path) as root:
        inst = Instance.create(root, CONFIG, devices={"main": devs}, check_resources=False)
        marker = inst.state_root / ALLOCATORS_UNSYNCED
        assert marker.exists()
        inst.create_compartment(COMPARTMENT)
        kept = {f"k{i}": rng.randbytes(rng.randrange(1, 40_000)) for i in range(24)}
        for key, data in kept.items():
            inst.put(COMPARTMENT, key, data)
        used = inst.pools["main"].status().used
        inst.close(sync=False)  # the allocator file keeps its state of the instance's creation
        for i, dev in enumerate(devs):
            dev.power_cut(seed=i, keep="none")
        assert marker.exists()
        with reopen(root, devices={"main": devs}) as inst:
            assert inst.pools["main"].status().used == used
            for i in range(48):  # new rows must come from free space only
                inst.put(COMPARTMENT, f"new{i}", rng.randbytes(rng.randrange(1, 40_000)))
            for key, data in kept.items():
                assert inst.get(COMPARTMENT, key) == data
            assert inst.fsck().ok
            actions = [r.action for r in audit_records(inst)]
            assert "instance.recover" in actions
        assert not marker.exists()  # a clean close synced the allocators
        with reopen(root, devices={"main": devs}) as inst:
            assert inst.recovered_rows == {}
            assert inst.get(COMPARTMENT, "k3") == kept["k3"]


def test_worker_imports_the_installed_package(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", "import dwcore.store, sys; print(dwcore.store.__file__)"],
        cwd=tmp_path, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(out.stdout.strip()).name == "__init__.py"
    assert Catalog.__module__ == "dwcore.store.catalog"
