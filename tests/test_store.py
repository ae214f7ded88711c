"""The object store through dwcore.Instance: compartments, put/get/head/delete/list, keys,
streaming, concurrency, fsck and the on-disk layout of an instance."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import numpy as np
import pytest
from store_helpers import audit_records, fast_root, make, reopen

import dwcore
from dwcore.errors import (
    AlreadyExistsError,
    CompartmentNotEmptyError,
    ConfigError,
    InvalidArgumentError,
    InvalidKeyError,
    NotFoundError,
)
from dwcore.paths import CONFIG_FILE
from dwcore.store import EXTENT_BYTES, Instance, check_key
from dwcore.store.keys import partition_of, prefix_end


@pytest.fixture
def inst(tmp_path: Path) -> Iterator[Instance]:
    with fast_root(tmp_path) as root, make(root) as i:
        i.create_compartment("c")
        yield i


def test_instance_is_exported_and_lays_out_its_root(tmp_path: Path) -> None:
    assert dwcore.Instance is Instance
    with make(tmp_path / "r") as inst:
        inst.create_compartment("docs")
        inst.put("docs", "k", b"v")
    names = {p.name for p in (tmp_path / "r").iterdir()}
    assert {CONFIG_FILE, "catalog.sqlite3", "auth.sqlite3", "audit", "pools"} <= names
    assert sorted(p.name for p in (tmp_path / "r/pools/main").glob("dev-*")) == [
        f"dev-{i:02d}" for i in range(6)
    ]
    with reopen(tmp_path / "r") as inst:
        assert inst.get("docs", "k") == b"v"
        assert inst.pools["main"].layout.level == "6"
        assert inst.tiers() == {"hot": "main", "warm": "main", "cold": "main"}


def test_create_refuses_an_existing_instance_and_open_a_missing_one(tmp_path: Path) -> None:
    make(tmp_path / "r").close()
    with pytest.raises(AlreadyExistsError, match="already holds"):
        make(tmp_path / "r")
    with pytest.raises(NotFoundError, match="no dwcore instance"):
        Instance.open(tmp_path / "nothing")


def test_create_validates_the_config_before_writing(tmp_path: Path) -> None:
    bad = {"pools": [{"name": "main", "level": "6", "devices": 6, "device_size": "1KiB"}]}
    with pytest.raises(ConfigError, match="device_size"):
        Instance.create(tmp_path / "r", bad, check_resources=False)
    assert not (tmp_path / "r" / CONFIG_FILE).exists()


def test_default_instance_is_raid6_on_six_files(tmp_path: Path) -> None:
    with Instance.create(tmp_path / "d", check_resources=False) as inst:
        pool = inst.pools["main"]
        assert pool.layout.level == "6" and pool.layout.n_devices == 6
        inst.create_compartment("x")
        inst.put("x", "y", b"z")
    text = (tmp_path / "d" / CONFIG_FILE).read_text()
    assert '"level" = "6"' in text


def test_put_get_head_delete_round_trip(inst: Instance, rng: np.random.Generator) -> None:
    data = rng.bytes(100_000)
    info = inst.put("c", "dir/file.bin", data, metadata={"type": "application/x"})
    assert info.size == len(data)
    assert info.content_hash == blake3.blake3(data).hexdigest()
    assert info.metadata == {"type": "application/x"}
    assert info.partition == partition_of("dir/file.bin", 16)
    assert inst.get("c", "dir/file.bin") == data
    assert inst.get("c", "dir/file.bin", 1000, 5000) == data[1000:6000]
    assert inst.get("c", "dir/file.bin", 99_990) == data[99_990:]
    assert inst.get("c", "dir/file.bin", 99_990, 100) == data[99_990:]
    head = inst.head("c", "dir/file.bin")
    assert head.version_id == info.version_id and head.size == len(data)
    inst.put("c", "dir/file.bin", b"second")
    assert inst.get("c", "dir/file.bin") == b"second"
    assert [v.size for v in inst.versions("c", "dir/file.bin")] == [6]
    removed = inst.delete("c", "dir/file.bin")
    assert removed.size == 6
    with pytest.raises(NotFoundError, match="does not exist"):
        inst.get("c", "dir/file.bin")
    with pytest.raises(NotFoundError):
        inst.delete("c", "dir/file.bin")


def test_empty_object_and_bad_ranges(inst: Instance) -> None:
    inst.put("c", "empty", b"")
    assert inst.get("c", "empty") == b""
    assert inst.head("c", "empty").size == 0
    inst.put("c", "k", b"abc")
    with pytest.raises(InvalidArgumentError, match="past the end"):
        inst.get("c", "k", 4)
    with pytest.raises(InvalidArgumentError, match="offset"):
        inst.get("c", "k", -1)
    with pytest.raises(InvalidArgumentError, match="encode"):
        inst.put("c", "k", "text")  # type: ignore[arg-type]
    assert inst.get("c", "k") == b"abc"


def test_large_object_is_streamed_in_extents(inst: Instance, rng: np.random.Generator) -> None:
    pieces = [rng.bytes(1_000_003) for _ in range(10)]  # odd sizes: the writer re-chunks
    whole = b"".join(pieces)
    info = inst.put("c", "big", iter(pieces))
    assert info.size == len(whole)
    stored = inst.catalog.version(info.version_id)
    assert stored is not None
    assert [r.length for r in stored.extents] == [
        EXTENT_BYTES,
        EXTENT_BYTES,
        len(whole) - 2 * EXTENT_BYTES,
    ]
    assert inst.get("c", "big") == whole
    start = EXTENT_BYTES - 10
    assert inst.get("c", "big", start, 20) == whole[start : start + 20]  # across extents
    with inst.get_stream("c", "big", chunk_size=300_000) as stream:
        parts = list(stream)
    assert b"".join(parts) == whole and max(map(len, parts)) <= 300_000
    info2 = inst.put("c", "file", io.BytesIO(whole))
    assert info2.content_hash == info.content_hash
    with inst.get_stream("c", "file", 5, 100) as stream:
        assert stream.read(10) == whole[5:15]
        assert stream.read() == whole[15:105]
        assert stream.read() == b""


def test_a_stream_keeps_its_version_after_overwrite_and_delete(inst: Instance) -> None:
    inst.put("c", "k", b"old" * 10_000)
    stream = inst.get_stream("c", "k", chunk_size=1000)
    first = next(stream)
    inst.put("c", "k", b"new")
    inst.delete("c", "k")
    inst.put("c", "other", b"x" * 100_000)  # would reuse freed rows
    assert first + b"".join(stream) == b"old" * 10_000
    rep = inst.fsck()
    assert rep.ok and rep.leaked_rows == {"main": 0}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("", "empty"),
        ("/abs", "start with '/'"),
        ("a/../b", "'..'"),
        ("..", "'..'"),
        ("a/./b", "'.'"),
        ("nul\x00", "NUL"),
        ("tab\there", "control character"),
        ("bell\x07", "control character"),
        ("del\x7f", "control character"),
        ("c1\x85", "control character"),
        ("é" * 513, "1026 bytes"),
        ("x" * 1025, "1025 bytes"),
        ("\udcff", "surrogate"),
    ],
)
def test_hostile_keys_are_refused_with_clear_errors(inst: Instance, key: str, why: str) -> None:
    with pytest.raises(InvalidKeyError, match=why):
        inst.put("c", key, b"x")
    with pytest.raises(InvalidKeyError):
        inst.get("c", key)
    assert inst.list("c").objects == ()


@pytest.mark.parametrize(
    "key",
    ["a", "x" * 1024, "é" * 512, "a..b/c..", "...", "a/b/", "日本/語", "sp ace", "🙂", "a//b"],
)
def test_unusual_valid_keys_round_trip(inst: Instance, key: str) -> None:
    assert check_key(key) == key
    inst.put("c", key, key.encode())
    assert inst.get("c", key) == key.encode()
    assert inst.list("c").keys == [key]


def test_bad_names_and_metadata(inst: Instance) -> None:
    with pytest.raises(InvalidArgumentError, match="compartment name"):
        inst.create_compartment("../etc")
    with pytest.raises(InvalidArgumentError, match="metadata"):
        inst.put("c", "k", b"", metadata={"bad name": "x"})
    with pytest.raises(InvalidArgumentError, match="text"):
        inst.put("c", "k", b"", metadata={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgumentError, match="at most"):
        inst.put("c", "k", b"", metadata={"n": "x" * 9000})
    with pytest.raises(NotFoundError, match="compartment 'nope'"):
        inst.put("nope", "k", b"")


def test_list_pages_in_key_order_with_prefix(inst: Instance) -> None:
    keys = sorted({f"p/{i:04d}" for i in range(250)} | {"q", "p", "p0", "o/z", "p/\U0010ffff"})
    for k in keys:
        inst.put("c", k, k.encode())
    seen: list[str] = []
    after = None
    while True:
        page = inst.list("c", "p/", after, 37)
        seen += page.keys
        if page.next_start_after is None:
            break
        after = page.next_start_after
    assert seen == [k for k in keys if k.startswith("p/")]
    assert inst.list("c", limit=10_000).keys == keys
    assert inst.list("c", "p/02", limit=5).keys == [
        "p/0200",
        "p/0201",
        "p/0202",
        "p/0203",
        "p/0204",
    ]
    assert inst.list("c", "zz").keys == []
    assert [o.key for o in inst.iter_objects("c", "p/01")] == [f"p/01{i:02d}" for i in range(100)]
    with pytest.raises(InvalidArgumentError, match="limit"):
        inst.list("c", limit=0)
    assert prefix_end("a\U0010ffff") == "b"
    assert prefix_end("\U0010ffff") is None


def test_compartments(inst: Instance) -> None:
    info = inst.create_compartment("logs", partitions=4, tier="cold")
    assert info.partitions == 4 and info.tier == "cold" and info.owner.startswith("local:")
    with pytest.raises(AlreadyExistsError):
        inst.create_compartment("logs")
    assert [c.name for c in inst.list_compartments()] == ["c", "logs"]
    inst.put("logs", "a", b"1")
    assert inst.head("logs", "a").partition == partition_of("a", 4)
    with pytest.raises(CompartmentNotEmptyError, match="1 object"):
        inst.delete_compartment("logs")
    inst.delete("logs", "a")
    inst.delete_compartment("logs")
    assert [c.name for c in inst.list_compartments()] == ["c"]
    inst.create_compartment("logs")  # the name is free again, the new one is empty
    assert inst.list("logs").objects == ()
    with pytest.raises(InvalidArgumentError, match="tier"):
        inst.create_compartment("t", tier="lukewarm")


def test_concurrent_writers_are_group_committed(inst: Instance) -> None:
    n_threads, per = 8, 25
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per):
                inst.put("c", f"t{t}/{i}", f"{t}:{i}".encode() * 100)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    before = inst.group_commit.batches
    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    batches = inst.group_commit.batches - before
    assert batches < n_threads * per  # some batches held several puts
    for t in range(n_threads):
        for i in range(per):
            assert inst.get("c", f"t{t}/{i}") == f"{t}:{i}".encode() * 100
    assert len(inst.list("c", limit=10_000).objects) == n_threads * per


def test_concurrent_overwrites_leave_one_version_and_no_leak(inst: Instance) -> None:
    def work(t: int) -> None:
        for i in range(20):
            inst.put("c", "hot", bytes([t]) * (1000 + i))
            inst.get("c", "hot")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    data = inst.get("c", "hot")
    assert len(set(data)) == 1
    assert len(inst.versions("c", "hot")) == 1
    rep = inst.fsck()
    assert rep.ok and rep.leaked_rows == {"main": 0}
    assert inst.catalog.counts()["extents"] == 1


def test_fsck_frees_rows_no_version_references(inst: Instance) -> None:
    inst.put("c", "keep", b"k" * 50_000)
    pool = inst.pools["main"]
    leaked = [pool.write(b"orphan" * 5000) for _ in range(3)]
    pool.sync()
    rep = inst.fsck()
    assert rep.ok
    assert rep.leaked_rows["main"] == sum(e.rows for e in leaked)
    assert any("leaked" in line for line in rep.repaired)
    assert inst.fsck().leaked_rows["main"] == 0
    deep = inst.fsck(deep=True)
    assert deep.ok and deep.verified == 1
    assert inst.get("c", "keep") == b"k" * 50_000


def test_fsck_without_repair_reports_leaks_and_changes_nothing(inst: Instance) -> None:
    inst.put("c", "keep", b"k" * 50_000)
    pool = inst.pools["main"]
    leaked = [pool.write(b"orphan" * 5000) for _ in range(3)]
    pool.sync()
    used = pool.status().used
    rep = inst.fsck(repair=False)
    rows = sum(e.rows for e in leaked)
    assert not rep.ok and rep.leaked_rows == {"main": rows} and rep.repaired == []
    assert any(f"{rows} allocated row(s) no object references" in p for p in rep.problems)
    assert pool.status().used == used  # nothing freed
    assert inst.fsck().leaked_rows == {"main": rows}
    assert inst.fsck(repair=False).ok


def test_fsck_finds_and_restores_referenced_rows_the_pool_had_free(inst: Instance) -> None:
    """Rows an object uses but the allocator has free (a damaged allocator) would be
    handed to the next write: fsck reports them, and its repair allocates them again."""
    data = bytes(range(256)) * 400
    inst.put("c", "k", data)
    pool = inst.pools["main"]
    ext = inst.head("c", "k").extents[0].extent
    pool._alloc.free(ext.first_row, ext.rows)  # the damage
    rep = inst.fsck(repair=False)
    assert not rep.ok
    assert any(f"{ext.rows} row(s) that objects reference are free" in p for p in rep.problems)
    assert not pool._alloc.is_allocated(ext.first_row, ext.rows)  # still unrepaired
    rep = inst.fsck()
    assert rep.ok, rep.problems
    assert any(f"marked {ext.rows} row(s)" in r for r in rep.repaired)
    assert pool._alloc.is_allocated(ext.first_row, ext.rows)
    inst.put("c", "other", b"x" * 100_000)  # goes elsewhere now
    assert inst.head("c", "other").extents[0].extent.first_row != ext.first_row
    assert inst.get("c", "k") == data and inst.fsck(repair=False).ok


def test_fsck_deep_finds_wrong_content(inst: Instance) -> None:
    info = inst.put("c", "k", b"a" * 1000)
    inst.catalog._conn.execute(
        "UPDATE versions SET hash = ? WHERE id = ?", (b"\0" * 32, info.version_id)
    )
    rep = inst.fsck(deep=True)
    assert not rep.ok and "content hash mismatch" in rep.problems[0]


def test_operations_are_audited(inst: Instance) -> None:
    inst.put("c", "k", b"abc")
    inst.get("c", "k")
    inst.delete("c", "k")
    with pytest.raises(NotFoundError):
        inst.get("c", "k")
    recs = audit_records(inst, resource="object:c/k")
    assert [(r.action, r.outcome.value) for r in recs] == [
        ("object.put", "success"),
        ("object.get", "success"),
        ("object.delete", "success"),
        ("object.get", "failure"),
    ]
    assert all(r.principal.startswith("local:") and r.details["via"] == "local" for r in recs)
    created = audit_records(inst, action="compartment.create", category="administration")
    assert [r.resource for r in created] == ["compartment:c"]


def test_closed_instance_refuses_work(tmp_path: Path) -> None:
    inst = make(tmp_path / "r")
    inst.create_compartment("c")
    inst.close()
    inst.close()
    with pytest.raises(InvalidArgumentError, match="closed"):
        inst.put("c", "k", b"")


def test_open_refuses_a_config_that_no_longer_matches_the_pool(tmp_path: Path) -> None:
    with fast_root(tmp_path) as root:
        make(root).close()
        cfg = root / CONFIG_FILE
        cfg.write_text(cfg.read_text().replace('"level" = "6"', '"level" = "5"'))
        with pytest.raises(ConfigError, match="layout cannot change"):
            reopen(root)


def test_put_flushes_every_device(inst: Instance) -> None:
    """A put returns only after every device of its pool flushed (Pool.sync: plain
    files in one native call, the others through Device.sync)."""
    synced: list[int] = []
    for i, dev in enumerate(inst.pools["main"].devices):
        assert dev is not None
        real_sync, real_leave = dev.sync, dev.leave_raw_sync

        def counting(real: Any = real_sync, i: int = i) -> None:
            synced.append(i)
            real()

        def leaving(error: int, real: Any = real_leave, i: int = i) -> Any:
            if not error:
                synced.append(i)
            return real(error)

        dev.sync = counting  # type: ignore[method-assign]
        dev.leave_raw_sync = leaving  # type: ignore[method-assign]
    inst.put("c", "k", b"parallel" * 1000)
    assert sorted(set(synced)) == list(range(len(inst.pools["main"].devices)))
    assert inst.get("c", "k") == b"parallel" * 1000
    assert inst.fsck().ok


def test_instance_runs_a_memory_monitor(inst: Instance) -> None:
    """An open instance polls memory pressure (the [resources] thresholds), so the
    pools' caches shrink and new requests are throttled as the level rises."""
    from dwcore.memory import Level

    assert inst.memory_monitor.running
    status = inst.memory_monitor.check()
    assert status.level in tuple(Level)
    inst.close()
    assert not inst.memory_monitor.running


