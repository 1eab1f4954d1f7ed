"""Import and export of model bundles as ``.zip`` files, safe against hostile archives.

An archive holds one or more version folders, each with its ``plugin.yaml``: the layout that
:func:`export_bundle_zip` writes (``<id>/<version>/...``), or a zipped version folder, or the
bundle files at the top. :func:`import_bundle_zip` refuses, before anything is written:

- names that climb out (``..``), absolute names (``/x``, ``C:\\x``), backslashes;
- symbolic links and other entries that are not plain files or folders, encrypted entries;
- bombs: more than ``max_entries`` entries, more than ``max_total_bytes`` uncompressed in all,
  or an entry that expands more than ``max_ratio`` times (sizes are checked again while
  extracting, so lying headers do not help);
- a version that is already installed (versions are immutable: nothing is ever overwritten);
- a bundle whose manifest is invalid, whose folder names do not match it, or whose model file is
  missing or not the one whose sha256 the manifest records.

Everything is extracted into a hidden temporary folder inside the destination root (so the
final step is a rename on the same disk, and discovery skips it), checked, then each version
folder is renamed into place under a lock; the temporary folder is always removed.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from filelock import FileLock

from ril_dash.core.atomic_io import temp_path_for
from ril_dash.errors import PluginError
from ril_dash.models.catalog import BundleEntry, bundle_entry
from ril_dash.models.manifest import MANIFEST_FILE, load_manifest

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "MAX_TOTAL_BYTES", "export_bundle_zip",
           "import_bundle_zip"]

MAX_ENTRIES = 1000
MAX_TOTAL_BYTES = 4 * 1024**3
MAX_RATIO = 200
VALIDATION_FILE = "validation.json"
_IGNORED = ("__MACOSX/",)
#: the lock of a plugins root while versions are moved into it (imports, the wizard)
INSTALL_LOCK = ".import.lock"


def _refuse(zip_path: Path, message: str) -> PluginError:
    return PluginError(f"{zip_path.name}: {message}; nothing was imported")


def _check_members(zip_path: Path, infos: list[zipfile.ZipInfo], max_entries: int,
                   max_total_bytes: int, max_ratio: float) -> list[zipfile.ZipInfo]:
    """The plain-file entries to extract, once every entry passed the safety checks."""
    if len(infos) > max_entries:
        raise _refuse(zip_path, f"it holds {len(infos)} entries, more than the {max_entries} "
                                f"a bundle may have")
    total, files = 0, []
    for info in infos:
        name = info.filename
        if name.startswith(_IGNORED) or PurePosixPath(name).name == ".DS_Store":
            continue
        parts = PurePosixPath(name).parts
        if "\\" in name or name.startswith("/") or (parts and ":" in parts[0]):
            raise _refuse(zip_path, f"the entry {name!r} has an absolute or Windows path; "
                                    f"a bundle zip holds only relative names")
        if ".." in parts:
            raise _refuse(zip_path, f"the entry {name!r} points outside the bundle ('..')")
        mode = info.external_attr >> 16
        if info.create_system == 3 and mode and stat.S_ISLNK(mode):
            raise _refuse(zip_path, f"the entry {name!r} is a symbolic link; zip the files "
                                    f"themselves")
        if info.is_dir():
            continue
        if info.create_system == 3 and stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise _refuse(zip_path, f"the entry {name!r} is not a plain file")
        if info.flag_bits & 0x1:
            raise _refuse(zip_path, f"the entry {name!r} is encrypted")
        total += info.file_size
        if total > max_total_bytes:
            raise _refuse(zip_path, f"it expands to more than {max_total_bytes} bytes")
        if info.file_size > max_ratio * max(info.compress_size, 1):
            raise _refuse(zip_path, f"the entry {name!r} expands {info.file_size} bytes from "
                                    f"{info.compress_size}, more than {max_ratio:g} times (a "
                                    f"zip bomb?)")
        files.append(info)
    return files


def _extract(archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path,
             zip_path: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with archive.open(info) as src, open(target, "xb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            written += len(block)
            if written > info.file_size:
                raise _refuse(zip_path, f"the entry {info.filename!r} expands beyond the size "
                                        f"its header gives")
            dst.write(block)


def _bundle_dirs(zip_path: Path, files: list[zipfile.ZipInfo]) -> list[PurePosixPath]:
    """The folders of the archive that hold a ``plugin.yaml``; every file must be in one."""
    dirs = sorted({PurePosixPath(i.filename).parent for i in files
                   if PurePosixPath(i.filename).name == MANIFEST_FILE}, key=str)
    if not dirs:
        raise _refuse(zip_path, f"no {MANIFEST_FILE} in the archive; a bundle zip holds "
                                f"<id>/<version>/{MANIFEST_FILE} and the model file")
    for d in dirs:
        if any(o != d and o in d.parents for o in dirs):
            raise _refuse(zip_path, f"{d}/{MANIFEST_FILE} is inside another bundle folder")
    for info in files:
        path = PurePosixPath(info.filename)
        if not any(d in path.parents for d in dirs):
            raise _refuse(zip_path, f"the entry {info.filename!r} is not inside a bundle "
                                    f"folder (one with {MANIFEST_FILE})")
    return dirs


def import_bundle_zip(zip_path: str | os.PathLike, dest_root: str | os.PathLike, *,
                      max_entries: int = MAX_ENTRIES, max_total_bytes: int = MAX_TOTAL_BYTES,
                      max_ratio: float = MAX_RATIO, taken=None) -> list[tuple[str, str]]:
    """Install the bundle versions of ``zip_path`` into ``dest_root`` (a plugins root);
    return their ``(id, version)``. All of them or none: any problem raises PluginError.
    ``taken`` maps ``"id@version"`` to the folder of a version installed elsewhere (another
    plugins root), which is refused as well."""
    zip_path, dest_root = Path(zip_path), Path(dest_root)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise PluginError(f"{zip_path}: cannot be read as a .zip ({exc}); export the bundle "
                          f"again") from None
    with archive:
        files = _check_members(zip_path, archive.infolist(), max_entries, max_total_bytes,
                               max_ratio)
        dirs = _bundle_dirs(zip_path, files)
        dest_root.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".import-", dir=dest_root))
        try:
            return _install(archive, zip_path, files, dirs, temp, dest_root, taken or {})
        except (OSError, zipfile.BadZipFile, RuntimeError) as exc:
            raise _refuse(zip_path, f"extracting failed ({exc})") from None
        finally:
            shutil.rmtree(temp, ignore_errors=True)


def _install(archive, zip_path, files, dirs, temp, dest_root,
             taken: dict) -> list[tuple[str, str]]:
    staged: list[tuple[Path, str, str]] = []
    for n, d in enumerate(dirs):
        stage = temp / str(n)
        for info in files:
            path = PurePosixPath(info.filename)
            if d in path.parents:
                _extract(archive, info, stage.joinpath(*path.relative_to(d).parts), zip_path)
        try:
            manifest = load_manifest(stage / MANIFEST_FILE)
        except PluginError as exc:
            raise _refuse(zip_path, f"{d}/{MANIFEST_FILE}: "
                                    f"{str(exc).split(': ', 1)[-1]}") from None
        if len(d.parts) >= 2 and d.parts[-2:] != (manifest.id, manifest.version):
            raise _refuse(zip_path, f"the folder {d} holds {manifest.ref}; name it "
                                    f"{manifest.id}/{manifest.version}")
        # check it as it will lie: <id>/<version>/ (folder names, model file, its sha256)
        final = temp / "check" / manifest.id / manifest.version
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(stage, final)
        entry = bundle_entry(temp / "check", final)
        if entry.error:
            raise _refuse(zip_path, entry.error)
        if any((i, v) == (manifest.id, manifest.version) for _, i, v in staged):
            raise _refuse(zip_path, f"{manifest.ref} is in the archive twice")
        staged.append((final, manifest.id, manifest.version))
    with FileLock(str(dest_root / INSTALL_LOCK), timeout=30):
        for _, model_id, version in staged:
            where = taken.get(f"{model_id}@{version}", dest_root / model_id / version)
            if (dest_root / model_id / version).exists() or f"{model_id}@{version}" in taken:
                raise _refuse(zip_path, f"{model_id} {version} is already installed in "
                                        f"{where}; versions are immutable, so give the new "
                                        f"one a new version number")
        for folder, model_id, version in staged:
            (dest_root / model_id).mkdir(exist_ok=True)
            os.rename(folder, dest_root / model_id / version)
    return [(model_id, version) for _, model_id, version in staged]


def export_bundle_zip(entries: list[BundleEntry], out_path: str | os.PathLike,
                      with_validation: bool = True) -> Path:
    """Write the bundle versions ``entries`` into a new ``.zip`` at ``out_path`` as
    ``<id>/<version>/...`` (every file of the version folder, so a version trained in ril_dash
    carries its provenance, ``training.json``), with each version's validation report
    (``validation.json``: the bundle's own, else one made from its manifest's
    ``validation:``)."""
    out_path = Path(out_path)
    if out_path.exists():
        raise PluginError(f"{out_path} already exists; choose another file name")
    if not entries:
        raise PluginError("nothing to export: no bundle version was given")
    for entry in entries:
        if entry.manifest is None:
            raise PluginError(f"{entry.ref} cannot be exported: {entry.error}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path_for(out_path, "partial-")
    try:
        with zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as archive:
            for entry in entries:
                _write_entry(archive, entry, with_validation)
        os.replace(temp, out_path)
    except OSError as exc:
        raise PluginError(f"could not write {out_path} ({exc.strerror or exc})") from None
    finally:
        temp.unlink(missing_ok=True)
    return out_path


def _write_entry(archive: zipfile.ZipFile, entry: BundleEntry, with_validation: bool) -> None:
    m = entry.manifest
    prefix = f"{m.id}/{m.version}/"
    for path in sorted(entry.folder.rglob("*")):
        rel = path.relative_to(entry.folder).as_posix()
        if path.is_symlink() or not path.is_file() or rel.startswith(".") or "/." in rel:
            continue
        if rel == VALIDATION_FILE and not with_validation:
            continue
        archive.write(path, prefix + rel)
    if with_validation and not (entry.folder / VALIDATION_FILE).is_file():
        report = {"ref": m.ref, "sha256": m.sha256, "validation": m.validation}
        archive.writestr(prefix + VALIDATION_FILE, json.dumps(report, indent=2) + "\n")
