"""dwcore.toml: the schema, hostile values, unknown keys, resource checks, the consumers."""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from dwcore import raid
from dwcore.cli import app
from dwcore.config import (
    AuditConfig,
    ConfigError,
    DwConfig,
    InstanceConfig,
    PoolConfig,
    Probes,
    ResourcesConfig,
    SecurityConfig,
    ValidationReport,
    auth_policy,
    format_size,
    load_config,
    memory_monitor,
    open_audit_log,
    open_pools,
    parse_size,
    root_of,
    validate_file,
)
from dwcore.memory import ADMISSION, MemoryReading, Thresholds

GiB = 1 << 30
TiB = 1 << 40
DWCORE = Path(__import__("dwcore").__file__).parent

#: Probes of a roomy machine: 1 TiB free, 10 % of 8 GiB used, 65536 files.
ROOMY = Probes(
    disk_usage=lambda path: SimpleNamespace(free=TiB),
    memory=lambda: MemoryReading(800 << 20, 8 * GiB, "test"),
    nofile=lambda: (65536, 65536),
)

POOL = """
[[pools]]
name = "main"
level = "raid6"
devices = 6
device_size = "64MiB"
chunk_size = "64KiB"
"""


def write(tmp_path: Path, text: str, name: str = "dwcore.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def check(tmp_path: Path, text: str, probes: Probes = ROOMY) -> ValidationReport:
    return validate_file(write(tmp_path, text), probes=probes)


def only_error(report: ValidationReport) -> str:
    assert len(report.errors) == 1, report
    return str(report.errors[0])


# ---------------------------------------------------------------------------
# valid files
# ---------------------------------------------------------------------------


def test_an_empty_file_is_valid_with_defaults(tmp_path: Path) -> None:
    report = check(tmp_path, "")
    assert report.ok and not report.warnings, report
    config = report.config
    assert config == DwConfig()
    assert config.resources.memory_high == 0.85
    assert config.security.pbkdf2_iterations == 600_000
    assert root_of(config, tmp_path) == tmp_path.absolute()


def test_a_full_file(tmp_path: Path) -> None:
    text = f"""
[instance]
name = "lab-1"
root = "state"
{POOL}
[[pools]]
name = "mirror"
level = 1
devices = ["/srv/a.img", "b.img"]
device_size = 8388608
block_size = "4K"
path = "m"

[[pools]]
name = "r5"
level = "RAID-5"
devices = 3
device_size = "1 GiB"
chunk_size = "1M"
options = {{ algorithm = "left-asymmetric" }}

[security]
hash_scheme = "pbkdf2-sha256"
pbkdf2_iterations = 1200000
lockout_threshold = 3
session_idle_s = 600
min_password_length = 16

[audit]
fsync_interval_ms = 50

[resources]
memory_elevated = 0.6
memory_high = 0.8
memory_critical = 0.9
memory_check_interval_s = 0.5
admission_high_concurrency = 8
admission_timeout_s = 5
min_free_disk = "10GiB"
min_open_files = 4096
"""
    report = check(tmp_path, text)
    assert report.ok and not report.warnings, report
    c: DwConfig = report.config
    assert c.instance.name == "lab-1"
    assert root_of(c, tmp_path) == tmp_path.absolute() / "state"
    assert [p.level for p in c.pools] == ["6", "1", "5"]
    assert c.pools[0].device_size == 64 << 20 and c.pools[0].chunk_size == 65536
    assert c.pools[1].devices == ["/srv/a.img", "b.img"] and c.pools[1].block_size == 4096
    assert c.pools[2].options == {"algorithm": "left-asymmetric"}
    assert c.resources.admission_timeout_s == 5.0 and c.resources.min_free_disk == 10 * GiB
    assert c.audit.fsync_interval_ms == 50


def test_security_maps_onto_the_auth_policy() -> None:
    from dwcore.auth import AuthPolicy

    names = {f.name for f in dataclasses.fields(AuthPolicy)}
    assert set(SecurityConfig.model_fields) == names
    sec = SecurityConfig(
        hash_scheme="pbkdf2-sha256",
        pbkdf2_iterations=700_000,
        lockout_threshold=9,
        session_idle_s=120,
        key_rotation_overlap_s=0,
    )
    policy = sec.to_policy()
    assert isinstance(policy, AuthPolicy)
    assert {n: getattr(policy, n) for n in names} == sec.model_dump()
    assert auth_policy(DwConfig(security=sec)) == policy
    assert SecurityConfig().to_policy() == AuthPolicy()  # same defaults


# ---------------------------------------------------------------------------
# hostile values
# ---------------------------------------------------------------------------

#: A canonical level this version cannot build (None once all 29 are built).
UNAVAILABLE = next((level for level in raid.LEVELS if not raid.is_available(level)), None)


def pool(**fields: str) -> str:
    base = {
        "name": '"p"',
        "level": '"5"',
        "devices": "3",
        "device_size": '"64MiB"',
    }
    base.update(fields)
    body = "\n".join(f"{k} = {v}" for k, v in base.items())
    return f"[[pools]]\n{body}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            pool(device_size="-1"),
            "pools[0].device_size = -1: device_size must be from 3 MiB to 1 PiB",
        ),
        (pool(device_size='"999PiB"'), "pools[0].device_size = '999PiB': device_size must be"),
        (pool(device_size="1e9"), "a size must be a whole number of bytes"),
        (pool(device_size='"1.5GiB"'), "'1.5GiB' is not a size: use a whole number"),
        (pool(device_size='"99999999999999999999999PiB"'), "'99999999999999999999999PiB' is not"),
        (pool(device_size="true"), "a size must be a number of bytes or a string like '1GiB'"),
        (pool(chunk_size="3000"), "pools[0].chunk_size = 3000: chunk_size must be a power of two"),
        (pool(chunk_size='"2KiB"'), "from 4 KiB to 1 GiB"),
        (pool(block_size="4096", chunk_size='"4K"', device_size='"8M"'), None),
        (
            pool(block_size='"8K"', chunk_size='"4K"'),
            "block_size (8192) must not exceed chunk_size",
        ),
        (pool(level='"raid42"'), "pools[0].level = 'raid42': unknown RAID level"),
        *(
            [(pool(level=f'"{UNAVAILABLE}"'), f"RAID {UNAVAILABLE} is not available")]
            if UNAVAILABLE is not None
            else []
        ),
        (pool(level="5.0"), "pools[0].level = 5.0: input should be a valid string"),
        (pool(devices="0"), "pools[0].devices = 0: input should be greater than or equal to 1"),
        (pool(devices="300"), "pools[0].devices = 300: input should be less than or equal to 255"),
        (pool(devices="true"), "pools[0].devices = True: input should be a valid integer"),
        (pool(devices='["a", "a", "b"]'), "a device path is listed twice"),
        (pool(level='"6"'), "RAID 6 needs at least 4 devices"),
        (pool(options="{ bogus = 1 }"), "RAID 5 has no option 'bogus' (options: algorithm)"),
        (pool(options='{ algorithm = "sideways" }'), "algorithm"),
        (pool(name='"' + "x" * 100_000 + '"'), "string should have at most 64 characters"),
        (pool(name='"bad name!"'), "pools[0].name = 'bad name!': string should match pattern"),
        (pool(path='"a\\u0000b"'), "path must not contain control characters"),
        ('[instance]\nroot = "x\\u001b[2J"', "root must not contain control characters"),
        ('[instance]\nname = ""', "instance.name = '': string should have at least 1 character"),
        ("[security]\npbkdf2_iterations = 100000", "greater than or equal to 600000"),
        ('[security]\nhash_scheme = "md5"', "input should be 'argon2id' or 'pbkdf2-sha256'"),
        ('[security]\nlockout_threshold = "5"', "lockout_threshold = '5': input should be a valid"),
        ("[security]\nsession_idle_s = 7200\nsession_absolute_s = 3600", "session_absolute_s"),
        ("[security]\nargon2_memory_cost = 16\nargon2_parallelism = 4", "at least 8 KiB per lane"),
        ("[resources]\nmemory_high = nan", "resources.memory_high = nan: input should be a finite"),
        ("[resources]\nmemory_high = inf", "resources.memory_high = inf"),
        ("[resources]\nmemory_elevated = 0.9", "memory thresholds must rise"),
        ("[resources]\nmemory_critical = 1.5", "less than or equal to 1"),
        ("[resources]\nmin_open_files = 10", "min_open_files = 10: input should be greater"),
        ('[resources]\nmin_free_disk = "-1"', "'-1' is not a size"),
        ("[audit]\nfsync_interval_ms = -5", "audit.fsync_interval_ms = -5"),
        ('[audit]\nfsync_interval_ms = "100ms"', "input should be a valid integer"),
        ("pools = 3", "pools = 3: input should be a valid list"),
        ("security = 1", "security = 1: input should be a valid dictionary"),
        (pool() + pool(), "pool name 'p' is used twice"),
    ],
)
def test_hostile_values_are_named_with_what_is_allowed(
    tmp_path: Path, text: str, expected: str | None
) -> None:
    report = check(tmp_path, text)
    if expected is None:
        assert report.ok, report
        return
    assert not report.ok and report.config is None
    assert any(expected in str(e) for e in report.errors), report


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    text = pool(device_size="-1", chunk_size="3000") + "[security]\npbkdf2_iterations = 1\n"
    report = check(tmp_path, text)
    keys = {e.key for e in report.errors}
    assert keys == {"pools[0].device_size", "pools[0].chunk_size", "security.pbkdf2_iterations"}


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[securty]\nx = 1", "securty", "did you mean 'security'?"),
        ("[pool]\nname = 'x'", "pool", "did you mean 'pools'?"),
        (pool(chunksize='"64K"'), "pools[0].chunksize", "did you mean 'chunk_size'?"),
        ("[resources]\nmin_free_disks = 5", "resources.min_free_disks", "'min_free_disk'?"),
        ("[audit]\nfsync_interval = 5", "audit.fsync_interval", "did you mean 'fsync_interval_ms'"),
        ("[server]\nport = 8080", "server", "(allowed keys: audit, instance, pools, resources,"),
    ],
)
def test_unknown_keys_are_errors_with_did_you_mean(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    report = check(tmp_path, text)
    assert [e.key for e in report.errors] == [key]
    assert "unknown key" in str(report.errors[0]) and hint in str(report.errors[0])


def test_file_level_problems(tmp_path: Path) -> None:
    bad = check(tmp_path, "[instance\nname = 1")
    assert only_error(bad).startswith("(file): is not valid TOML:")
    assert "line 1" in only_error(bad)
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"name = '\xff\xfe'")
    assert "is not UTF-8 text" in only_error(validate_file(binary))
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20))
    assert "at most 1 MiB" in only_error(validate_file(big))
    assert "cannot read" in only_error(validate_file(tmp_path / "absent.toml"))