def test_group_commit_leader_waits_for_writers_still_writing() -> None:
    """Commit delay: a leader waits (up to ``delay``) for announced writers to queue,
    so they share its batch; a lone writer never waits."""
    from dwcore.store.commit import GroupCommit

    batches: list[list[Any]] = []
    gc = GroupCommit(lambda batch: batches.append([r.change for r in batch]), delay=5.0)
    t0 = time.monotonic()
    with gc.writing() as w:
        gc.submit("alone", writer=w)
    assert batches == [["alone"]] and time.monotonic() - t0 < 1.0
    started, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with gc.writing() as w:
            started.set()
            release.wait(10)
            gc.submit("slow", writer=w)

    th = threading.Thread(target=slow_writer)
    th.start()
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    with gc.writing() as w:
        gc.submit("fast", writer=w)  # leads, and waits for the slow writer to queue
    th.join()
    assert batches[1] == ["fast", "slow"]
    # a writer that leaves without submitting releases a waiting leader
    gc.delay = 30.0
    started.clear()
    release.clear()

    def quitter() -> None:
        with gc.writing():
            started.set()
            release.wait(10)

    th = threading.Thread(target=quitter)
    th.start()
    assert started.wait(5)
    threading.Timer(0.2, release.set).start()
    t0 = time.monotonic()
    gc.submit("after")
    th.join()
    assert batches[2] == ["after"] and time.monotonic() - t0 < 10


