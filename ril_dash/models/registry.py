"""A project's model settings: which bundles are enabled, which version is active, what is trusted.

Stored in ``PROJECT/.models/state.json``::

    {"enabled": {"kidney-seg": false},
     "active": {"phase-cls": "1.0.0"},
     "trusted": {"<sha256>": {"user": "root", "time": "2026-12-01T10:00:00+00:00",
                              "ref": "phase-cls@1.0.0"}}}

A bundle is enabled unless set otherwise; its active version is the one an admin pinned (a
rollback), else its newest valid version. Every change is a read-modify-write under a
:class:`filelock.FileLock` (``state.json.lock``) with an atomic replace, so changes made by
several server processes all survive; a change may also carry the sha256 of the state it was
based on (compare-and-swap): when someone else changed the file since, it is refused with
:class:`~ril_dash.errors.VersionConflict` and nothing is written.

:meth:`ModelRegistry.resolve` turns ``id`` (and an optional version) into the
:class:`~ril_dash.models.catalog.BundleEntry` to run, or a :class:`~ril_dash.errors.PluginError`
that says why not and what to do. Rights are checked above this module
(:mod:`ril_dash.application.model_admin`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import atomic_write_text, private_dir
from ril_dash.errors import PluginError, StorageError, VersionConflict
from ril_dash.models.catalog import BundleEntry, discover, plugin_roots, verify_model_file

__all__ = ["ModelRegistry", "ModelState", "STATE_FILE"]

STATE_DIR = ".models"
STATE_FILE = "state.json"
LOCK_TIMEOUT = 30.0


@dataclass(frozen=True)
class ModelState:
    """The stored settings; ``sha256`` identifies the file they were read from ("" if none)."""

    enabled: dict = field(default_factory=dict)
    active: dict = field(default_factory=dict)
    trusted: dict = field(default_factory=dict)
    sha256: str = ""

    def is_enabled(self, model_id: str) -> bool:
        return bool(self.enabled.get(model_id, True))

    def pinned(self, model_id: str) -> str | None:
        """The version an admin made active, or None (the newest valid version is)."""
        return self.active.get(model_id)

    def is_trusted(self, sha256: str) -> bool:
        return sha256 in self.trusted

    def data(self) -> dict:
        return {"enabled": self.enabled, "active": self.active, "trusted": self.trusted}


def active_version(state: ModelState, model_id: str, entries) -> str | None:
    """The version of ``model_id`` that runs in the project of ``state``: the one an admin
    pinned, else the newest usable one of ``entries`` (as :func:`~ril_dash.models.catalog.
    discover` lists them, newest first); None when there is none."""
    pinned = state.pinned(model_id)
    if pinned is not None:
        return pinned
    return next((e.version for e in entries
                 if e.id == model_id and e.ok and e.manifest is not None), None)


class ModelRegistry:
    """The model settings of the project in ``project_dir``; ``extra_roots`` are the lab's
    plugin folders (``--plugins``) searched after the project's own."""

    def __init__(self, project_dir: str | os.PathLike, extra_roots=(), *,
                 lock_timeout: float = LOCK_TIMEOUT) -> None:
        self.project_dir = Path(project_dir)
        self.path = self.project_dir / STATE_DIR / STATE_FILE
        self.extra_roots = tuple(Path(p) for p in extra_roots)
        self.lock_timeout = lock_timeout

    # ---- reading ----------------------------------------------------------------------------
    def roots(self) -> list[Path]:
        return plugin_roots(self.project_dir, self.extra_roots)

    def entries(self) -> list[BundleEntry]:
        """Every bundle version of the roots (cheap to call again, see :func:`discover`)."""
        return discover(self.roots())

    def state(self) -> ModelState:
        """The settings as stored now (defaults when the file does not exist yet)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return ModelState()
        except OSError as exc:
            raise StorageError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        try:
            data = json.loads(raw.decode("utf-8"))
            state = ModelState(dict(data.get("enabled", {})), dict(data.get("active", {})),
                               dict(data.get("trusted", {})), hashlib.sha256(raw).hexdigest())
        except (ValueError, AttributeError, TypeError):
            raise StorageError(f"{self.path} is not a valid model settings file; restore it "
                               f"from a backup or delete it (every bundle is then enabled, at "
                               f"its newest version, and nothing is trusted)") from None
        return state

    # ---- changing ---------------------------------------------------------------------------
    def _update(self, change: Callable[[ModelState], None],
                expected_sha256: str | None) -> ModelState:
        try:
            private_dir(self.path.parent)
            with FileLock(str(self.path) + ".lock", timeout=self.lock_timeout):
                state = self.state()
                if expected_sha256 is not None and state.sha256 != expected_sha256:
                    raise VersionConflict("the model settings were changed by someone else "
                                          "meanwhile; reload the Models page and make your "
                                          "change again")
                change(state)
                text = json.dumps(state.data(), indent=2, sort_keys=True) + "\n"
                atomic_write_text(self.path, text)
        except Timeout:
            raise StorageError(f"{self.path} is being changed by another process for more than "
                               f"{self.lock_timeout:g} s; try again") from None
        except OSError as exc:
            raise StorageError(f"could not write {self.path} ({exc.strerror or exc}); nothing "
                               f"was changed, fix the permissions or free space and try "
                               f"again") from None
        return self.state()

    def set_enabled(self, model_id: str, enabled: bool, *,
                    expected_sha256: str | None = None) -> ModelState:
        """Enable or disable a bundle (all its versions) for this project."""
        def change(state: ModelState) -> None:
            if enabled:
                state.enabled.pop(model_id, None)
            else:
                state.enabled[model_id] = False
        return self._update(change, expected_sha256)

    def set_active(self, model_id: str, version: str | None, *,
                   expected_sha256: str | None = None) -> ModelState:
        """Pin the active version of a bundle (a rollback), or unpin it with ``None`` (the
        newest valid version is then active). The version must be a valid one."""
        if version is not None:
            self.find(model_id, version)

        def change(state: ModelState) -> None:
            if version is None:
                state.active.pop(model_id, None)
            else:
                state.active[model_id] = version
        return self._update(change, expected_sha256)

    def trust(self, entry: BundleEntry, user: str, *,
              expected_sha256: str | None = None) -> ModelState:
        """Record that ``user`` trusts the model file of ``entry`` (by its sha256): its custom
        objects may then be loaded."""
        if entry.manifest is None:
            raise PluginError(f"{entry.ref} cannot be trusted: {entry.error}")
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

        def change(state: ModelState) -> None:
            state.trusted[entry.manifest.sha256] = {"user": user, "time": now, "ref": entry.ref}
        return self._update(change, expected_sha256)

    # ---- resolving --------------------------------------------------------------------------
    def find(self, model_id: str, version: str, roots=None) -> BundleEntry:
        """The valid bundle ``model_id@version`` (enabled or not), else PluginError."""
        entries = [e for e in discover(self.roots() if roots is None else roots)
                   if e.id == model_id and e.version]
        if not entries:
            return self._missing(model_id, roots)
        for entry in entries:
            if entry.version == version:
                if entry.error:
                    raise PluginError(entry.error)
                return entry
        raise PluginError(f"{model_id} has no version {version}; it has "
                          f"{', '.join(e.version for e in entries)}")

    def _missing(self, model_id: str, roots) -> BundleEntry:
        roots = self.roots() if roots is None else roots
        names = sorted({e.id for e in discover(roots) if e.ok})
        raise PluginError(f"no model bundle {model_id!r} in {', '.join(map(str, roots))}; "
                          f"available: {', '.join(names) or 'none'}. Put the bundle in "
                          f"{self.project_dir / 'plugins'}/<id>/<version>/ or import its .zip")

    def resolve(self, model_id: str, version: str | None = None, roots=None) -> BundleEntry:
        """The bundle to run: ``version`` if given, else the active one. PluginError when the
        bundle is missing, broken or disabled for this project."""
        state = self.state()
        if not state.is_enabled(model_id):
            raise PluginError(f"{model_id} is disabled for this project; an admin can enable "
                              f"it on the Models page or with `ril-dash plugins "
                              f"{self.project_dir} enable {model_id}`")
        if version is not None:
            return self.find(model_id, version, roots)
        pinned = state.pinned(model_id)
        if pinned is not None:
            try:
                return self.find(model_id, pinned, roots)
            except PluginError as exc:
                raise PluginError(f"{model_id}@{pinned}, the version an admin made active, "
                                  f"cannot be used ({exc}); activate another version") from None
        entries = [e for e in discover(self.roots() if roots is None else roots)
                   if e.id == model_id and e.version]
        if not entries:
            return self._missing(model_id, roots)
        newest = active_version(state, model_id, entries)
        if newest is None:
            raise PluginError(f"no version of {model_id} can be used: {entries[0].error}")
        return next(e for e in entries if e.version == newest)

    def verify(self, entry: BundleEntry) -> None:
        """Raise PluginError unless the model file's sha256 is (still) the manifest's, hashing
        the file now (not from the discovery cache)."""
        if entry.manifest is None:
            raise PluginError(entry.error)
        problem = verify_model_file(entry.folder, entry.manifest)
        if problem is not None:
            raise PluginError(problem)
