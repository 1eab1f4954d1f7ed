"""Finding model bundles: the plugin roots, and every bundle version in them with its error.

A plugins root holds ``<id>/<version>/plugin.yaml`` plus the model file. The roots, in order of
precedence (:func:`plugin_roots`):

1. the project's ``PROJECT/plugins/`` (shared by every user of the project);
2. extra lab folders: ``ril-dash serve --plugins DIR`` (repeatable) and the environment variable
   ``RIL_DASH_PLUGINS`` (folders separated by ``os.pathsep``);
3. the examples shipped with ril_dash (the package ``ril_dash.plugins``: the repository's
   top-level ``plugins/`` folder).

:func:`discover` lists every version folder as a :class:`BundleEntry`: a valid one carries its
:class:`~ril_dash.models.manifest.Manifest`, a broken one its error (bad manifest, folder names
that do not match the manifest's id and version, a missing model file or one whose sha256 is not
the manifest's, a ``.zip`` lying in a root, the same id@version with other content in an
earlier root) — one broken bundle never stops anything. It is cheap to call again and again:
a version folder is read and its model file hashed again only when their modification times,
sizes or inodes change, so pages can poll for new bundles (:func:`new_since`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import ril_dash
from ril_dash.errors import PluginError
from ril_dash.models.safety import file_sha256
from ril_dash.models.manifest import MANIFEST_FILE, Manifest, load_manifest, version_key

__all__ = ["BundleEntry", "ENV_VAR", "PLUGINS_DIR", "bundle_entry", "discover",
           "examples_root", "new_since", "notices", "plugin_roots", "verify_model_file"]

PLUGINS_DIR = "plugins"
ENV_VAR = "RIL_DASH_PLUGINS"
_EXAMPLES_MARK = "__init__.py"


@dataclass(frozen=True)
class BundleEntry:
    """One version folder of a plugins root (or a ``.zip`` lying in it).

    ``manifest`` is None exactly when ``error`` says why the bundle cannot be used; ``id`` and
    ``version`` are then taken from the folder names. ``added`` is when the version appeared
    (the change time of its ``plugin.yaml``, or of the folder)."""

    root: Path
    folder: Path
    id: str
    version: str
    manifest: Manifest | None
    error: str | None
    added: float = 0.0

    @property
    def ref(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def model_path(self) -> Path | None:
        return None if self.manifest is None else self.folder / self.manifest.model_file


def examples_root(package: Path | None = None) -> Path | None:
    """The example bundles shipped with the running ril_dash: ``ril_dash/plugins`` in a wheel,
    the ``plugins/`` folder beside ``ril_dash/`` in a checkout (None if neither has them)."""
    package = package or Path(ril_dash.__file__).resolve().parent
    for folder in (package / PLUGINS_DIR, package.parent / PLUGINS_DIR):
        if (folder / _EXAMPLES_MARK).is_file():
            return folder
    return None


def plugin_roots(project_dir: str | os.PathLike | None, extra=()) -> list[Path]:
    """The plugins roots to search, in order of precedence (duplicates removed): the project's
    ``plugins/``, the ``extra`` folders, those of ``RIL_DASH_PLUGINS``, the shipped examples."""
    roots: list[Path] = []
    if project_dir is not None:
        roots.append(Path(project_dir) / PLUGINS_DIR)
    roots += [Path(p) for p in extra]
    roots += [Path(p) for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p.strip()]
    example = examples_root()
    if example is not None:
        roots.append(example)
    unique: dict[Path, None] = {}
    for root in roots:
        unique.setdefault(root.expanduser().resolve(), None)
    return list(unique)


def verify_model_file(folder: Path, manifest: Manifest) -> str | None:
    """Why the model file of the bundle in ``folder`` cannot be used (missing, or its sha256 is
    not the manifest's), or None when it is the file the manifest was written for."""
    path = folder / manifest.model_file
    try:
        actual = file_sha256(path)
    except OSError:
        return (f"{manifest.ref}: the model file {manifest.model_file} is missing from "
                f"{folder} (or cannot be read); put it beside plugin.yaml (or fix model.file)")
    if actual != manifest.sha256:
        return (f"{manifest.ref}: the model file {path} has changed since the manifest was "
                f"written (its sha256 is {actual}, the manifest says {manifest.sha256}). "
                f"Versions are immutable: put the original file back, or publish the new file "
                f"as a new version folder with its own sha256")
    return None


def _stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime)