def test_group_commit_hands_the_lead_on_under_load_and_after_errors() -> None:
    """Many writers: every change is committed exactly once and answered with its own
    result; a batch that fails raises in each of its writers, and the lead passes to
    the next queued writer either way (nobody is left waiting)."""
    from dwcore.store.commit import GroupCommit, Request

    seen: list[int] = []
    lock = threading.Lock()

    def run(batch: list[Request]) -> None:
        with lock:
            seen.extend(r.change for r in batch)
        if any(r.change % 7 == 0 for r in batch):
            raise RuntimeError("batch failed")
        for r in batch:
            r.result = r.change * 2
        time.sleep(0.0005)

    gc = GroupCommit(run, delay=0.001)
    outcomes: dict[int, Any] = {}

    def writer(t: int) -> None:
        for i in range(40):
            change = t * 1000 + i
            with gc.writing() as w:
                try:
                    outcomes[change] = gc.submit(change, writer=w)
                except RuntimeError as exc:
                    outcomes[change] = exc

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(12)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not any(th.is_alive() for th in threads)
    assert sorted(seen) == sorted(outcomes) and len(seen) == 12 * 40
    assert gc.committed == len(seen) and gc.batches < len(seen)
    for change, out in outcomes.items():
        assert out == change * 2 or isinstance(out, RuntimeError)
        if change % 7 == 0:
            assert isinstance(out, RuntimeError)
    assert any(not isinstance(out, RuntimeError) for out in outcomes.values())


