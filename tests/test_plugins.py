"""Plugin discovery, the validation suite, dependency order and the handshake.

Third-party plugins are installed for real: each test writes a ``*.dist-info``
with an ``entry_points.txt`` into a temporary directory on ``sys.path``,
pointing at the modules in ``tests/plugin_fixtures``, and discovery reads it
through ``importlib.metadata`` like any installed distribution.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from dwcore.devices import Device, FileDevice
from dwcore.errors import InvalidArgumentError, PluginError
from dwcore.plugins import (
    API_VERSION,
    GROUP,
    REQUIRED_METHODS,
    Capability,
    Category,
    FeaturePlugin,
    LoadReport,
    PluginManager,
    StoragePlugin,
    api_compatible,
    discover,
)

FIXTURES = Path(__file__).parent / "plugin_fixtures"
Install = Callable[..., None]


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """``install(dist_name, {plugin: "module:Class"})`` makes a distribution discoverable."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(FIXTURES))
    monkeypatch.syspath_prepend(str(site))

    def install_dist(dist: str, entries: dict[str, str], version: str = "1.0") -> None:
        info = site / f"{dist}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        lines = "".join(f"{name} = {target}\n" for name, target in entries.items())
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")

    before = set(sys.modules)
    yield install_dist
    for mod in set(sys.modules) - before:
        if mod.startswith("dwfx_"):
            del sys.modules[mod]


def fx(cls: str) -> str:
    return f"dwfx_plugins:{cls}"


def reasons(report: LoadReport) -> dict[str, str]:
    return {r.name: r.reason for r in report.rejected}


def test_builtin_storage_plugins_come_through_the_entry_point_group() -> None:
    names = {ep.name: ep.value for ep in discover()}
    assert names["file"] == "dwcore.plugins.builtin.storage:FileStoragePlugin"
    assert names["block"] == "dwcore.plugins.builtin.storage:BlockStoragePlugin"
    assert names["ram"] == "dwcore.plugins.builtin.storage:RamStoragePlugin"
    mgr = PluginManager()
    report = mgr.load_all()
    assert report.ok, report.rejected
    storage = {lp.info.name for lp in mgr.by_category("storage")}
    assert {"file", "block", "ram"} <= storage
    shake = mgr.loaded("file").handshake
    assert shake.plugin_id == "storage.file"
    assert shake.category is Category.STORAGE
    assert [c.id for c in shake.capabilities] == [
        "storage.file.open_device",
        "storage.file.create_device",
    ]
    assert shake.init_duration_s >= 0


def test_builtin_plugins_open_devices(tmp_path: Path) -> None:
    mgr = PluginManager()
    ram = mgr.get("ram", StoragePlugin)
    with ram.open_device("ram:t", size=8192) as dev:
        assert isinstance(dev, Device)
        assert dev.path == "ram:t"
        dev.pwrite(10, b"abc")
        assert dev.pread(10, 3) == b"abc"
    f = mgr.get("file", StoragePlugin)
    path = str(tmp_path / "d0")
    with f.open_device(path, size=1 << 20, create=True) as dev:
        assert isinstance(dev, FileDevice)
        dev.pwrite(0, b"x")
    with f.open_device(path, size=1 << 20) as dev:
        assert dev.pread(0, 1) == b"x"
    with pytest.raises(InvalidArgumentError, match="less than"):
        f.open_device(path, size=2 << 20)
    with pytest.raises(InvalidArgumentError, match=r"does not take option\(s\) bogus.*overwrite"):
        f.open_device(path, size=1, create=True, bogus=1)
    block = mgr.get("block", StoragePlugin)
    with pytest.raises(InvalidArgumentError, match="cannot be created"):
        block.open_device(path, create=True)
    with block.open_device(path, direct=False) as dev:
        assert dev.pread(0, 1) == b"x"
    with pytest.raises(InvalidArgumentError, match="size is required"):
        ram.open_device("r")


def test_get_names_wrong_kind_and_unknown_plugins() -> None:
    mgr = PluginManager()
    with pytest.raises(PluginError, match="'ram' is a storage plugin, not a feature plugin"):
        mgr.get("ram", FeaturePlugin)
    with pytest.raises(PluginError, match=r"no plugin named 'nope'.*loaded plugins: .*file"):
        mgr.get("nope")
    with pytest.raises(InvalidArgumentError, match="category must be one of storage"):
        mgr.by_category("bogus")


