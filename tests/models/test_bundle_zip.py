"""Bundle zips: export and import round trip, and every hostile or wrong archive refused with
nothing written."""

from __future__ import annotations

import json
import stat
import zipfile

import pytest

from ril_dash.errors import PluginError
from ril_dash.models.bundle_zip import export_bundle_zip, import_bundle_zip
from ril_dash.models.catalog import discover
from tests.models.bundles import MODEL_BYTES, manifest_text, write_bundle


def make_zip(path, files: dict, *, links=()) -> object:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return path


def bundle_files(prefix: str = "kidney-seg/1.0.0/", model_id="kidney-seg", version="1.0.0"):
    return {f"{prefix}plugin.yaml": manifest_text(model_id, version),
            f"{prefix}model.keras": MODEL_BYTES}


def listing(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def test_export_then_import_all_versions(tmp_path):
    source = tmp_path / "source"
    one = write_bundle(source, "kidney-seg", "1.0.0")
    (one / "validation.json").write_text('{"dice": 0.93}')
    write_bundle(source, "kidney-seg", "1.1.0")
    entries = discover([source])
    out = export_bundle_zip(entries, tmp_path / "out" / "kidney.zip")
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == [
            "kidney-seg/1.0.0/model.keras", "kidney-seg/1.0.0/plugin.yaml",
            "kidney-seg/1.0.0/validation.json", "kidney-seg/1.1.0/model.keras",
            "kidney-seg/1.1.0/plugin.yaml", "kidney-seg/1.1.0/validation.json"]
        assert archive.read("kidney-seg/1.0.0/validation.json") == b'{"dice": 0.93}'
        report = json.loads(archive.read("kidney-seg/1.1.0/validation.json"))
        assert report["ref"] == "kidney-seg@1.1.0"
        assert report["validation"]["metrics"] == {"dice_right_kidney": 0.93,
                                                   "dice_left_kidney": 0.92}
    dest = tmp_path / "proj" / "plugins"
    assert import_bundle_zip(out, dest) == [("kidney-seg", "1.0.0"), ("kidney-seg", "1.1.0")]
    assert [(e.ref, e.ok) for e in discover([dest])] == [("kidney-seg@1.1.0", True),
                                                         ("kidney-seg@1.0.0", True)]
    assert listing(dest) == [".import.lock", "kidney-seg", "kidney-seg/1.0.0",
                             "kidney-seg/1.0.0/model.keras", "kidney-seg/1.0.0/plugin.yaml",
                             "kidney-seg/1.0.0/validation.json", "kidney-seg/1.1.0",
                             "kidney-seg/1.1.0/model.keras", "kidney-seg/1.1.0/plugin.yaml",
                             "kidney-seg/1.1.0/validation.json"]
    with pytest.raises(PluginError, match="already exists; choose another file name"):
        export_bundle_zip(entries, out)
    export_bundle_zip(entries[:1], tmp_path / "bare.zip", with_validation=False)
    with zipfile.ZipFile(tmp_path / "bare.zip") as archive:
        assert sorted(archive.namelist()) == ["kidney-seg/1.1.0/model.keras",
                                              "kidney-seg/1.1.0/plugin.yaml"]


@pytest.mark.parametrize("prefix", ["", "my-export/"])
def test_a_zipped_version_folder_or_bare_files_import_by_their_manifest(tmp_path, prefix):
    path = make_zip(tmp_path / "b.zip", {**bundle_files(prefix), "__MACOSX/._x": b"junk"})
    assert import_bundle_zip(path, tmp_path / "plugins") == [("kidney-seg", "1.0.0")]
    assert (tmp_path / "plugins" / "kidney-seg" / "1.0.0" / "model.keras").read_bytes() \
        == MODEL_BYTES


def test_never_overwrites_an_installed_version(tmp_path):
    dest = tmp_path / "plugins"
    installed = write_bundle(dest, "kidney-seg", "1.0.0")
    before = (installed / "plugin.yaml").read_text()
    path = make_zip(tmp_path / "b.zip", {**bundle_files(),
                                         **bundle_files("kidney-seg/2.0.0/", version="2.0.0")})
    with pytest.raises(PluginError, match=r"b.zip: kidney-seg 1.0.0 is already installed in .*; "
                                          r"versions are immutable, so give the new one a new "
                                          r"version number; nothing was imported"):
        import_bundle_zip(path, dest)
    assert (installed / "plugin.yaml").read_text() == before
    assert listing(dest) == [".import.lock", "kidney-seg", "kidney-seg/1.0.0",
                             "kidney-seg/1.0.0/model.keras", "kidney-seg/1.0.0/plugin.yaml"]


@pytest.mark.parametrize("files, links, expected", [
    ({"../evil/plugin.yaml": "x"}, (), "the entry '../evil/plugin.yaml' points outside the "
                                       "bundle ('..')"),
    ({"a/../../evil.txt": "x", **bundle_files()}, (), "points outside the bundle"),
    ({"/etc/plugin.yaml": "x"}, (), "the entry '/etc/plugin.yaml' has an absolute or Windows "
                                    "path"),
    ({"C:/x/plugin.yaml": "x"}, (), "has an absolute or Windows path"),
    ({"a\\plugin.yaml": "x"}, (), "has an absolute or Windows path"),
    (bundle_files(), [("kidney-seg/1.0.0/extra", "/etc/passwd")],
     "the entry 'kidney-seg/1.0.0/extra' is a symbolic link"),
    ({"readme.txt": "hi"}, (), "no plugin.yaml in the archive"),
    ({**bundle_files(), "notes.txt": "x"}, (), "the entry 'notes.txt' is not inside a bundle "
                                               "folder"),
    (bundle_files("liver/1.0.0/"), (), "the folder liver/1.0.0 holds kidney-seg@1.0.0; name it "
                                       "kidney-seg/1.0.0"),
    ({"kidney-seg/1.0.0/plugin.yaml": manifest_text().replace("name:", "nmae:"),
      "kidney-seg/1.0.0/model.keras": MODEL_BYTES}, (), "unknown key 'nmae'"),
    ({"kidney-seg/1.0.0/plugin.yaml": manifest_text(),
      "kidney-seg/1.0.0/model.keras": b"renamed other file"}, (),
     "has changed since the manifest was written"),
    ({"kidney-seg/1.0.0/plugin.yaml": manifest_text()}, (), "the model file model.keras is "
                                                            "missing"),
])
def test_hostile_or_wrong_archives_are_refused_with_nothing_written(tmp_path, files, links,
                                                                    expected):
    path = make_zip(tmp_path / "b.zip", files, links=links)
    dest = tmp_path / "plugins"
    with pytest.raises(PluginError) as info:
        import_bundle_zip(path, dest)
    assert expected in str(info.value) and str(info.value).endswith("nothing was imported")
    assert not dest.exists() or listing(dest) in ([], [".import.lock"])


def test_zip_bombs_are_refused(tmp_path):
    dest = tmp_path / "plugins"
    bomb = make_zip(tmp_path / "bomb.zip", {**bundle_files(),
                                            "kidney-seg/1.0.0/zeros.bin": b"\0" * 5_000_000})
    with pytest.raises(PluginError, match=r"the entry 'kidney-seg/1.0.0/zeros.bin' expands "
                                          r"5000000 bytes from \d+, more than 200 times"):
        import_bundle_zip(bomb, dest)
    with pytest.raises(PluginError, match="it expands to more than 1000 bytes"):
        import_bundle_zip(bomb, dest, max_total_bytes=1000, max_ratio=10**9)
    many = make_zip(tmp_path / "many.zip",
                    {**bundle_files(), **{f"kidney-seg/1.0.0/f{i}": "" for i in range(20)}})
    with pytest.raises(PluginError, match="it holds 22 entries, more than the 10"):
        import_bundle_zip(many, dest, max_entries=10)
    assert not dest.exists()


def test_a_header_that_lies_about_the_size_is_caught_while_extracting(tmp_path):
    path = make_zip(tmp_path / "b.zip", bundle_files())
    data = bytearray(path.read_bytes())
    # shrink the declared uncompressed size of model.keras in the central directory
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("kidney-seg/1.0.0/model.keras")
    central = data.rfind(b"PK\x01\x02", 0, data.find(b"PK\x05\x06"))
    assert data[central + 46:central + 46 + len(info.filename)] == info.filename.encode()
    data[central + 24:central + 28] = (4).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(PluginError, match=r"b.zip: extracting failed \(Bad CRC-32 for file "
                                          r"'kidney-seg/1.0.0/model.keras'\); nothing was"):
        import_bundle_zip(path, tmp_path / "plugins")
    assert listing(tmp_path / "plugins") == []


def test_not_a_zip(tmp_path):
    (tmp_path / "b.zip").write_text("hello")
    with pytest.raises(PluginError, match="cannot be read as a .zip"):
        import_bundle_zip(tmp_path / "b.zip", tmp_path / "plugins")
