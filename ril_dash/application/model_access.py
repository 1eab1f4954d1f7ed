"""The bundle a model run uses: resolved for the project, checked, and named for the worker.

:func:`resolve_bundle` turns ``id`` or ``id@version`` into the project's bundle entry (the active
version when none is given; PluginError when it is missing, broken, disabled, or its model file
changed), and checks that its outputs map onto this project's ROIs or text field.
:func:`model_ref` says to the model worker which file to load and whether an admin trusted it.
"""

from __future__ import annotations

from ril_dash.application.services import Services
from ril_dash.errors import PluginError
from ril_dash.models.catalog import BundleEntry
from ril_dash.models.manifest import project_problems
from ril_dash.models.worker_client import ModelRef

__all__ = ["model_ref", "resolve_bundle", "split_ref"]


def split_ref(model: str) -> tuple[str, str | None]:
    """``"id@version"`` → ``("id", "version")``; ``"id"`` → ``("id", None)``.

    Examples
    --------
    >>> split_ref("kidney-seg@1.0.0"), split_ref("kidney-seg")
    (('kidney-seg', '1.0.0'), ('kidney-seg', None))
    """
    model_id, _, version = str(model).strip().partition("@")
    if not model_id:
        raise PluginError("name a model bundle as ID or ID@VERSION (e.g. kidney-seg@1.0.0)")
    return model_id, version or None


def resolve_bundle(services: Services, model: str, *, sha256: str | None = None
                   ) -> BundleEntry:
    """The usable bundle ``model`` of the project (see the module docstring); ``sha256``: the
    model file a job was started with, which must still be the one on disk."""
    model_id, version = split_ref(model)
    entry = services.models.resolve(model_id, version)
    services.models.verify(entry)
    manifest = entry.manifest
    if sha256 is not None and manifest.sha256 != sha256:
        raise PluginError(f"{manifest.ref} is not the file this run was started with (sha256 "
                          f"{manifest.sha256[:12]}…, not {sha256[:12]}…); start the run again.")
    problems = project_problems(manifest, services.project.config)
    if problems:
        raise PluginError(f"{manifest.ref} does not fit this project: {'; '.join(problems)}. "
                          "Fix the output mapping in its plugin.yaml (as a new version) or the "
                          "project's ROIs and text fields.")
    return entry


def model_ref(services: Services, entry: BundleEntry) -> ModelRef:
    """What the model worker needs to load ``entry``'s model file."""
    manifest = entry.manifest
    trusted = services.models.state().is_trusted(manifest.sha256)
    custom = None if not manifest.custom_objects else str(entry.folder / manifest.custom_objects)
    return ModelRef(str(entry.model_path), manifest.sha256, manifest.ref, trusted=trusted,
                    custom_objects=custom)