def test_good_third_party_plugins_load_in_dependency_order(install: Install) -> None:
    import dwfx_plugins  # type: ignore[import-not-found]

    dwfx_plugins.INIT_LOG.clear()
    install(
        "example-plugins",
        {
            "goodfeature": fx("GoodFeature"),
            "goodstore": fx("GoodStorage"),
            "ducktyped": fx("DuckTyped"),
            "newerminor": fx("NewerMinor"),
        },
    )
    ticks = itertools.count(0.0, 0.5)  # every init takes 0.5 s on this clock
    mgr = PluginManager(clock=lambda: next(ticks))
    report = mgr.load_all()
    assert reasons(report) == {
        "newerminor": "written for plugin API 1.9; this dwcore offers 1.0 (a plugin loads when "
        "its major version is equal and its minor is not newer)"
    }
    assert dwfx_plugins.INIT_LOG == ["goodstore", "goodfeature"]  # dependency first
    good = mgr.loaded("goodstore").handshake
    assert good.init_duration_s == 0.5
    assert good.version == "1.2.0"
    assert good.capabilities == (
        Capability("storage.goodstore.open_device", "Open_Device", "", Category.STORAGE),
    )
    assert mgr.loaded("ducktyped").handshake.capabilities == ()
    assert mgr.get("ducktyped").analyze({"cpu": 0.95}) == ["cpu is high"]
    dev = mgr.get("goodstore", StoragePlugin).open_device("a", size=4096)
    assert dev.path == "ram:good-a"
    dev.close()
    entry = mgr.loaded("goodstore").entry_point
    assert "dwfx_plugins:GoodStorage" in entry and "example-plugins 1.0" in entry
    mgr.close()
    assert dwfx_plugins.CLOSED[-1] == "goodstore"


@pytest.mark.parametrize(
    ("name", "target", "reason"),
    [
        ("importerror", "dwfx_import_error:Plugin", "does not resolve: ModuleNotFoundError"),
        ("importraises", "dwfx_import_raises:Plugin", "RuntimeError: plugin module is broken"),
        ("noattr", "dwfx_plugins:DoesNotExist", "does not resolve: AttributeError"),
        ("notaclass", fx("not_a_class"), "names a function, not a plugin class"),
        ("noinfo", fx("NoInfo"), "class NoInfo has no @dwcore.plugins.plugin_info metadata"),
        ("nomethod", fx("MissingMethod"), "storage protocol (StoragePlugin): missing open_device"),
        (
            "nomethodduck",
            fx("MissingMethodDuck"),
            "intelligence protocol (IntelligencePlugin): missing analyze",
        ),
        ("initfails", fx("RaisesInInit"), "raised during init: RuntimeError: cannot reach"),
        ("exitsininit", fx("ExitsInInit"), "raised during init: SystemExit: 3"),
        ("hostilestr", fx("RaisesHostile"), "raised during init: HostileStr"),
        ("futureapi", fx("FutureApi"), "written for plugin API 2.0; this dwcore offers 1.0"),
        ("hugedesc", fx("HugeDescription"), "description is 100000 characters long, at most 1000"),
        ("ctrlchars", fx("ControlChars"), "description contains control characters"),
        ("badcategory", fx("BadCategory"), "category must be one of storage, metadata"),
        ("badname", fx("BadName"), "name must be 1 to 64 characters"),
        ("badcap", fx("BadCapability"), "starts with 'storage', not its category 'other'"),
        ("badcapshape", fx("BadCapabilityShape"), "must look like 'category.plugin.action'"),
        ("notcap", fx("NotACapability"), "capabilities[0] must be a dwcore.plugins.Capability"),
        ("hostileshake", fx("HostileHandshake"), "invalid handshake: capabilities[0].id"),
        ("raisingshake", fx("RaisingHandshake"), "raised during the handshake: ValueError"),
        ("badreq", fx("BadRequirement"), "requires[0]: requirement must be a plugin name"),
        ("selfreq", fx("SelfRequirement"), "a plugin cannot require itself"),
        ("needsghost", fx("NeedsGhost"), "requires plugin 'ghost', which is not installed"),
    ],
)
def test_broken_plugin_is_rejected_and_the_others_load(
    install: Install, name: str, target: str, reason: str
) -> None:
    entry = name
    install("broken-dist", {entry: target, "advice": fx("Advice")})
    report = PluginManager().load_all()
    found = reasons(report)
    assert entry in found, report
    assert reason in found[entry]
    assert len(found[entry]) <= 400  # hostile text is cut short
    assert "\x00" not in found[entry] and "\x1b" not in found[entry]
    loaded = {lp.info.name for lp in report.loaded}
    assert {"advice", "file", "block", "ram"} <= loaded
    text = str(next(r for r in report.rejected if r.name == entry))
    assert text.startswith(f"plugin {entry!r} (") and target in text


def test_wrong_types_are_all_named(install: Install) -> None:
    install("d", {"wrongtypes": fx("WrongTypes")})
    reason = reasons(PluginManager().load_all())["wrongtypes"]
    assert "version must look like MAJOR.MINOR" in reason
    assert "got 1.0 (float)" in reason
    assert "description must be a string, got 42 (int)" in reason
    assert "author must be a string, got ['X'] (list)" in reason


def test_hostile_handshake_plugin_is_closed(install: Install) -> None:
    import dwfx_plugins

    dwfx_plugins.CLOSED.clear()
    install("d", {"hostileshake": fx("HostileHandshake")})
    PluginManager().load_all()
    assert dwfx_plugins.CLOSED == ["hostileshake"]