def test_load_config_raises_with_the_report(tmp_path: Path) -> None:
    path = write(tmp_path, pool(device_size="-1", chunk_size="3000"))
    with pytest.raises(ConfigError) as info:
        load_config(path, probes=ROOMY)
    assert "pools[0].device_size = -1" in str(info.value) and "(and 1 more)" in str(info.value)
    assert isinstance(info.value.report, ValidationReport)
    assert len(info.value.report.errors) == 2
    good = write(tmp_path, POOL, "good.toml")
    assert load_config(good, probes=ROOMY).pools[0].name == "main"


def test_sizes() -> None:
    assert parse_size("1GiB") == parse_size("1G") == parse_size("1 GB") == GiB
    assert parse_size(" 64 kib ") == 65536
    assert parse_size(4096) == 4096
    for bad in ("1Gi", "iB", "", "1.0", "1 XB", "0x10"):
        with pytest.raises(ValueError, match="is not a size"):
            parse_size(bad)
    assert format_size(3 << 20) == "3 MiB" and format_size(1536 << 20) == "1.5 GiB"
    assert format_size(100) == "100 bytes"


# ---------------------------------------------------------------------------
# resource checks
# ---------------------------------------------------------------------------


def probes(**changes: Callable[..., Any]) -> Probes:
    return ROOMY._replace(**changes)


