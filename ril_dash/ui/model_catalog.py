"""The model bundles as the pages show them: the catalog grouped per bundle, with the project's
registry state (enabled, active version, trusted hashes) beside each version.

Reading only: changes go through the audited commands of
:mod:`ril_dash.application.model_admin`. The catalog (:mod:`ril_dash.models.catalog`) is cheap
to ask again (it caches by folder times), so the pages poll it to notice new bundles.

Developer notes::

    plugin_roots(project, extra) ─► discover ─► [BundleEntry] ─┐
    ModelRegistry(project).state() ─────────────────────────────┴► bundle_views ─► Models page
                                                                  runnable ─► model pickers
"""

from __future__ import annotations

from dataclasses import dataclass

from ril_dash.application.services import Services

__all__ = ["BundleView", "VersionView", "bundle_views", "catalog_entries", "catalog_refs",
           "registry_state", "runnable",
           "runnable_manifest"]


@dataclass(frozen=True)
class VersionView:
    """One version folder of a bundle: its catalog entry (``manifest`` None when broken, with
    ``error``), whether it is the project's active version and whether its hash is trusted."""

    entry: object
    active: bool
    trusted: dict | None

    @property
    def manifest(self):
        return self.entry.manifest

    @property
    def ref(self) -> str:
        return f"{self.entry.id}@{self.entry.version}"


@dataclass(frozen=True)
class BundleView:
    """A bundle id with its versions, newest first, and whether it is enabled here."""

    id: str
    enabled: bool
    active: str | None
    versions: tuple[VersionView, ...]

    @property
    def current(self) -> VersionView | None:
        """The active version (None: no version of the bundle can be used)."""
        return next((v for v in self.versions if v.active), None)

    @property
    def name(self) -> str:
        current = self.current or next((v for v in self.versions if v.manifest), None)
        return current.manifest.name if current is not None else self.id


def _registry(services: Services):
    from ril_dash.models.registry import ModelRegistry

    return ModelRegistry(services.project.dir)


def catalog_entries(services: Services) -> list:
    """Every bundle version found in the plugin roots of the served project (broken ones too)."""
    from ril_dash.models.catalog import discover, plugin_roots

    return discover(plugin_roots(services.project.dir, getattr(services, "plugin_dirs", ())))


def _state_part(state, name: str) -> dict:
    part = state.get(name) if isinstance(state, dict) else getattr(state, name, None)
    return dict(part or {})


def bundle_views(entries: list, state) -> list[BundleView]:
    """Group ``entries`` per bundle id (sorted by id) with the registry ``state``: enabled
    (default yes), the active version (pinned, else the newest valid one) and trusted hashes."""
    from ril_dash.models.manifest import version_key

    enabled, active, trusted = (_state_part(state, k) for k in ("enabled", "active", "trusted"))
    grouped: dict[str, list] = {}
    for entry in entries:
        grouped.setdefault(entry.id, []).append(entry)
    views = []
    for bundle_id in sorted(grouped):
        versions = sorted(grouped[bundle_id], key=lambda e: version_key(e.version),
                          reverse=True)
        valid = [e.version for e in versions if e.manifest is not None and e.error is None]
        chosen = active.get(bundle_id) or (valid[0] if valid else None)
        views.append(BundleView(bundle_id, bool(enabled.get(bundle_id, True)), chosen, tuple(
            VersionView(e, e.version == chosen and e.version in valid,
                        trusted.get(e.manifest.sha256) if e.manifest is not None else None)
            for e in versions)))
    return views


def catalog_refs(entries: list) -> list[str]:
    """``id@version`` of every usable bundle version, sorted (what the notice compares)."""
    return sorted(f"{e.id}@{e.version}" for e in entries
                  if e.manifest is not None and e.error is None)


def runnable(services: Services, task: str | None = None) -> list:
    """The manifests users may run here: the active version of each enabled bundle (of
    ``task`` when given), in id order."""
    views = bundle_views(catalog_entries(services), _registry(services).state())
    found = []
    for view in views:
        current = view.current
        if view.enabled and current is not None and (task is None or
                                                     current.manifest.task == task):
            found.append(current.manifest)
    return found


def runnable_manifest(services: Services, ref: str, task: str | None = None):
    """The manifest of ``ref`` (``id@version``) if it is runnable here now, else None."""
    return next((m for m in runnable(services, task) if m.ref == ref), None)


def registry_state(services: Services):
    """The project's model registry state (enabled, active, trusted)."""
    return _registry(services).state()
