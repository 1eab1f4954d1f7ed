"""The model bundles as the pages show them: the catalog grouped per bundle, with the project's
registry state (enabled, active version, trusted hashes) beside each version.

Reading only: changes go through the audited commands of
:mod:`ril_dash.application.model_admin`. The catalog (``services.models``, a
:class:`~ril_dash.models.registry.ModelRegistry` over the project's plugins folder, the lab's
folders and the shipped examples) is cheap to ask again (it caches by folder times), so the
pages poll it to notice new bundles.

Developer notes::

    services.models.entries() ─► [BundleEntry] (per id, newest first) ─┐
    services.models.state() ─► ModelState ───────────────────────────────┴► bundle_views
    bundle_views ─► Models page;  runnable ─► the model pickers (viewer, project page)
"""

from __future__ import annotations

from dataclasses import dataclass

from ril_dash.application.services import Services
from ril_dash.models.registry import active_version

__all__ = ["BundleView", "VersionView", "bundle_views", "catalog_entries", "registry_state",
           "runnable", "runnable_manifest"]


@dataclass(frozen=True)
class VersionView:
    """One version folder of a bundle: its catalog entry (``manifest`` None when broken, with
    ``error``), whether it is the project's active version and, when its hash is trusted, who
    trusted it (``{"user", "time", "ref"}``)."""

    entry: object
    active: bool
    trusted: dict | None

    @property
    def manifest(self):
        return self.entry.manifest

    @property
    def ref(self) -> str:
        return self.entry.ref


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


def catalog_entries(services: Services) -> list:
    """Every bundle version the served project can see (broken ones too), per id, newest
    version first."""
    return services.models.entries()


def registry_state(services: Services):
    """The project's model settings (:class:`~ril_dash.models.registry.ModelState`)."""
    return services.models.state()


def bundle_views(entries: list, state) -> list[BundleView]:
    """Group ``entries`` (as the catalog lists them: by id, newest version first) per bundle
    with the settings ``state``: enabled, the active version (the pinned one, else the newest
    usable one, as :meth:`~ril_dash.models.registry.ModelRegistry.resolve` runs) and who
    trusted each model file."""
    grouped: dict[str, list] = {}
    for entry in entries:
        grouped.setdefault(entry.id, []).append(entry)
    views = []
    for bundle_id, versions in grouped.items():
        valid = [e.version for e in versions if e.ok and e.manifest is not None]
        chosen = active_version(state, bundle_id, versions)
        views.append(BundleView(bundle_id, state.is_enabled(bundle_id), chosen, tuple(
            VersionView(e, e.version == chosen and e.version in valid,
                        state.trusted.get(e.manifest.sha256) if e.manifest is not None
                        else None)
            for e in versions)))
    return views


def runnable(services: Services, task: str | None = None) -> list:
    """The manifests users may run here: the active version of each enabled bundle (of
    ``task`` when given), in id order."""
    found = []
    for view in bundle_views(catalog_entries(services), registry_state(services)):
        current = view.current
        if view.enabled and current is not None and (task is None or
                                                     current.manifest.task == task):
            found.append(current.manifest)
    return found


def runnable_manifest(services: Services, ref: str, task: str | None = None):
    """The manifest of ``ref`` (``id@version``) if it is runnable here now, else None."""
    return next((m for m in runnable(services, task) if m.ref == ref), None)