def test_disk_too_small_for_the_pools_is_an_error(tmp_path: Path) -> None:
    text = POOL + '[resources]\nmin_free_disk = "1GiB"\n'
    free = 6 * (64 << 20) + GiB
    assert check(tmp_path, text, probes(disk_usage=lambda p: SimpleNamespace(free=free))).ok
    report = check(tmp_path, text, probes(disk_usage=lambda p: SimpleNamespace(free=free - 1)))
    err = only_error(report)
    assert err.startswith("pools[0].device_size: the device files need up to 384 MiB")
    assert "resources.min_free_disk = 1 GiB" in err and "or free 1 bytes" in err


def test_existing_device_files_count_what_they_hold(tmp_path: Path) -> None:
    text = pool(level='"1"', devices='["d0", "d1"]', device_size='"8MiB"', path='"p"')
    text += '[resources]\nmin_free_disk = "0"\n'
    (tmp_path / "p").mkdir()
    for name in ("d0", "d1"):
        (tmp_path / "p" / name).write_bytes(b"\1" * (4 << 20))  # half of each is allocated
    need = 2 * (8 << 20) - 2 * (tmp_path / "p" / "d0").stat().st_blocks * 512
    assert check(tmp_path, text, probes(disk_usage=lambda p: SimpleNamespace(free=need))).ok
    low = probes(disk_usage=lambda p: SimpleNamespace(free=need - 4096))
    assert not check(tmp_path, text, low).ok


