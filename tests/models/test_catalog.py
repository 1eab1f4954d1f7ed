"""Discovery of bundles: the roots, every version with its error, the cache, new versions."""

from __future__ import annotations

import os
import time
from pathlib import Path

from ril_dash.models import catalog
from ril_dash.models.catalog import discover, examples_root, new_since, notices, plugin_roots
from tests.models.bundles import SHA, write_bundle


def test_roots_in_order_of_precedence(tmp_path, monkeypatch):
    lab, env1, env2 = tmp_path / "lab", tmp_path / "env1", tmp_path / "env2"
    monkeypatch.setenv("RIL_DASH_PLUGINS", os.pathsep.join([str(env1), "", str(env2)]))
    roots = plugin_roots(tmp_path / "proj", [lab, tmp_path / "proj" / "plugins"])
    examples = Path(__file__).resolve().parents[2] / "plugins"
    assert roots == [tmp_path / "proj" / "plugins", lab, env1, env2, examples]
    assert examples_root() == examples and (examples / "__init__.py").is_file()
    assert examples_root(tmp_path / "nowhere" / "ril_dash") is None


def test_valid_versions_newest_first_and_each_broken_one_with_its_error(tmp_path):
    root = tmp_path / "plugins"
    for version in ("1.0.0", "1.10.0", "1.2.0", "1.2.0-rc.1"):
        write_bundle(root, "kidney-seg", version)
    write_bundle(root, "liver", "2.0.0", folder=("liver", "2.0"))
    write_bundle(root, "spleen", "1.0.0", model=b"retrained weights")
    (root / "bad").mkdir()
    (root / "bad" / "0.1.0").mkdir()
    (root / "bad" / "0.1.0" / "plugin.yaml").write_text("id: bad\nversion: 0.1.0\nnmae: x\n")
    (root / "flat").mkdir()
    (root / "flat" / "plugin.yaml").write_text("id: flat\n")
    (root / "stray.zip").write_bytes(b"PK")
    (root / ".import-123").mkdir()
    (root / "README.md").write_text("notes")
    entries = discover([root, tmp_path / "missing"])
    assert [(e.id, e.version, e.ok) for e in entries] == [
        ("bad", "0.1.0", False), ("flat", "", False),
        ("kidney-seg", "1.10.0", True), ("kidney-seg", "1.2.0", True),
        ("kidney-seg", "1.2.0-rc.1", True), ("kidney-seg", "1.0.0", True),
        ("liver", "2.0", False), ("spleen", "1.0.0", False), ("stray", "", False)]
    errors = {e.id: e.error for e in entries}
    assert "plugin.yaml line 3: nmae: unknown key 'nmae' in the top level (did you mean " \
           "'name'?)" in errors["bad"]
    assert errors["flat"].endswith("is not in a version folder; bundles live in "
                                   f"<id>/<version>/plugin.yaml, so move the files into "
                                   f"{root / 'flat'}/<version>/")
    assert errors["liver"] == (f"{root / 'liver' / '2.0' / 'plugin.yaml'} says liver@2.0.0 but "
                               f"its folder is liver/2.0; a bundle lives in <id>/<version>/, so "
                               f"move it to liver/2.0.0/ (or fix id and version)")
    assert "spleen@1.0.0: the model file" in errors["spleen"]
    assert f"has changed since the manifest was written (its sha256 is" in errors["spleen"]
    assert "put the original file back, or publish the new file as a new version" \
           in errors["spleen"]
    assert errors["stray"] == (f"{root / 'stray.zip'} is a bundle .zip, which is not read "
                               f"where it lies: import it with `ril-dash plugins PROJECT import "
                               f"{root / 'stray.zip'}` or on the Models page")
    good = entries[2]
    assert good.manifest.sha256 == SHA and good.model_path == good.folder / "model.keras"
    assert good.ref == "kidney-seg@1.10.0" and good.root == root


def test_a_missing_model_file_and_custom_objects(tmp_path):
    folder = write_bundle(tmp_path, "a", "1.0.0")
    (folder / "model.keras").unlink()
    [entry] = discover([tmp_path])
    assert entry.error == (f"a@1.0.0: the model file model.keras is missing from {folder} (or "
                           f"cannot be read); put it beside plugin.yaml (or fix model.file)")
    folder = write_bundle(tmp_path, "b", "1.0.0")
    text = (folder / "plugin.yaml").read_text()
    (folder / "plugin.yaml").write_text(text.replace("  file: model.keras",
                                                     "  file: model.keras\n"
                                                     "  custom_objects: layers.py"))
    assert discover([tmp_path])[1].error.startswith("b@1.0.0: model.custom_objects names "
                                                     "layers.py, which is missing")
    (folder / "layers.py").write_text("# custom layers\n")
    assert discover([tmp_path])[1].ok


def test_the_same_version_in_two_roots(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    write_bundle(first, "a", "1.0.0")
    write_bundle(second, "a", "1.0.0")  # the same file: shown once
    assert [(e.root, e.ok) for e in discover([first, second])] == [(first, True)]
    (second / "a" / "1.0.0" / "model.keras").write_bytes(b"other")
    write_bundle(tmp_path / "three", "a", "1.0.0", model=b"other",
                 sha=__import__("hashlib").sha256(b"other").hexdigest())
    entries = discover([first, tmp_path / "three"])
    assert [(e.root, e.ok) for e in entries] == [(first, True), (tmp_path / "three", False)]
    assert entries[1].error == (f"a@1.0.0 is also in {first} with another model file; versions "
                                f"are immutable, so the one in {first} is used: give this one a "
                                f"new version")


def test_discovery_is_cached_until_a_file_changes(tmp_path, monkeypatch):
    folder = write_bundle(tmp_path, "a", "1.0.0")
    reads = []
    real = catalog.bundle_entry
    monkeypatch.setattr(catalog, "bundle_entry", lambda r, f: reads.append(f) or real(r, f))
    assert discover([tmp_path])[0].ok and discover([tmp_path])[0].ok
    assert reads == [folder]
    time.sleep(0.01)
    (folder / "model.keras").write_bytes(b"replaced in place")
    [entry] = discover([tmp_path])
    assert reads == [folder, folder] and "has changed since the manifest" in entry.error


def test_new_versions_since_a_stamp(tmp_path):
    write_bundle(tmp_path, "kidney-seg", "1.2.0")
    stamp = time.time()
    time.sleep(0.05)
    write_bundle(tmp_path, "kidney-seg", "1.3.0")
    write_bundle(tmp_path, "broken", "1.0.0", model=b"x")
    entries = discover([tmp_path])
    assert [e.ref for e in new_since(entries, stamp)] == ["kidney-seg@1.3.0"]
    assert notices(entries, stamp) == ["kidney-seg 1.3.0 is available"]
    assert notices(entries, time.time() + 1) == []


def test_examples_inside_a_wheel_install_win_over_a_neighbouring_plugins_folder(tmp_path):
    package = tmp_path / "site-packages" / "ril_dash"
    for folder in (package / "plugins", tmp_path / "site-packages" / "plugins"):
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text('"""examples"""\n')
    assert examples_root(package) == package / "plugins"
    (package / "plugins" / "__init__.py").unlink()
    assert examples_root(package) == tmp_path / "site-packages" / "plugins"
