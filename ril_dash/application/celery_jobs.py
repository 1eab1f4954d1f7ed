"""The job broker (Celery over Redis): the Celery app, the project's queues, sending a job,
the broker's register of projects, and what admins see of the workers.

A job sent to the broker is one message ``ril_dash.run_job(job_id, project_dir, project_id)``
on a queue of its project: ``ril-dash.<id>.models`` (model runs, model maps, batch contouring,
uncertainty scores, training) or ``ril-dash.<id>.io`` (export, import). The job's parameters stay in the project's job store;
a worker (:mod:`ril_dash.application.celery_worker`) reads them from there. The message is
acknowledged only after the job ran (``acks_late``), and put back when the worker process died
(``reject_on_worker_lost``): a job never claimed runs later, one already claimed is left as it
is (its worker's sweep marks it interrupted).

Celery is an optional dependency (``pip install 'ril_dash[lab]'``): it is imported only here,
when a broker is given.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ril_dash.application.contouring import CONTOUR_JOB
from ril_dash.application.explanations import EXPLAIN
from ril_dash.application.model_runs import MODEL_RUN
from ril_dash.application.training import TRAIN_JOB
from ril_dash.application.uncertainty import UNCERTAINTY
from ril_dash.errors import RilDashError

__all__ = ["BrokerUnreachable", "MODELS", "IO", "QUEUES", "RUN_TASK",
           "broker_errors", "check_broker_url", "make_celery", "project_queues", "queue_of",
           "registered_projects", "register_project", "safe_url", "send_job", "workers_view"]

log = logging.getLogger(__name__)

MODELS, IO = "models", "io"
#: the kinds of job each queue carries
QUEUES = {MODELS: (MODEL_RUN, EXPLAIN, CONTOUR_JOB, UNCERTAINTY, TRAIN_JOB),
          IO: ("export", "import")}
RUN_TASK = "ril_dash.run_job"
#: the broker's key of a project served by a ril-dash server (its name, folder and host)
PROJECT_KEY = "ril-dash:project:"
#: seconds to wait for the broker before saying it cannot be reached
CONNECT_TIMEOUT = 3.0
#: a message taken by a worker that died unacknowledged is delivered again after this long (a
#: job already claimed is then left alone: :func:`~ril_dash.jobs.run_job` runs it once)
VISIBILITY_S = 900


class BrokerUnreachable(RilDashError):
    """The job broker (Redis) does not answer."""


def safe_url(url: str) -> str:
    """``url`` without its password (for messages and logs).

    >>> safe_url("redis://:secret@lab-redis:6379/0")
    'redis://lab-redis:6379/0'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def check_broker_url(url: str) -> str:
    """``url`` if it names a Redis broker; RilDashError saying what to give otherwise.

    >>> check_broker_url("redis://localhost:6379/0")
    'redis://localhost:6379/0'
    """
    parts = urlsplit(url or "")
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise RilDashError(f"--broker must be a Redis URL such as redis://HOST:6379/0, "
                           f"not {url!r}")
    if not all(importlib.util.find_spec(name) for name in ("celery", "redis")):
        raise RilDashError("--broker needs Celery and Redis for Python: pip install "
                           "'ril_dash[lab]' (or pip install 'celery[redis]')")
    return url


