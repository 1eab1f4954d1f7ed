"""Managing a project's model bundles: enable, disable, activate a version, trust, import.

Each command checks the actor's right (:func:`~ril_dash.application.policy.models_decision`:
admins, or members of a workflow pool with the ``models`` right; trusting a model file is for
admins only, since a trusted bundle's custom code runs), makes the change through
:class:`~ril_dash.models.registry.ModelRegistry` (file lock, optional compare-and-swap on the
settings file, atomic write) or :func:`~ril_dash.models.bundle_zip.import_bundle_zip`, and records
a ``models`` audit line whose detail names the change::

    {"change": "activate", "model": "kidney-seg", "version": "1.0.0"}

The bundles are those of ``services.models`` (the project's ``plugins/`` folder, then the lab's
folders given with ``--plugins``); imports always go into the project's folder.
"""

from __future__ import annotations

from ril_dash.application.policy import Actor, admin_decision, models_decision
from ril_dash.application.services import Services
from ril_dash.models.catalog import PLUGINS_DIR
from ril_dash.models.bundle_zip import import_bundle_zip
from ril_dash.models.registry import ModelState

__all__ = ["activate_model_version", "import_bundle", "set_model_enabled",
           "trust_model_version"]

AUDIT_ACTION = "models"


def _audit(services: Services, actor: Actor, change: str, **detail) -> None:
    services.audit.record(actor.user, AUDIT_ACTION, None, {"change": change, **detail})


def set_model_enabled(services: Services, actor: Actor, model_id: str, enabled: bool, *,
                      expected_sha256: str | None = None) -> ModelState:
    """Enable or disable the bundle ``model_id`` (all its versions) for this project."""
    what = "enable" if enabled else "disable"
    models_decision(services.workflow, actor, f"{what} model bundles").check()
    registry = services.models
    if not any(e.id == model_id for e in registry.entries()):
        registry.resolve(model_id)  # raises: no such bundle, saying which exist
    state = registry.set_enabled(model_id, enabled, expected_sha256=expected_sha256)
    _audit(services, actor, what, model=model_id)
    return state


def activate_model_version(services: Services, actor: Actor, model_id: str,
                           version: str | None, *, expected_sha256: str | None = None) -> ModelState:
    """Make ``version`` the active version of ``model_id`` (a rollback when it is an older one),
    or with ``None`` let the newest valid version be active again."""
    models_decision(services.workflow, actor, "change the active model version").check()
    state = services.models.set_active(model_id, version,
                                                       expected_sha256=expected_sha256)
    _audit(services, actor, "activate", model=model_id, version=version)
    return state


def trust_model_version(services: Services, actor: Actor, model_id: str, version: str, *,
                        expected_sha256: str | None = None) -> ModelState:
    """Trust the model file of ``model_id@version`` by its sha256 (admins only): the worker may
    then load its custom objects. The audit line records the hash."""
    admin_decision(services.workflow, actor, "trust a model file (its code may run)").check()
    registry = services.models
    entry = registry.find(model_id, version)
    state = registry.trust(entry, actor.user, expected_sha256=expected_sha256)
    _audit(services, actor, "trust", model=model_id, version=version,
           sha256=entry.manifest.sha256)
    return state


def import_bundle(services: Services, actor: Actor, zip_path) -> list[tuple[str, str]]:
    """Install the bundle versions of the ``.zip`` at ``zip_path`` into the project's
    ``plugins/`` folder; return their ``(id, version)``. A version already installed in any
    plugins root is refused (nothing is overwritten or shadowed)."""
    models_decision(services.workflow, actor, "import model bundles").check()
    taken = {e.ref: e.folder for e in services.models.entries() if e.version}
    installed = import_bundle_zip(zip_path, services.project.dir / PLUGINS_DIR, taken=taken)
    _audit(services, actor, "import", file=str(zip_path),
           bundles=[f"{i}@{v}" for i, v in installed])
    return installed