def test_memory_warnings(tmp_path: Path) -> None:
    small = probes(memory=lambda: MemoryReading(10 << 20, 128 << 20, "cgroup v2 test"))
    report = check(tmp_path, "", small)
    assert report.ok
    assert [str(w) for w in report.warnings] == [
        "resources: only 128 MiB of memory is available (cgroup v2 test); dwcore wants at "
        "least 256 MiB"
    ]
    busy = probes(memory=lambda: MemoryReading(9 * GiB // 10 * 8, 8 * GiB, "test"))
    (warning,) = check(tmp_path, "", busy).warnings
    assert warning.key == "resources.memory_elevated" and "already uses 90%" in str(warning)

    def broken() -> MemoryReading:
        raise OSError("no /proc")

    (warning,) = check(tmp_path, "", probes(memory=broken)).warnings
    assert "cannot read memory usage" in str(warning)


def test_open_file_limit(tmp_path: Path) -> None:
    text = "[resources]\nmin_open_files = 4096\n"
    raisable = check(tmp_path, text, probes(nofile=lambda: (1024, 1 << 20)))
    assert raisable.ok
    assert "ulimit -n 4096" in str(raisable.warnings[0])
    stuck = check(tmp_path, text, probes(nofile=lambda: (1024, 2048)))
    assert "hard limit 2048" in only_error(stuck)
    assert stuck.errors[0].key == "resources.min_open_files"
    many = pool(devices="200", level='"6"', device_size='"4MiB"') + "[resources]\n"
    many += "min_open_files = 64\n"
    report = check(tmp_path, many)
    assert any("need about 464 file descriptors" in str(w) for w in report.warnings)


def test_advice_warnings(tmp_path: Path) -> None:
    report = check(tmp_path, pool(level="0", devices="4"))
    assert report.ok
    assert "RAID 0 has no redundancy" in str(report.warnings[0])
    weak = check(tmp_path, "[security]\nargon2_memory_cost = 1024\n")
    assert "below OWASP's argon2id minimum" in str(weak.warnings[0])


def test_resource_checks_can_be_skipped(tmp_path: Path) -> None:
    full = probes(disk_usage=lambda p: SimpleNamespace(free=0))
    path = write(tmp_path, POOL)
    assert not validate_file(path, probes=full).ok
    assert validate_file(path, resources=False, probes=full).ok


# ---------------------------------------------------------------------------
# consumers
# ---------------------------------------------------------------------------

CONSUMED = """
[instance]
name = "consumer-test"
root = "inst"

[[pools]]
name = "r5"
level = "5"
devices = 3
device_size = "6MiB"
chunk_size = "4K"
block_size = "4K"
options = { algorithm = "left-asymmetric" }

[[pools]]
name = "mirror"
level = "1"
devices = ["a.img", "b.img"]
device_size = "6MiB"
chunk_size = "8K"
path = "mirror-pool"

[audit]
fsync_interval_ms = 250

[resources]
memory_elevated = 0.5
memory_high = 0.6
memory_critical = 0.7
memory_check_interval_s = 2.5
admission_high_concurrency = 3
admission_timeout_s = 4
min_free_disk = "1MiB"
min_open_files = 256
"""


def test_pools_are_created_then_opened_and_must_match(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONSUMED), probes=ROOMY)
    root = root_of(config, tmp_path)
    pools = open_pools(config, root)
    try:
        assert set(pools) == {"r5", "mirror"}
        r5 = pools["r5"]
        assert r5.layout.level == "5" and r5.layout.n_devices == 3
        assert r5.layout.params["algorithm"] == "left-asymmetric"
        assert r5.block_size == 4096
        assert Path(r5.path) == root / "pools" / "r5"
        mirror = pools["mirror"]
        assert Path(mirror.path) == root / "mirror-pool"
        assert [Path(d.path).name for d in mirror.devices if d is not None] == ["a.img", "b.img"]
        ext = r5.write(b"config-made pool")
    finally:
        for p in pools.values():
            p.close()
    again = open_pools(config, root)
    try:
        assert again["r5"].read(ext) == b"config-made pool"
    finally:
        for p in again.values():
            p.close()
    changed = CONSUMED.replace(
        'devices = 3\ndevice_size = "6MiB"\nchunk_size = "4K"',
        'devices = 4\ndevice_size = "6MiB"\nchunk_size = "8K"',
    )
    other = load_config(write(tmp_path, changed, "changed.toml"), probes=ROOMY)
    with pytest.raises(
        ConfigError, match=r"pools\[0\] \('r5'\).*3 devices, configured 4; chunk_size is 4096"
    ):
        open_pools(other, root)


@pytest.fixture
def keep_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    """memory_monitor() configures the process-wide admission controller: restore it."""
    for attr in ("high_concurrency", "timeout_s"):
        monkeypatch.setattr(ADMISSION, attr, getattr(ADMISSION, attr))


@pytest.mark.usefixtures("keep_admission")
def test_audit_log_and_memory_monitor_follow_the_configuration(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, CONSUMED), probes=ROOMY)
    with open_audit_log(config, tmp_path, background=False) as log:
        assert log.fsync_interval == 0.25
        assert log.directory == tmp_path / "audit"
    mon = memory_monitor(config)
    assert mon.thresholds == Thresholds(0.5, 0.6, 0.7)
    assert mon.interval_s == 2.5
    assert mon.admission is ADMISSION  # what dwcore.memory.admit() uses
    assert mon.admission.high_concurrency == 3 and mon.admission.timeout_s == 4.0


