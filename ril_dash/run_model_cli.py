"""``ril-dash run-model PROJECT --model ID[@V] --series GLOB``: batch drafting without a browser.

The run is a job like one started from the viewer or the project page (it appears on the Jobs
page): :func:`~ril_dash.application.model_runs.start_model_run` checks the bundle and the rights
at once, then the job runs here, in this process, printing its progress; the model itself runs
in the model worker. Drafts are written and audited under ``--user`` (default: the
operating-system user).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ril_dash.errors import ModelRunError

__all__ = ["add_run_model_parser", "run_here", "run_model_command"]


def add_run_model_parser(sub, add_user_option) -> None:
    """Add ``run-model`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p_run = sub.add_parser("run-model", help="draft annotations with a model plugin (batch)",
                           description="Run a model plugin on series without a browser: each "
                                       "series gets one new annotation version with provenance "
                                       "MODEL@VERSION (a segmentation) or its text field filled "
                                       "(a classification). Series you may not annotate, or "
                                       "that someone is editing, are skipped and listed.")
    p_run.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p_run.add_argument("--model", required=True, metavar="ID[@VERSION]",
                       help="the bundle (default version: the project's active one)")
    p_run.add_argument("--series", default="all", metavar="GLOB",
                       help="series whose id matches GLOB, e.g. 'PHANTOM-00*/*' (default: all)")
    p_run.add_argument("--mode", default="empty_slices",
                       choices=("empty_slices", "replace", "union"),
                       help="where the draft goes: only slices where the ROI is empty (default), "
                            "replace the ROI on the covered slices, or add to it")
    p_run.add_argument("--slices", nargs=2, type=int, metavar=("FIRST", "LAST"),
                       help="only these slices of the model's plane (default: the whole series)")
    p_run.add_argument("--plugins", type=Path, action="append", default=[], metavar="DIR",
                       help="another folder of model bundles (<id>/<version>/plugin.yaml); "
                            "repeatable")
    add_user_option(p_run, "whose drafts these are, as recorded in the versions and audit log")


def run_here(services, job, what: str, *, progress_interval: float) -> dict:
    """Run ``job`` in this process, printing its progress, then the series it skipped and its
    notes; its result, or ModelRunError with its error when it did not end done."""
    from ril_dash.application.jobs import job_store, work_for
    from ril_dash.jobs import DONE, run_job

    ended = run_job(job_store(services), job.id, work_for(job.kind, services),
                    on_progress=lambda p: print(f"[{p[0]:4.0%}] {p[1]}", flush=True),
                    progress_interval=progress_interval)
    result = ended.result or {}
    for series_id, reason in result.get("skipped", []):
        print(f"skipped {series_id}: {reason}", flush=True)
    for note in result.get("notes", []):
        print(f"note: {note}", flush=True)
    if ended.state != DONE:
        raise ModelRunError(ended.error or f"{what} ended {ended.state}")
    return result


def run_model_command(args: argparse.Namespace) -> None:
    """``ril-dash run-model``: a model run job, run here with its progress printed."""
    from ril_dash.application.jobs import start_model_run
    from ril_dash.cli import cli_actor, cli_services

    services = cli_services(args.project_dir, args.plugins)
    job = start_model_run(services, cli_actor(args), args.model, args.series,
                          slices=None if args.slices is None else tuple(args.slices),
                          mode=args.mode)
    print(f"job {job.id}: {job.params['model']} on {args.series}", flush=True)
    result = run_here(services, job, "the model run", progress_interval=1.0)
    print(f"{result.get('drafted_total', 0)} series drafted, {result.get('unchanged_total', 0)} "
          f"unchanged, {result.get('skipped_total', 0)} skipped "
          f"(model loaded in {result.get('load_seconds', 0)} s).", flush=True)