def test_dependencies_cycles_versions_and_failed_dependencies(install: Install) -> None:
    install(
        "deps",
        {
            "goodstore": fx("GoodStorage"),
            "cyclea": fx("CycleA"),
            "cycleb": fx("CycleB"),
            "needscycle": fx("NeedsCycle"),
            "needsnewer": fx("NeedsNewer"),
            "initfails": fx("RaisesInInit"),
            "needsinitfails": fx("NeedsInitFails"),
        },
    )
    report = PluginManager().load_all()
    found = reasons(report)
    assert found["cyclea"] == "dependency cycle: cyclea -> cycleb -> cyclea"
    assert found["cycleb"] == "dependency cycle: cyclea -> cycleb -> cyclea"
    assert found["needscycle"] == "requires plugin 'cyclea', which was rejected"
    assert found["needsnewer"] == "requires goodstore>=9.0, but goodstore 1.2.0 is installed"
    assert found["needsinitfails"] == "requires plugin 'initfails', which failed to start"
    assert "goodstore" in {lp.info.name for lp in report.loaded}


def test_duplicate_and_mismatched_names(install: Install) -> None:
    install("first", {"goodstore": fx("GoodStorage")})
    install("second", {"goodstore": fx("DuplicateGood"), "alias": fx("Advice")})
    report = PluginManager().load_all()
    rej = {(r.name, r.reason.split(" by ")[0]) for r in report.rejected}
    assert ("goodstore", "the name 'goodstore' is already taken") in rej
    assert ("alias", "the entry point is named 'alias' but the plugin is named 'advice'") in rej
    mgr = PluginManager()
    mgr.load_all()
    with pytest.raises(PluginError, match=r"plugin .alias. .* rejected: the entry point is named"):
        mgr.get("alias")


def test_injected_entry_points_and_the_required_methods_table() -> None:
    eps = [EntryPoint("advice", "dwcore.plugins.builtin.storage:nothing", GROUP)]
    report = PluginManager(entry_points=eps).load_all()
    assert not report.loaded
    assert "AttributeError" in report.rejected[0].reason
    assert REQUIRED_METHODS[Category.STORAGE] == ("open_device",)
    assert REQUIRED_METHODS[Category.INTERFACE] == ("start", "stop")
    assert REQUIRED_METHODS[Category.OTHER] == ()
    assert set(REQUIRED_METHODS) == set(Category)


@pytest.mark.parametrize(
    ("wanted", "ok"),
    [("1.0", True), ("1.0.7", True), ("0.9", False), ("1.1", False), ("2.0", False)],
)
def test_api_compatibility(wanted: str, ok: bool) -> None:
    assert API_VERSION == "1.0"
    assert api_compatible(wanted) is ok
    assert api_compatible(wanted, "1.5") is (wanted != "0.9" and wanted != "2.0")


def test_api_version_must_be_a_version() -> None:
    with pytest.raises(InvalidArgumentError, match=r"MAJOR\.MINOR"):
        api_compatible("one")


def test_cli_list_and_validate(install: Install) -> None:
    from typer.testing import CliRunner

    from dwcore.cli import app

    runner = CliRunner()
    result = runner.invoke(app, ["plugins", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "storage.file" in result.output and "storage.file.create_device" in result.output
    assert " ms" in result.output
    result = runner.invoke(app, ["plugins", "validate"])
    assert result.exit_code == 0, result.output
    assert "ok storage.ram 1.0.0" in result.output
    install("broken", {"initfails": fx("RaisesInInit"), "advice": fx("Advice")})
    result = runner.invoke(app, ["plugins", "validate"])
    assert result.exit_code == 1
    assert "ok other.advice" not in result.output  # advice is an intelligence plugin
    assert "ok intelligence.advice 1.0" in result.output
    assert "rejected: plugin 'initfails'" in result.output
    assert "raised during init: RuntimeError: cannot reach license server" in result.output
    result = runner.invoke(app, ["plugins", "list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert (
        "intelligence.advice" in result.output and "rejected: plugin 'initfails'" in result.output
    )


def test_plugins_declare_transient_errors_for_the_retry_classifier(install: Install) -> None:
    import dwfx_plugins

    from dwcore.resilience import is_transient

    install("t", {"throttled": fx("DeclaresTransient"), "badtransient": fx("BadTransient")})
    quota, slow = dwfx_plugins.QuotaExceeded(), dwfx_plugins.CodedError("SlowDown")
    assert not is_transient(quota) and not is_transient(slow)
    mgr = PluginManager()
    report = mgr.load_all()
    assert (
        "transient_errors[0] must be an exception class or a predicate"
        in (reasons(report)["badtransient"])
    )
    assert is_transient(quota) and is_transient(slow)
    assert not is_transient(dwfx_plugins.CodedError("AccessDenied"))
    mgr.close()
    assert not is_transient(quota) and not is_transient(slow)