def test_group_commit_interrupted_follower_is_withdrawn_and_others_go_on() -> None:
    """An interrupt (Ctrl-C) while a change waits in the queue withdraws it: it is
    never committed, and the lead still passes on, so later writers are served."""
    import signal

    from dwcore.store.commit import GroupCommit, committed

    gate = threading.Event()
    ran: list[Any] = []

    def run(batch: list[Any]) -> None:
        if batch[0].change == "first":
            assert gate.wait(10)
        ran.extend(r.change for r in batch)
        for r in batch:
            r.result = r.change

    gc = GroupCommit(run, delay=0)
    results: list[Any] = []
    t1 = threading.Thread(target=lambda: results.append(gc.submit("first")))
    t1.start()
    deadline = time.monotonic() + 5
    while not gc._busy and time.monotonic() < deadline:
        time.sleep(0.01)
    main = threading.get_ident()
    timer = threading.Timer(0.2, lambda: signal.pthread_kill(main, signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt) as info:
        gc.submit("interrupted")  # a follower: t1 leads, stuck in run
    assert not committed(info.value)
    gate.set()
    t1.join(10)
    t3 = threading.Thread(target=lambda: results.append(gc.submit("third")))
    t3.start()
    t3.join(10)
    assert not t3.is_alive() and results == ["first", "third"]
    assert "interrupted" not in ran


@pytest.mark.parametrize("after_commit", [True, False])
def test_an_interrupt_in_mid_batch_keeps_every_writers_data(
    inst: Instance, after_commit: bool
) -> None:
    """Ctrl-C in the thread running a batch: whether the batch committed is unknown to
    its writers, so none of them frees its extents.  The leader sees the interrupt,
    the others a CommitInterruptedError; what committed reads back, and what did not
    is only leaked rows that fsck frees."""
    from dwcore.errors import CommitInterruptedError
    from dwcore.store.commit import committed

    gc = inst.group_commit
    real_run = gc._run
    gate = threading.Event()

    def interrupted_run(batch: list[Any]) -> None:
        keys = {getattr(r.change, "key", None) for r in batch}
        if "k1" in keys:
            assert gate.wait(10)
        if "k2" in keys:
            if after_commit:
                real_run(batch)
            raise KeyboardInterrupt  # as a signal would, in the leader's thread
        real_run(batch)

    gc._run = interrupted_run  # type: ignore[method-assign]
    gc.delay = 0
    errors: dict[str, BaseException] = {}

    def put(key: str) -> None:
        try:
            inst.put("c", key, key.encode() * 1000)
        except BaseException as exc:
            errors[key] = exc

    t1 = threading.Thread(target=put, args=("k1",))
    t1.start()
    deadline = time.monotonic() + 10
    while not gc._busy and time.monotonic() < deadline:
        time.sleep(0.005)
    t3 = threading.Thread(target=lambda: (wait_queued(gc, 1), put("k3")))
    t3.start()
    threading.Timer(0.05, lambda: (wait_queued(gc, 2), gate.set())).start()
    put("k2")  # queued behind k1: it leads the batch of k2 and k3
    t1.join(10)
    t3.join(10)
    assert "k1" not in errors
    assert isinstance(errors["k2"], KeyboardInterrupt) and committed(errors["k2"])
    assert isinstance(errors["k3"], CommitInterruptedError)
    gc._run = real_run  # type: ignore[method-assign]
    report = inst.fsck()
    assert report.ok, report.problems
    assert inst.get("c", "k1") == b"k1" * 1000
    for key in ("k2", "k3"):
        if after_commit:
            assert inst.get("c", key) == key.encode() * 1000
        else:
            with pytest.raises(NotFoundError):
                inst.get("c", key)
    assert sum(report.leaked_rows.values()) == (0 if after_commit else 2)


def wait_queued(gc: Any, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(gc._queue) < n and time.monotonic() < deadline:
        time.sleep(0.002)


def test_put_keeps_its_extents_when_interrupted_after_the_commit(inst: Instance) -> None:
    """An interrupt that reaches a writer while a batch holding its change runs is
    raised only after that batch, marked as committed: put then keeps the extents
    the catalog now references (freeing them would lose the object)."""
    import signal

    gc = inst.group_commit
    real_run = gc._run
    gate1, gate2, in_run2 = threading.Event(), threading.Event(), threading.Event()

    def gated_run(batch: list[Any]) -> None:
        keys = {getattr(r.change, "key", None) for r in batch}
        if "k1" in keys:
            assert gate1.wait(10)
        real_run(batch)  # committed
        if "k3" in keys:
            in_run2.set()
            assert gate2.wait(10)

    gc._run = gated_run  # type: ignore[method-assign]
    gc.delay = 0
    main = threading.get_ident()

    def orchestrate() -> None:
        deadline = time.monotonic() + 10
        while len(gc._queue) < 2 and time.monotonic() < deadline:  # k2, then k3 queued
            time.sleep(0.005)
        gate1.set()  # batch 1 (k1) ends; k2's writer leads k2 + k3
        assert in_run2.wait(10)
        time.sleep(0.05)
        signal.pthread_kill(main, signal.SIGINT)  # k3's writer waits in that batch
        time.sleep(0.3)
        gate2.set()

    t1 = threading.Thread(target=lambda: inst.put("c", "k1", b"one"))
    t1.start()
    deadline = time.monotonic() + 10
    while not gc._busy and time.monotonic() < deadline:
        time.sleep(0.005)
    t2 = threading.Thread(target=lambda: inst.put("c", "k2", b"two"))
    t2.start()
    while len(gc._queue) < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    helper = threading.Thread(target=orchestrate)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        inst.put("c", "k3", b"interrupted after its commit" * 100)
    for th in (t1, t2, helper):
        th.join(10)
    gc._run = real_run  # type: ignore[method-assign]
    info = inst.head("c", "k3")
    pool = inst.pools[info.pool]
    for ref in info.extents:  # still allocated: nothing can overwrite them
        assert pool._alloc.is_allocated(ref.extent.first_row, ref.extent.rows)
    assert inst.get("c", "k3") == b"interrupted after its commit" * 100
    assert inst.get("c", "k1") == b"one" and inst.get("c", "k2") == b"two"
    report = inst.fsck(repair=False)
    assert report.ok, report
