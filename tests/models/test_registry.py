"""The project's model settings: enabled, active version (rollback), trusted hashes; resolve."""

from __future__ import annotations

import json
import threading

import pytest

from ril_dash.errors import PluginError, StorageError, VersionConflict
from ril_dash.models.registry import ModelRegistry
from tests.models.bundles import SHA, write_bundle


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.delenv("RIL_DASH_PLUGINS", raising=False)
    root = tmp_path / "proj"
    for version in ("1.0.0", "1.1.0"):
        write_bundle(root / "plugins", "kidney-seg", version)
    write_bundle(root / "plugins", "kidney-seg", "1.2.0", model=b"damaged")
    return root


def test_defaults_newest_valid_version_enabled_nothing_trusted(project):
    registry = ModelRegistry(project)
    state = registry.state()
    assert (state.sha256, state.is_enabled("kidney-seg"), state.pinned("kidney-seg"),
            state.is_trusted(SHA)) == ("", True, None, False)
    assert registry.resolve("kidney-seg").version == "1.1.0"  # 1.2.0 is broken
    assert registry.resolve("kidney-seg", "1.0.0").version == "1.0.0"
    assert not (project / ".models").exists()  # reading writes nothing


def test_refusals_say_what_to_do(project):
    registry = ModelRegistry(project)
    with pytest.raises(PluginError, match=r"no model bundle 'liver' in .*available: "
                                          r"contrast-phase, kidney-seg\. Put the bundle in"):
        registry.resolve("liver")
    with pytest.raises(PluginError, match="kidney-seg has no version 9.0.0; it has 1.2.0, "
                                          "1.1.0, 1.0.0"):
        registry.resolve("kidney-seg", "9.0.0")
    with pytest.raises(PluginError, match="has changed since the manifest was written"):
        registry.resolve("kidney-seg", "1.2.0")
    with pytest.raises(PluginError, match="has changed since"):
        registry.set_active("kidney-seg", "1.2.0")
    registry.set_enabled("kidney-seg", False)
    with pytest.raises(PluginError, match=f"kidney-seg is disabled for this project; an admin "
                                          f"can enable it on the Models page or with `ril-dash "
                                          f"plugins {project} enable kidney-seg`"):
        registry.resolve("kidney-seg")


def test_rollback_pins_a_version_and_unpinning_returns_to_the_newest(project):
    registry = ModelRegistry(project)
    registry.set_active("kidney-seg", "1.0.0")
    assert registry.resolve("kidney-seg").version == "1.0.0"
    assert json.loads((project / ".models" / "state.json").read_text()) == {
        "active": {"kidney-seg": "1.0.0"}, "enabled": {}, "trusted": {}}
    (project / "plugins" / "kidney-seg" / "1.0.0" / "model.keras").write_bytes(b"swapped")
    with pytest.raises(PluginError, match=r"kidney-seg@1.0.0, the version an admin made "
                                          r"active, cannot be used \(.*\); activate another"):
        registry.resolve("kidney-seg")
    registry.set_active("kidney-seg", None)
    assert registry.resolve("kidney-seg").version == "1.1.0"


def test_trust_records_who_and_the_hash(project):
    registry = ModelRegistry(project)
    entry = registry.resolve("kidney-seg")
    state = registry.trust(entry, "root")
    assert state.is_trusted(SHA)
    record = state.trusted[SHA]
    assert (record["user"], record["ref"]) == ("root", "kidney-seg@1.1.0")
    assert record["time"].endswith("+00:00")


def test_compare_and_swap_across_two_instances(project):
    a, b = ModelRegistry(project), ModelRegistry(project)
    seen = a.state().sha256
    b.set_enabled("kidney-seg", False, expected_sha256=seen)
    with pytest.raises(VersionConflict, match="changed by someone else meanwhile"):
        a.set_active("kidney-seg", "1.0.0", expected_sha256=seen)
    assert a.state().pinned("kidney-seg") is None
    # without a base hash, changes of both are merged under the lock
    a.set_active("kidney-seg", "1.0.0")
    state = b.state()
    assert (state.is_enabled("kidney-seg"), state.pinned("kidney-seg")) == (False, "1.0.0")
    a.set_enabled("kidney-seg", True, expected_sha256=state.sha256)
    assert b.state().is_enabled("kidney-seg")


def test_concurrent_changes_all_survive(project):
    registries = [ModelRegistry(project) for _ in range(8)]
    threads = [threading.Thread(target=r.set_enabled, args=(f"m{i}", False))
               for i, r in enumerate(registries)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registries[0].state().enabled == {f"m{i}": False for i in range(8)}


def test_a_damaged_settings_file_is_reported(project):
    (project / ".models").mkdir()
    (project / ".models" / "state.json").write_text("{not json")
    with pytest.raises(StorageError, match="is not a valid model settings file; restore it"):
        ModelRegistry(project).resolve("kidney-seg")


def test_verify_hashes_the_file_now(project):
    registry = ModelRegistry(project)
    entry = registry.resolve("kidney-seg")
    registry.verify(entry)
    entry.model_path.write_bytes(b"changed after discovery")
    with pytest.raises(PluginError, match="has changed since the manifest was written"):
        registry.verify(entry)
