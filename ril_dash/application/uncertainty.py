"""What to annotate next: a model's uncertainty per series, scored as a job and kept per version.

:func:`start_uncertainty` is checked like a model run (:mod:`ril_dash.application.model_runs`):
the bundle resolved and pinned to ``id@version`` and its file hash, and the actor must be allowed
to annotate at least one chosen series; the series they may not annotate are skipped with the
reason when it runs. The job (kind ``uncertainty``, :func:`run_uncertainty`) runs the model on
each series through the plugin engine (:func:`~ril_dash.models.pipeline.predict_series`, the
model itself in the model worker) and scores its output (:mod:`ril_dash.models.uncertainty`:
mean normalised entropy over the region the model segments or is unsure about, or the entropy of
a classifier's class probabilities). Nothing is written to the annotations: the scores go to the
model version's file (:mod:`ril_dash.models.uncertainty_store`) after each series, so a cancelled
or failed job keeps what it scored. :func:`model_uncertainty` reads them back for the project
grid.
"""

from __future__ import annotations

from typing import Any

from ril_dash.application import rights
from ril_dash.application.job_kit import MAX_LISTED, actor_of, job_store
from ril_dash.application.model_runs import check_chosen, model_run_params, warm_model
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.errors import ModelRunError, PluginError, RilDashError
from ril_dash.jobs import Job
from ril_dash.models.manifest import ClassificationOutput
from ril_dash.models.pipeline import Cancelled, predict_series
from ril_dash.models.uncertainty import METHOD, EntropyAccumulator, class_entropy
from ril_dash.models.uncertainty_store import read_scores, write_scores
from ril_dash.project.export import select_series

__all__ = ["UNCERTAINTY", "model_uncertainty", "run_uncertainty", "score_series",
           "start_uncertainty"]

UNCERTAINTY = "uncertainty"


def start_uncertainty(services: Services, actor: Actor, model: str,
                      series: str | list[str]) -> Job:
    """Create the job that scores ``series`` (ids, a glob or ``"all"``) with ``model`` (``id``
    or ``id@version``). PluginError or PermissionDenied at once when it cannot run at all."""
    params = model_run_params(services, actor, model, series)
    check_chosen(services, actor, series, params["model"], "score")
    return job_store(services).create(actor.user, UNCERTAINTY, params)


def score_series(volume, manifest, ref, worker, *, one_roi_per_voxel: bool = True,
                 progress=None, cancelled=None) -> dict[str, Any]:
    """The uncertainty of ``manifest``'s model on one volume: ``{"score", "voxels"}`` (voxels:
    the size of the region scored; 0 for a classifier)."""
    if isinstance(manifest.output, ClassificationOutput):
        prediction = predict_series(volume, manifest, ref, worker, progress=progress,
                                    cancelled=cancelled)
        return {"score": round(class_entropy(prediction.classification.probabilities), 6),
                "voxels": 0}
    out = manifest.output
    acc = EntropyAccumulator(out.activation, [c.channel for c in out.channels])
    predict_series(volume, manifest, ref, worker, one_roi_per_voxel=one_roi_per_voxel,
                   progress=progress, cancelled=cancelled, on_chunk=acc.add)
    return {"score": round(acc.score, 6), "voxels": acc.voxels}


def run_uncertainty(services: Services, job: Job, report_progress, cancelled
                    ) -> dict[str, Any]:
    """The job work (see the module docstring)."""
    params, actor = job.params, actor_of(job)
    manifest, ref, worker, _ = warm_model(services, params, report_progress)
    chosen = select_series(services.project, params["series"])[0]
    one_per_voxel = services.project.config.overlap == "one_roi_per_voxel"
    result = {"model": manifest.ref, "series": len(chosen), "scored": [], "skipped": [],
              "cancelled": False}
    for number, series in enumerate(chosen):
        decision = rights.decision(services, actor, series, "annotate")
        if not decision.allowed:
            result["skipped"].append([series, decision.reason])
            continue

        def progress(done, total, number=number, series=series):
            report_progress((number + done / max(total, 1)) / len(chosen),
                            f"{series}: slice {done} / {total}", (number, len(chosen)))

        try:
            scored = score_series(services.volume(series), manifest, ref, worker,
                                  one_roi_per_voxel=one_per_voxel, progress=progress,
                                  cancelled=cancelled)
        except Cancelled:
            result["cancelled"] = True
            break
        except (PluginError, ModelRunError):
            raise  # the model itself failed: the job fails, naming the bundle
        except RilDashError as exc:  # this series' image: skip it, say why
            result["skipped"].append([series, str(exc)])
            continue
        write_scores(services.project.dir, manifest.ref, manifest.sha256, METHOD,
                     {series: {**scored, "job": job.id}})
        result["scored"].append([series, scored["score"]])
    for key in ("scored", "skipped"):
        result[f"{key}_total"] = len(result[key])
        result[key] = result[key][:MAX_LISTED]
    return result


def model_uncertainty(services: Services, manifests) -> dict[str, dict[str, float]]:
    """``{model ref: {series: score}}`` for the given manifests (the active versions the grid
    shows), each read for the model file it has now; models without scores are left out."""
    out = {}
    for manifest in manifests:
        scores = read_scores(services.project.dir, manifest.ref, manifest.sha256)
        if scores:
            out[manifest.ref] = scores
    return out
