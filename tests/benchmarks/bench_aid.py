"""Annotation by iterative deep learning (AID), measured with the robot annotator.

A project of phantom patients (:mod:`ril_dash.demo.phantom`, seeds other than the demo's and
the example models' training and validation seeds) is annotated by the robot
(:mod:`robot`) on one ROI (default: Right kidney), against the phantom's exact label map:

* **round 0, from scratch**: the robot annotates ``k`` series starting from an empty ROI;
* **round r ≥ 1, AID**: :func:`train_and_draft` trains a development model in the tool on every
  series done so far and drafts the next ``k``; the robot corrects the drafts. Per series: the
  draft's Dice before correction and the strokes spent.

The figure of merit is strokes per series (median per round), the from-scratch round being the
same-run baseline of the AID rounds; the correction effort is also read back from the version
history (:func:`ril_dash.application.effort.correction_effort`, when present). Results go to
``tests/benchmarks/results/aid.json``, and their plot (:mod:`aid_plot`) to ``aid.png`` beside it.

Run: ``python tests/benchmarks/bench_aid.py [--k 4] [--rounds 3] [--roi "Right kidney"]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))

from aid_plot import plot_rounds  # noqa: E402
from common import RESULTS, median  # noqa: E402
from robot import Settings, correct  # noqa: E402

from ril_dash.application.policy import Actor  # noqa: E402
from ril_dash.application.services import Services  # noqa: E402
from ril_dash.core.planes import display_stack  # noqa: E402
from ril_dash.demo.phantom import PROJECT_ROI_LABELS, make_phantom  # noqa: E402
from ril_dash.project.project import Project  # noqa: E402

#: patient seeds of this benchmark: none of the demo's (101, 202, 303), the example models'
#: training (1..N) or validation (901..903) seeds
FIRST_SEED = 5001
PHASE = "portal-venous"
ROIS = ("Liver", "Spleen", "Right kidney", "Left kidney", "Aorta")
YAML = "name: AID benchmark\nimages: images\nsettings: {overlap: one_roi_per_voxel}\nrois:\n" + \
    "".join(f"  - {{name: {name}, color: '#{40 * i:02x}8080', value: {i + 1}}}\n"
            for i, name in enumerate(ROIS))


def make_project(root: Path, n_series: int) -> tuple[Services, dict[str, np.ndarray]]:
    """A project of ``n_series`` phantom patients (one phase each) and their label maps."""
    labels = {}
    for number in range(n_series):
        phantom = make_phantom(FIRST_SEED + number, PHASE)
        series = f"AID-{number + 1:03d}/{PHASE}.nii.gz"
        path = root / "images" / series
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(phantom.hu, phantom.affine), path)
        labels[series] = phantom.labels
    (root / "project.yaml").write_text(YAML)
    return Services(Project.open(root), background_checkpoints=False), labels


def truth_of(services: Services, series: str, labels: np.ndarray, roi: str) -> np.ndarray:
    """The ROI's true voxels as axial display slices. ``labels`` is in the file's voxel order
    (the phantom's axes are L, A, S), so it is put in the canonical order the annotations use
    first: without that the truth would be the mirror image of the kidney."""
    canonical = services.volume(series).to_canonical(np.isin(labels, PROJECT_ROI_LABELS[roi]))
    return np.ascontiguousarray(display_stack(canonical, "axial"))


#: the development bundle the AID rounds train (a U-Net first, then fine-tuned each round)
BUNDLE = "aid-dev"
ROBOT = Actor("robot", True, "bench")


def train_and_draft(services: Services, series_done: list[str], series_next: list[str],
                    roi: str, *, epochs: int = 15, time_budget_s: float = 900) -> dict:
    """Train a development model in the tool on ``series_done`` (their current annotations of
    ``roi``: the example U-Net in the first round, then the previous round's version
    fine-tuned), make the new version active, and draft ``series_next`` with it (a model run
    that replaces the ROI). Returns the round's model, its validation figures and seconds.

    This is where the AID rounds plug in: it needs the tool's training job
    (``ril_dash.application.training``)."""
    try:
        from ril_dash.application.training import TRAIN_JOB, start_training
    except ImportError:
        raise NotImplementedError(
            "AID rounds need the tool's training job (ril_dash.application.training: train a "
            "development model on the series done so far, then draft the next ones with it); "
            "it is not on this branch yet, so only the from-scratch round is measured.") from None
    from ril_dash.application import jobs, model_admin
    from ril_dash.application.model_runs import start_model_run
    from ril_dash.jobs import DONE, run_job

    store = jobs.job_store(services)
    known = any(e.manifest is not None and e.manifest.id == BUNDLE
                for e in services.models.entries())
    what = {"parent": BUNDLE} if known else {"architecture": "unet", "bundle_id": BUNDLE,
                                             "rois": [roi]}
    started = time.perf_counter()
    job = start_training(services, ROBOT, series=list(series_done), epochs=epochs,
                         time_budget_s=time_budget_s, **what)
    trained = run_job(store, job.id, jobs.work_for(TRAIN_JOB, services))
    if trained.state != DONE:
        raise RuntimeError(f"training round failed: {trained.state}: {trained.error}")
    train_s = time.perf_counter() - started
    version = trained.result["version"]
    model_admin.activate_model_version(services, ROBOT, BUNDLE, version)
    started = time.perf_counter()
    run = start_model_run(services, ROBOT, f"{BUNDLE}@{version}", list(series_next),
                          mode="replace")
    drafted = run_job(store, run.id, jobs.work_for(run.kind, services))
    if drafted.state != DONE:
        raise RuntimeError(f"drafting failed: {drafted.state}: {drafted.error}")
    return {"model": f"{BUNDLE}@{version}", "train_seconds": round(train_s, 1),
            "draft_seconds": round(time.perf_counter() - started, 1),
            "validation": trained.result.get("validation"),
            "stopped": trained.result.get("stopped"),
            "epochs_run": len(trained.result.get("history") or [])}


def effort_of(services: Services, series: str) -> dict | None:
    """The correction effort after the model's draft, read back from the version history
    (None from scratch: there is no draft)."""
    try:
        from ril_dash.application.effort import correction_effort
    except ImportError:  # a branch without it (the benchmark runs on merged branches too)
        return None
    effort = correction_effort(services, ROBOT, series)
    return None if effort is None else effort.as_dict()


def run_round(services, robot, series: list[str], roi_value: int, truths, settings) -> list:
    rows = []
    for s in series:
        result = correct(services, robot, s, roi_value, truths[s], settings)
        rows.append({**result.__dict__, "effort": effort_of(services, s)})
        print(f"  {s}: {result.strokes} strokes ({result.brush} brush, {result.eraser} eraser, "
              f"{result.cleared} slices cleared), "
              f"Dice {result.start_dice:.3f} → {result.end_dice:.3f}, min slice Dice "
              f"{result.end_min_slice:.3f}, {'done' if result.done else 'BUDGET SPENT'}, "
              f"{result.seconds:.1f} s", flush=True)
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=4, help="series per round")
    parser.add_argument("--rounds", type=int, default=3, help="AID rounds after round 0")
    parser.add_argument("--roi", default="Right kidney", choices=ROIS)
    parser.add_argument("--epochs", type=int, default=15, help="epochs per training round")
    parser.add_argument("--seed", type=int, default=0, help="the robot's noise seed")
    args = parser.parse_args(argv)
    settings = Settings(seed=args.seed)
    roi_value = ROIS.index(args.roi) + 1
    robot = ROBOT
    out = {"roi": args.roi, "k": args.k, "settings": settings.__dict__, "rounds": []}
    with tempfile.TemporaryDirectory(prefix="ril-aid-") as tmp:
        started = time.perf_counter()
        services, labels = make_project(Path(tmp), args.k * (args.rounds + 1))
        print(f"{len(labels)} phantom series made in {time.perf_counter() - started:.0f} s")
        truths = {s: truth_of(services, s, v, args.roi) for s, v in labels.items()}
        order = sorted(labels)
        print(f"round 0 (from scratch), {args.roi}:")
        rows = run_round(services, robot, order[:args.k], roi_value, truths, settings)
        out["rounds"].append({"round": 0, "series": rows})
        for number in range(1, args.rounds + 1):
            done, upcoming = order[:number * args.k], order[number * args.k:(number + 1) * args.k]
            try:
                trained = train_and_draft(services, done, upcoming, args.roi, epochs=args.epochs)
            except NotImplementedError as exc:
                print(f"round {number}: not measured: {exc}")
                out["aid_pending"] = str(exc)
                break
            print(f"round {number} (AID, {trained['model']} trained on {len(done)} series in "
                  f"{trained['train_seconds']:.0f} s, {trained['epochs_run']} epochs, "
                  f"{trained['validation']}):", flush=True)
            rows = run_round(services, robot, upcoming, roi_value, truths, settings)
            out["rounds"].append({"round": number, "series": rows, **trained})
    for r in out["rounds"]:
        strokes = [row["strokes"] for row in r["series"]]
        r["median_strokes"] = median(strokes)
        print(f"round {r['round']}: median {r['median_strokes']} strokes per series "
              f"({strokes})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "aid.json").write_text(json.dumps(out, indent=1))
    plot_rounds(out, RESULTS / "aid.png")
    return out


if __name__ == "__main__":
    main()