def broker_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean the broker cannot be reached."""
    import kombu.exceptions
    import redis.exceptions

    return (kombu.exceptions.OperationalError, redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError, ConnectionError, TimeoutError, socket.timeout)



def unreachable(url: str, exc: BaseException) -> BrokerUnreachable:
    return BrokerUnreachable(
        f"the job broker at {safe_url(url)} cannot be reached ({type(exc).__name__}: {exc}); "
        f"no job can start until it answers again. Check that Redis runs there "
        f"(systemctl status redis-server) and try again.")


def make_celery(url: str, name: str = "ril_dash", task_cls: Any = None):
    """A Celery app on the broker ``url`` (also its result store: Dash's background callbacks
    keep their progress and results there), with short timeouts so that a broker that is down
    is reported at once instead of hanging a page."""
    from celery import Celery

    kw = {"task_cls": task_cls} if task_cls is not None else {}
    app = Celery(name, broker=url, backend=url, set_as_current=False, **kw)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_publish_retry=False, broker_connection_timeout=CONNECT_TIMEOUT,
        broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        broker_transport_options={"socket_connect_timeout": CONNECT_TIMEOUT,
                                  "socket_timeout": 30, "visibility_timeout": VISIBILITY_S,
                                  "max_retries": 1},
        redis_socket_connect_timeout=CONNECT_TIMEOUT, redis_socket_timeout=30,
        redis_retry_on_timeout=False, result_expires=3600,
        result_backend_transport_options={"retry_policy": {"timeout": CONNECT_TIMEOUT}},
        worker_hijack_root_logger=False, worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def project_queues(project_id: str, names=(MODELS, IO)) -> list[str]:
    """The broker queues of the project ``project_id`` for the queue ``names``.

    >>> project_queues("0123456789abcdef" * 2)
    ['ril-dash.0123456789ab.models', 'ril-dash.0123456789ab.io']
    """
    return [f"ril-dash.{project_id[:12]}.{name}" for name in names]


def queue_of(kind: str) -> str:
    """The queue (``models`` or ``io``) that carries jobs of ``kind``."""
    for name, kinds in QUEUES.items():
        if kind in kinds:
            return name
    return IO


def send_job(app, url: str, project_dir: str, project_id: str, job_id: str, kind: str) -> None:
    """Put the job on its queue (BrokerUnreachable when the broker does not answer)."""
    queue = project_queues(project_id, (queue_of(kind),))[0]
    try:
        app.send_task(RUN_TASK, args=[job_id, str(project_dir), project_id], queue=queue,
                      ignore_result=True, retry=False)
    except broker_errors() as exc:
        raise unreachable(url, exc) from exc


def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT,
                                socket_timeout=CONNECT_TIMEOUT)


def register_project(url: str, project_id: str, name: str, folder: str) -> None:
    """Tell the broker that a server serves this project (workers check it at start); done at
    the server's start and with every job sent. BrokerUnreachable when it does not answer."""
    try:
        _redis(url).set(PROJECT_KEY + project_id, json.dumps(
            {"name": name, "folder": folder, "host": socket.gethostname()}))
    except broker_errors() as exc:
        raise unreachable(url, exc) from exc


def registered_projects(url: str) -> dict[str, dict]:
    """The projects whose servers use this broker: ``{project id: {name, folder, host}}``."""
    client = _redis(url)
    found = {}
    for key in client.scan_iter(match=PROJECT_KEY + "*", count=100):
        key = key.decode() if isinstance(key, bytes) else key
        raw = client.get(key)
        try:
            found[key[len(PROJECT_KEY):]] = json.loads(raw) if raw else {}
        except ValueError:
            continue
    return found


def workers_view(app, project_id: str, timeout: float = 1.0) -> list[dict[str, Any]]:
    """The workers connected to the broker now (asked with a ``timeout``): name, the queues
    of this project they take, the job ids they are running. BrokerUnreachable when the broker
    does not answer."""
    mine = set(project_queues(project_id)) | {project_queues(project_id, ("web",))[0]}
    try:
        inspect = app.control.inspect(timeout=timeout)
        queues = inspect.active_queues() or {}
        active = inspect.active() or {}
    except broker_errors() as exc:
        raise unreachable(app.conf.broker_url, exc) from exc
    rows = []
    for name in sorted(queues):
        taken = [q["name"] for q in queues[name] if q.get("name") in mine]
        if not taken:
            continue
        running = [task["args"][0] for task in active.get(name, ())
                   if task.get("name") == RUN_TASK and task.get("args")]
        rows.append({"name": name, "queues": [q.rsplit(".", 1)[-1] for q in taken],
                     "running": running})
    return rows
