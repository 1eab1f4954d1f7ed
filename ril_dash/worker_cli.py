"""The job tier on the command line: ``serve --broker URL`` and ``ril-dash worker``.

``ril-dash serve PROJECT --broker redis://HOST:6379/0`` (or ``RIL_DASH_BROKER``) sends the
server's jobs to Celery workers through Redis; ``ril-dash worker PROJECT --broker URL
[--concurrency N] [--queues models,io]`` starts one, on any machine that mounts the project
folder (see :mod:`ril_dash.application.celery_worker`: what it checks at start, how it runs a
job). ``models`` carries model runs, model maps and batch contouring; ``io`` exports and
imports.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ril_dash.errors import RilDashError

__all__ = ["BROKER_ENV", "add_broker_option", "add_worker_parser", "broker_of", "worker_command"]

BROKER_ENV = "RIL_DASH_BROKER"
QUEUE_NAMES = ("models", "io")
MAX_CONCURRENCY = 64


def add_broker_option(parser: argparse.ArgumentParser, default, help_text: str | None = None):
    """Add ``--broker URL`` to a parser (``default``: its default, or SUPPRESS)."""
    parser.add_argument("--broker", metavar="URL", default=default, help=help_text or (
        f"run jobs on Celery workers through this Redis broker, e.g. redis://HOST:6379/0 "
        f"(default: ${BROKER_ENV}, else jobs run in the server; start workers with "
        f"'ril-dash worker')"))


def broker_of(value: str | None, environ=None) -> str | None:
    """The broker URL given (or ``$RIL_DASH_BROKER``), checked; None for the embedded tier."""
    env = os.environ if environ is None else environ
    url = (value or env.get(BROKER_ENV, "")).strip()
    if not url:
        return None
    from ril_dash.application.celery_jobs import check_broker_url

    return check_broker_url(url)


def add_worker_parser(sub) -> None:
    """Add ``worker`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p_worker = sub.add_parser(
        "worker", help="run the jobs of a project's servers (with --broker) on this machine",
        description="Start a Celery worker that runs the jobs a 'ril-dash serve --broker' "
                    "server sends: model runs and maps, batch contouring (queue models), "
                    "exports and imports (queue io). Run it on any machine that mounts the "
                    "project folder with working file locks.")
    p_worker.add_argument("project_dir", type=Path, metavar="PROJECT_DIR",
                          help="the project folder as this machine mounts it")
    add_broker_option(p_worker, None, f"the Redis broker the servers use, e.g. "
                                      f"redis://HOST:6379/0 (default: ${BROKER_ENV})")
    p_worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                          help="jobs run at the same time (processes; default 1)")
    p_worker.add_argument("--queues", default=",".join(QUEUE_NAMES), metavar="Q[,Q]",
                          help="the queues to take: models, io or both (default models,io)")
    p_worker.add_argument("--loglevel", default="INFO", metavar="LEVEL",
                          help="log level (default INFO)")


def _queues(text: str) -> list[str]:
    names = [q.strip() for q in text.split(",") if q.strip()]
    unknown = [q for q in names if q not in QUEUE_NAMES]
    if unknown or not names:
        raise RilDashError(f"--queues takes models, io or models,io, not {text!r}")
    return list(dict.fromkeys(names))


def worker_command(args: argparse.Namespace) -> None:
    """Run ``ril-dash worker`` until it is stopped (errors are RilDashError)."""
    broker = broker_of(args.broker)
    if broker is None:
        raise RilDashError(f"give the job broker the servers use: --broker "
                           f"redis://HOST:6379/0 (or set ${BROKER_ENV})")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise RilDashError(f"--concurrency must be between 1 and {MAX_CONCURRENCY}, "
                           f"not {args.concurrency}")
    queues = _queues(args.queues)
    logging.basicConfig(level=args.loglevel.upper(),
                        format="[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
    from ril_dash.application.celery_jobs import safe_url
    from ril_dash.application.celery_worker import prepare, start_worker

    setup = prepare(args.project_dir, broker, queues)
    print(f"ril-dash worker: project '{setup.project_name}' in {setup.project_dir}, broker "
          f"{safe_url(broker)}, queues {', '.join(queues)}, {args.concurrency} at a time "
          f"(Ctrl+C to stop)", flush=True)
    start_worker(setup, args.concurrency, loglevel=args.loglevel.upper())
