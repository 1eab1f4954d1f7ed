"""Running a model plugin on series as a job: started with rights, run per series, summarised.

:func:`start_model_run` resolves the bundle at once (the project's active version, or the one
asked for; a missing, disabled or broken bundle is refused before anything runs), pins its exact
``id@version`` and file hash into the job's parameters, and checks that the actor may annotate at
least one of the chosen series. The job work (:func:`run_model`, kind ``model``) then takes the
series one by one: a series the actor may not annotate, or that someone else is editing, is
skipped with the reason; the others go through the plugin engine
(:func:`~ril_dash.models.pipeline.predict_series`, the model itself running in the model
worker) and :mod:`ril_dash.application.drafts` writes the result as one version. A model that
fails (raises, NaN, wrong shape, the worker stopped) fails the job with a message naming the
bundle; the series done before it keep their drafts, nothing is half-written.
"""

from __future__ import annotations

import time
from typing import Any

from ril_dash.application import drafts, rights
from ril_dash.application.job_kit import MAX_LISTED, actor_of, base_params, job_store
from ril_dash.application.model_access import model_ref, resolve_bundle
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import LockHeld, ModelRunError, PermissionDenied, PluginError, RilDashError
from ril_dash.jobs import Job
from ril_dash.models.manifest import ClassificationOutput
from ril_dash.models.pipeline import Cancelled, predict_series
from ril_dash.models.worker_client import ModelWorker
from ril_dash.project.export import select_series

__all__ = ["MODEL_RUN", "check_chosen", "model_run_params", "run_model", "start_model_run",
           "warm_model"]

MODEL_RUN = "model"


def model_run_params(services: Services, actor: Actor, model: str, series: str | list[str],
                     *, slices: tuple[int, int] | None = None,
                     mode: str = "empty_slices") -> dict[str, Any]:
    """The parameters of a model run: the bundle pinned to ``id@version`` and its hash."""
    if mode not in drafts.MERGE_MODES:
        raise PluginError(f"unknown merge mode {mode!r}; use one of "
                          f"{', '.join(drafts.MERGE_MODES)}")
    entry = resolve_bundle(services, model)
    manifest = entry.manifest
    return {**base_params(services, actor), "model": manifest.ref, "sha256": manifest.sha256,
            "series": series if isinstance(series, str) else list(series),
            "slices": None if slices is None else [int(slices[0]), int(slices[1])],
            "mode": mode, "task": manifest.task}


def start_model_run(services: Services, actor: Actor, model: str, series: str | list[str],
                    *, slices: tuple[int, int] | None = None,
                    mode: str = "empty_slices") -> Job:
    """Create the job that runs ``model`` (``id`` or ``id@version``) on ``series`` (ids, a
    glob or ``"all"``). PluginError or PermissionDenied at once when it cannot run at all."""
    params = model_run_params(services, actor, model, series, slices=slices, mode=mode)
    check_chosen(services, actor, series, params["model"], "draft")
    return job_store(services).create(actor.user, MODEL_RUN, params)


def check_chosen(services: Services, actor: Actor, series: str | list[str], ref: str,
                 verb: str) -> None:
    """Refuse at once a run of ``ref`` on ``series`` that matches no series (PluginError) or
    none that ``actor`` may annotate (PermissionDenied); ``verb``: what the run does to them."""
    chosen = select_series(services.project, series)[0]
    if not chosen:
        raise PluginError(f"no series matches {series!r}; choose series for {ref} to {verb}.")
    if not any(rights.may(services, actor, s, "annotate") for s in chosen):
        raise PermissionDenied(f"{actor.user} may annotate none of the chosen series, so "
                               f"{ref} cannot {verb} them; ask an administrator.")


def _skip_reason(services: Services, actor: Actor, series: str) -> str | None:
    decision = rights.decision(services, actor, series, "annotate")
    if not decision.allowed:
        return decision.reason
    holder = services.locks.holder(series)
    if holder is not None and holder.user != actor.user:
        return f"being edited by {holder.user}"
    return None


def warm_model(services: Services, params: dict, report_progress):
    """The pinned bundle of a job's ``params`` checked again and loaded in the model worker:
    ``(manifest, worker ref, worker, seconds the load took)``."""
    entry = resolve_bundle(services, params["model"], sha256=params["sha256"])
    ref = model_ref(services, entry)
    worker = ModelWorker.shared()
    report_progress(0.0, f"loading model {entry.manifest.ref}", None)
    started = time.monotonic()
    worker.warm(ref)
    return entry.manifest, ref, worker, time.monotonic() - started


def run_model(services: Services, job: Job, report_progress, cancelled) -> dict[str, Any]:
    """The job work of a model run (see the module docstring)."""
    params, actor = job.params, actor_of(job)
    manifest, ref, worker, load_s = warm_model(services, params, report_progress)
    chosen = select_series(services.project, params["series"])[0]
    slices = None if params.get("slices") is None else tuple(params["slices"])
    one_per_voxel = services.project.config.overlap == "one_roi_per_voxel"
    result = {"model": manifest.ref, "task": manifest.task, "series": len(chosen),
              "drafted": [], "unchanged": [], "skipped": [], "notes": [],
              "load_seconds": round(load_s, 2), "cancelled": False}
    for number, series in enumerate(chosen):
        reason = _skip_reason(services, actor, series)
        if reason is not None:
            result["skipped"].append([series, reason])
            continue

        def progress(done, total, number=number, series=series):
            fraction = (number + done / max(total, 1)) / len(chosen)
            report_progress(fraction, f"{series}: slice {done} / {total}",
                            (number, len(chosen)))

        try:
            prediction = predict_series(services.volume(series), manifest, ref, worker,
                                        slices=slices, one_roi_per_voxel=one_per_voxel,
                                        progress=progress, cancelled=cancelled)
            if isinstance(manifest.output, ClassificationOutput):
                outcome = drafts.write_classification(services, actor, series, manifest,
                                                      prediction, job.id)
            else:
                outcome = drafts.write_segmentation(services, actor, series, manifest,
                                                    prediction, params["mode"], job.id)
        except Cancelled:
            result["cancelled"] = True
            break
        except (PermissionDenied, LockHeld) as exc:  # lost the right or the lease meanwhile
            result["skipped"].append([series, str(exc)])
            continue
        except (PluginError, ModelRunError):
            raise  # the model itself failed: the job fails, naming the bundle
        except RilDashError as exc:  # this series' image or annotations: skip it, say why
            result["skipped"].append([series, str(exc)])
            continue
        line = [series, outcome.version]
        if outcome.value is not None:
            line += [outcome.value, round(outcome.probability, 3)]
        result["drafted" if outcome.version is not None else "unchanged"].append(line)
        result["notes"].extend(f"{series}: {note}" for note in outcome.notes)
    for key in ("drafted", "unchanged", "skipped", "notes"):
        result[f"{key}_total"] = len(result[key])
        result[key] = result[key][:MAX_LISTED]
    return result