def _models(root: type[BaseModel]) -> list[type[BaseModel]]:
    found = [root]
    for f in root.model_fields.values():
        ann = f.annotation
        args = getattr(ann, "__args__", ())
        for cand in (ann, *args):
            if isinstance(cand, type) and issubclass(cand, BaseModel) and cand not in found:
                found += _models(cand)
    return found


@pytest.mark.usefixtures("keep_admission")
def test_every_key_in_the_schema_is_read_by_some_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each key must be read (an attribute access outside the schema module) by the code
    that builds what the configuration describes: pools, audit log, memory monitor,
    the resource checks and the CLI.  [security] is read by dwcore.auth, checked by name.
    """
    models = _models(DwConfig)
    assert set(models) == {
        DwConfig,
        InstanceConfig,
        PoolConfig,
        SecurityConfig,
        AuditConfig,
        ResourcesConfig,
    }
    schema_file = str(DWCORE / "config" / "schema.py")
    read: set[tuple[str, str]] = set()

    def tracker(self: BaseModel, name: str) -> Any:
        fields = type(self).model_fields
        if name in fields and sys._getframe(1).f_code.co_filename != schema_file:
            read.add((type(self).__name__, name))
        return object.__getattribute__(self, name)

    for model in models:
        monkeypatch.setattr(model, "__getattribute__", tracker)
    path = write(tmp_path, CONSUMED)
    config = load_config(path, probes=ROOMY)
    result = CliRunner().invoke(app, ["config", "validate", str(path), "--no-resources"])
    assert result.exit_code == 0, result.output
    assert "instance 'consumer-test'" in result.output
    pools = open_pools(config, root_of(config, tmp_path))
    for p in pools.values():
        p.close()
    open_audit_log(config, tmp_path, background=False).close()
    memory_monitor(config)
    auth_policy(config)
    unread = sorted(
        f"{model.__name__}.{name}"
        for model in models
        if model is not SecurityConfig
        for name in model.model_fields
        if (model.__name__, name) not in read
    )
    assert not unread, f"keys no code reads: {unread}"
    # [security] becomes an AuthPolicy field for field; dwcore.auth must read each one
    sources = "\n".join(
        p.read_text() for p in (DWCORE / "auth").rglob("*.py") if p.name != "policy.py"
    )
    unread = [n for n in SecurityConfig.model_fields if not re.search(rf"\.{n}\b", sources)]
    assert not unread, f"security keys dwcore.auth never reads: {unread}"


def test_cli_validate_and_show(tmp_path: Path) -> None:
    runner = CliRunner()
    good = write(tmp_path, POOL, "good.toml")
    result = runner.invoke(app, ["config", "validate", str(good), "--no-resources"])
    assert result.exit_code == 0, result.output
    assert "valid (instance 'dwcore', 1 pool(s), 0 warning(s))" in result.output
    warn = write(tmp_path, pool(level="0", devices="2"), "warn.toml")
    result = runner.invoke(app, ["config", "validate", str(warn), "--no-resources"])
    assert result.exit_code == 0
    assert "warning: pools[0].level = '0': RAID 0 has no redundancy" in result.output
    bad = write(tmp_path, pool(chunk_size="3000") + "[securty]\n", "bad.toml")
    result = runner.invoke(app, ["config", "validate", str(bad)])
    assert result.exit_code == 1
    assert "error: pools[0].chunk_size = 3000: chunk_size must be a power of two" in result.output
    assert "error: securty: unknown key; did you mean 'security'?" in result.output
    assert "2 error(s)" in result.output
    result = runner.invoke(app, ["config", "show", str(good)])
    assert result.exit_code == 0
    assert (
        '"device_size": 67108864' in result.output
        and '"pbkdf2_iterations": 600000' in result.output
    )
    assert runner.invoke(app, ["config", "show", str(bad)]).exit_code == 1


def test_pool_defaults_are_the_pool_engines() -> None:
    import inspect

    from dwcore.pool import Pool

    params = inspect.signature(Pool.create).parameters
    cfg = PoolConfig(name="p", level="5", devices=3, device_size="64MiB")
    assert cfg.chunk_size == params["chunk_size"].default
    assert cfg.block_size == params["block_size"].default
