"""The files of the model wizard: the uploaded model file, and the bundle version it becomes.

:func:`save_upload` keeps an uploaded ``.keras``/``.h5`` in a private folder of the project
(``PROJECT/.models/uploads/<token>/``, mode 0700), after refusing wrong suffixes, empty or too
large files and anything the safety scan refuses; uploads older than a day are removed when a
new one arrives, and an upload is dropped once a version was made from it.
:func:`write_bundle_version` writes ``<plugins root>/<id>/<version>/`` all or nothing and never
over an existing version. The rest of the wizard is in :mod:`ril_dash.models.wizard`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from ril_dash.errors import PluginError
from ril_dash.models.bundle_zip import INSTALL_LOCK
from ril_dash.models.catalog import bundle_entry
from ril_dash.models.manifest import MANIFEST_FILE, Manifest, manifest_yaml
from ril_dash.models.safety import file_sha256, scan_model_file

__all__ = ["KEEP_UPLOADS_S", "MAX_UPLOAD_BYTES", "Upload", "discard_upload", "find_upload",
           "save_upload", "uploads_dir", "write_bundle_version"]

UPLOADS = Path(".models") / "uploads"
MAX_UPLOAD_BYTES = 200 * 1024**2
UPLOAD_SUFFIXES = (".keras", ".h5")
KEEP_UPLOADS_S = 24 * 3600  # older uploads are removed when a new one arrives
TOKEN_RE = re.compile(r"^[0-9a-f]{16}$")
INFO_FILE = "upload.json"  # the file's original name and its sha256


# ---- the uploaded file ----------------------------------------------------------------------
@dataclass(frozen=True)
class Upload:
    """A model file the wizard received: ``token`` names its private folder."""

    token: str
    filename: str
    path: Path
    sha256: str

    @property
    def model_file(self) -> str:
        """The name the file takes in the bundle: ``model.keras`` or ``model.h5``."""
        return self.path.name


def uploads_dir(project_dir) -> Path:
    return Path(project_dir) / UPLOADS


def _prune(folder: Path, now: float) -> None:
    for child in folder.iterdir() if folder.is_dir() else ():
        try:
            if child.is_dir() and now - child.stat().st_mtime > KEEP_UPLOADS_S:
                shutil.rmtree(child, ignore_errors=True)
        except OSError:
            continue


def save_upload(project_dir, filename: str, data: bytes, *,
                max_bytes: int = MAX_UPLOAD_BYTES) -> Upload:
    """Keep ``data`` (the file ``filename``) for the wizard after checking it; PluginError
    (nothing kept) for a wrong suffix, an empty or too large file, or a refused model."""
    name = Path(str(filename or "")).name
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_SUFFIXES:
        raise PluginError(f"{name or 'the file'} is not a Keras model file: upload a .keras "
                          f"file (or a legacy full-model .h5)")
    if not data:
        raise PluginError(f"{name} is empty; upload the model file saved by model.save()")
    if len(data) > max_bytes:
        raise PluginError(f"{name} is {len(data) / 2**20:.0f} MB, more than the wizard's "
                          f"{max_bytes / 2**20:.0f} MB; write its plugin.yaml by hand and import "
                          f"the bundle as a .zip")
    root = uploads_dir(project_dir)
    root.mkdir(parents=True, exist_ok=True)
    _prune(root, time.time())
    token = secrets.token_hex(8)
    folder = root / token
    folder.mkdir(mode=0o700)
    path = folder / f"model{suffix}"
    try:
        path.write_bytes(data)
        scan_model_file(path, name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    sha256 = file_sha256(path)
    (folder / INFO_FILE).write_text(json.dumps({"name": name, "sha256": sha256}),
                                    encoding="utf-8")
    return Upload(token, name, path, sha256)


def find_upload(project_dir, token: str) -> Upload:
    """The upload ``token`` of this project (PluginError when it is unknown or gone).

    Its sha256 is the one taken when it arrived (the wizard asks for the upload on every
    change; hashing a large model each time would slow the page). The model worker checks it
    before loading the file, and :func:`write_bundle_version` reads the written file back."""
    folder = uploads_dir(project_dir) / str(token)
    files = ([p for p in folder.iterdir() if p.suffix in UPLOAD_SUFFIXES]
             if TOKEN_RE.match(str(token)) and folder.is_dir() else [])
    if len(files) != 1:
        raise PluginError("the uploaded model file is gone (uploads are kept for a day, and "
                          "until a version is created from them); upload it again")
    try:
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
        return Upload(str(token), str(info["name"]), files[0], str(info["sha256"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Upload(str(token), files[0].name, files[0], file_sha256(files[0]))


def discard_upload(project_dir, token: str) -> None:
    """Remove the upload ``token`` (after a version was created from it)."""
    if TOKEN_RE.match(str(token)):
        shutil.rmtree(uploads_dir(project_dir) / token, ignore_errors=True)


# ---- writing the version --------------------------------------------------------------------
def write_bundle_version(dest_root, manifest: Manifest, model_path, *, taken=None,
                         extra_files=None) -> Path:
    """Write ``dest_root/<id>/<version>/`` (``plugin.yaml`` + the model file, + ``extra_files``:
    file name → text, e.g. a training provenance) for ``manifest``,
    all or nothing: the files go into a hidden temp folder of ``dest_root``, are read back
    (the manifest must load equal, the model file's sha256 must be the manifest's) and the
    folder is renamed into place under the plugins root's lock. A version that exists already
    (in ``dest_root``, or in ``taken``: ``"id@version"`` → folder of another root) is refused;
    nothing is ever overwritten."""
    dest_root = Path(dest_root)
    final = dest_root / manifest.id / manifest.version

    def refuse_taken() -> None:
        where = (taken or {}).get(manifest.ref) or (final if final.exists() else None)
        if where is not None:
            raise PluginError(f"{manifest.id} {manifest.version} exists already in {where}; "
                              f"versions are immutable, so give this one a new version "
                              f"number")

    refuse_taken()
    dest_root.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=".wizard-", dir=dest_root))
    try:
        stage = temp / manifest.id / manifest.version
        stage.mkdir(parents=True)
        (stage / MANIFEST_FILE).write_text(manifest_yaml(manifest), encoding="utf-8")
        shutil.copyfile(model_path, stage / manifest.model_file)
        for name, text in (extra_files or {}).items():
            (stage / Path(name).name).write_text(text, encoding="utf-8")
        entry = bundle_entry(temp, stage)
        if entry.error or entry.manifest != manifest:
            raise PluginError(f"{manifest.ref} could not be written as asked "
                              f"({entry.error or 'its plugin.yaml reads back differently'}); "
                              f"nothing was created")
        with FileLock(str(dest_root / INSTALL_LOCK), timeout=30):
            refuse_taken()
            final.parent.mkdir(exist_ok=True)
            os.rename(stage, final)
    except OSError as exc:
        raise PluginError(f"could not write {final} ({exc.strerror or exc}); nothing was "
                          f"created") from None
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final
