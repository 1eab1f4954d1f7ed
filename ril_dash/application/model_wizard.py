"""The model wizard's commands: receive a model file, describe it, preview it, create a version.

Every command checks the actor's right first (:func:`~ril_dash.application.policy.models_decision`:
admins, or members of a workflow pool with the ``models`` right; a preview also needs the
``read`` right on its series), so a forged request is refused like a click. The logic lives in
:mod:`ril_dash.models.wizard`; the model file is only ever read by the model worker.

:func:`create_bundle_version` is the one that changes the project: it writes
``PROJECT/plugins/<id>/<version>/`` and records a ``models`` audit line::

    {"change": "create", "model": "liver-seg", "version": "1.0.0", "sha256": "3f1c…"}
"""

from __future__ import annotations

from ril_dash.application import rights
from ril_dash.application.policy import Actor, models_decision
from ril_dash.application.services import Services
from ril_dash.core.window import is_ct_like
from ril_dash.errors import PluginError
from ril_dash.models import wizard, wizard_files
from ril_dash.models.catalog import PLUGINS_DIR, BundleEntry
from ril_dash.models.manifest import Manifest, project_problems
from ril_dash.models.worker_client import ModelRef, ModelWorker

__all__ = ["build_wizard_manifest", "create_bundle_version", "describe_upload",
           "preview_wizard_slice", "receive_model_file", "require_models_right", "roi_codes",
           "series_is_ct"]


def require_models_right(services: Services, actor: Actor,
                         what: str = "create model bundles") -> None:
    """Raise PermissionDenied unless ``actor`` may use the wizard."""
    models_decision(services.workflow, actor, what).check()


def _ref(upload: wizard_files.Upload) -> ModelRef:
    return ModelRef(str(upload.path), upload.sha256, upload.filename)


def receive_model_file(services: Services, actor: Actor, filename: str,
                       data: bytes) -> wizard_files.Upload:
    """Keep an uploaded model file for the wizard (checked and scanned, never loaded here)."""
    require_models_right(services, actor)
    return wizard_files.save_upload(services.project.dir, filename, data)


def describe_upload(services: Services, actor: Actor, token: str, worker=None
                    ) -> tuple[wizard_files.Upload, wizard.ModelSummary]:
    """The upload ``token`` and its shapes, read by loading it in the model worker."""
    require_models_right(services, actor)
    upload = wizard_files.find_upload(services.project.dir, token)
    worker = worker or ModelWorker.shared()
    return upload, wizard.model_summary(worker.inspect(_ref(upload)), upload.filename)


def roi_codes(services: Services) -> dict[str, str]:
    """Project ROI name → its RadLex code (what the manifest's ``code`` records)."""
    return {r.name: r.radlex for r in services.project.config.rois if r.radlex}


def build_wizard_manifest(services: Services, token: str, form: dict) -> Manifest:
    """The manifest of the wizard ``form`` for the upload ``token``; PluginError when a field
    is wrong or the outputs do not fit this project (ROIs, text field values)."""
    upload = wizard_files.find_upload(services.project.dir, token)
    manifest = wizard.build_manifest(form, model_file=upload.model_file, sha256=upload.sha256,
                                     codes=roi_codes(services))
    problems = project_problems(manifest, services.project.config)
    if problems:
        raise PluginError("; ".join(problems))
    return manifest


def preview_wizard_slice(services: Services, actor: Actor, token: str, form: dict,
                         series: str, index: int, worker=None) -> tuple[Manifest,
                                                                        wizard.Preview]:
    """The wizard's manifest run on slice ``index`` of ``series`` (see
    :func:`ril_dash.models.wizard.preview_slice`)."""
    require_models_right(services, actor)
    rights.require(services, actor, series, "read")
    upload = wizard_files.find_upload(services.project.dir, token)
    manifest = build_wizard_manifest(services, token, form)
    one_per_voxel = services.project.config.overlap == "one_roi_per_voxel"
    preview = wizard.preview_slice(services.volume(series), manifest, _ref(upload),
                                   worker or ModelWorker.shared(), index,
                                   one_roi_per_voxel=one_per_voxel)
    return manifest, preview


def series_is_ct(services: Services, series: str) -> bool:
    """Whether ``series`` looks like CT (the wizard then proposes a CT window)."""
    return bool(is_ct_like(services.volume(series).data[..., 0]))


def create_bundle_version(services: Services, actor: Actor, token: str,
                          manifest: Manifest) -> BundleEntry:
    """Write ``manifest`` and the uploaded model file ``token`` as the new bundle version
    ``PROJECT/plugins/<id>/<version>/`` (refused when that version exists in any plugins root,
    or when the manifest was not made for this file), audit it and drop the upload."""
    require_models_right(services, actor)
    upload = wizard_files.find_upload(services.project.dir, token)
    if (manifest.model_file, manifest.sha256) != (upload.model_file, upload.sha256):
        raise PluginError(f"{manifest.ref} names the model file {manifest.model_file} "
                          f"with sha256 {manifest.sha256[:12]}…, not the uploaded "
                          f"{upload.filename}; go through the wizard again")
    taken = {e.ref: e.folder for e in services.models.entries() if e.version}
    wizard_files.write_bundle_version(services.project.dir / PLUGINS_DIR, manifest,
                                         upload.path, taken=taken)
    services.audit.record(actor.user, "models", None,
                          {"change": "create", "model": manifest.id,
                           "version": manifest.version, "sha256": manifest.sha256})
    wizard_files.discard_upload(services.project.dir, token)
    return services.models.find(manifest.id, manifest.version)