def _model_stamp(folder: Path) -> tuple | None:
    """Stamps of the files of a version folder (a changed or replaced model file shows)."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
    except OSError:
        return None
    return tuple((name, _stamp(folder / name)) for name in names)


def bundle_entry(root: Path, folder: Path) -> BundleEntry:
    """Read and check one version folder ``root/<id>/<version>`` (never raises PluginError)."""
    folder_id, folder_version = folder.parent.name, folder.name
    stamp = _stamp(folder / MANIFEST_FILE)
    added = stamp[3] if stamp else (_stamp(folder) or (0, 0, 0, 0.0))[3]

    def broken(message: str) -> BundleEntry:
        return BundleEntry(root, folder, folder_id, folder_version, None, message, added)

    try:
        manifest = load_manifest(folder / MANIFEST_FILE)
    except PluginError as exc:
        return broken(str(exc))
    if (manifest.id, manifest.version) != (folder_id, folder_version):
        return broken(f"{folder / MANIFEST_FILE} says {manifest.ref} but its folder is "
                      f"{folder_id}/{folder_version}; a bundle lives in <id>/<version>/, so "
                      f"move it to {manifest.id}/{manifest.version}/ (or fix id and version)")
    problem = verify_model_file(folder, manifest)
    if problem is None and manifest.custom_objects is not None:
        if not (folder / manifest.custom_objects).is_file():
            problem = (f"{manifest.ref}: model.custom_objects names {manifest.custom_objects}, "
                       f"which is missing from {folder}")
    if problem:
        return broken(problem)
    return BundleEntry(root, folder, manifest.id, manifest.version, manifest, None, added)


class _Cache:
    """Entries by version folder, kept while the folder's files keep their stamps."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[Path, tuple[tuple, BundleEntry]] = {}

    def entry(self, root: Path, folder: Path) -> BundleEntry:
        key = _model_stamp(folder)
        with self.lock:
            cached = self.entries.get(folder)
        if cached is not None and cached[0] == key and cached[1].root == root:
            return cached[1]
        entry = bundle_entry(root, folder)
        with self.lock:
            self.entries[folder] = (key, entry)
        return entry


_CACHE = _Cache()


def _zip_entry(root: Path, path: Path) -> BundleEntry:
    name = path.stem
    return BundleEntry(root, path, name, "", None,
                       f"{path} is a bundle .zip, which is not read where it lies: import it "
                       f"with `ril-dash plugins PROJECT import {path}` or on the Models page",
                       (_stamp(path) or (0, 0, 0, 0.0))[3])


def _scan_root(root: Path) -> list[BundleEntry]:
    entries = []
    try:
        children = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    for child in children:
        path = Path(child.path)
        if child.name.startswith((".", "_")):
            continue  # hidden folders (imports under way), __init__.py, __pycache__
        if child.is_file():
            if child.name.lower().endswith(".zip"):
                entries.append(_zip_entry(root, path))
            continue
        if not child.is_dir():
            continue
        if (path / MANIFEST_FILE).is_file():
            entries.append(BundleEntry(root, path, child.name, "", None,
                                       f"{path / MANIFEST_FILE} is not in a version folder; "
                                       f"bundles live in <id>/<version>/plugin.yaml, so move "
                                       f"the files into {path}/<version>/"))
            continue
        try:
            versions = sorted(v.name for v in os.scandir(path)
                              if v.is_dir() and not v.name.startswith((".", "_")))
        except OSError:
            continue
        entries += [_CACHE.entry(root, path / v) for v in versions]
    return entries


def discover(roots) -> list[BundleEntry]:
    """Every bundle version of ``roots`` (missing roots are skipped), sorted by id then newest
    version first. The same id@version in a later root is hidden when its model file is the
    same, and listed with an error otherwise (versions are immutable)."""
    seen: dict[str, BundleEntry] = {}
    out = []
    for root in roots:
        for entry in _scan_root(Path(root)):
            first = seen.get(entry.ref) if entry.version else None
            if first is not None:
                if (first.manifest and entry.manifest
                        and first.manifest.sha256 == entry.manifest.sha256):
                    continue
                entry = BundleEntry(entry.root, entry.folder, entry.id, entry.version, None,
                                    f"{entry.ref} is also in {first.root} with another model "
                                    f"file; versions are immutable, so the one in "
                                    f"{first.root} is used: give this one a new version",
                                    entry.added)
            elif entry.version:
                seen[entry.ref] = entry
            out.append(entry)
    out.sort(key=lambda e: version_key(e.version), reverse=True)
    out.sort(key=lambda e: e.id)
    return out


def new_since(entries, stamp: float) -> list[BundleEntry]:
    """The valid versions that appeared after ``stamp`` (seconds since the epoch), e.g. for
    the notice "kidney-seg 1.3.0 is available" on a page loaded at ``stamp``."""
    return [e for e in entries if e.ok and e.added > stamp]


def notices(entries, stamp: float) -> list[str]:
    """One line per version that appeared after ``stamp``: ``"kidney-seg 1.3.0 is available"``.
    """
    return [f"{e.id} {e.version} is available" for e in new_since(entries, stamp)]
