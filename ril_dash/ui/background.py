"""Who runs the Dash background callbacks (the pages' long actions: export, import, model runs
and maps), and through which tier their jobs run.

- Embedded default: :class:`dash.DiskcacheManager`: each callback runs in a process forked from
  the server, its progress and result pass through a disk cache in the per-user data folder,
  and the job runs in that process (:class:`~ril_dash.application.job_tier.Embedded`).
- With a broker (``--broker redis://…``): Dash's :class:`dash.CeleryManager`: the callbacks
  are Celery tasks on the project's ``web`` queue, with their progress and results in Redis;
  the server takes that queue itself with a pool of threads (the callbacks are light: they
  create the job, send it to the job workers and follow it in the job store), and the job runs
  on a ``ril-dash worker`` (:class:`~ril_dash.application.job_tier.Brokered`).

While the broker cannot be reached a page's action still answers: the callback runs at once in
the request (its job then fails saying that the broker cannot be reached, see
:class:`BrokerCeleryManager`), and a page waiting for a callback's progress keeps waiting
instead of failing. Everything else the app serves never touches the broker.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import socket
import threading
import uuid
from contextvars import copy_context
from pathlib import Path

import dash

from ril_dash.core.atomic_io import private_dir
from ril_dash.errors import RilDashError
from ril_dash.project.project import Project
from ril_dash.settings import data_home

__all__ = ["BrokerCeleryManager", "background_manager", "cache_folder", "install_job_broker",
           "start_callback_worker"]

log = logging.getLogger(__name__)
OFFLINE = "offline-"


def cache_folder(project: Project) -> Path:
    """The private per-project folder of the background callbacks' local cache (it holds
    Dash's signing secret and callback results)."""
    key = hashlib.sha1(str(project.dir.resolve()).encode()).hexdigest()[:12]
    return private_dir(data_home() / "cache" / f"background-{key}")


def background_manager(project: Project, broker: str | None = None):
    """The background callback manager of a server of ``project`` (see the module doc)."""
    import diskcache

    cache = diskcache.Cache(str(cache_folder(project)))
    if not broker:
        return dash.DiskcacheManager(cache, expire=3600)
    from ril_dash.application.celery_jobs import make_celery, project_queues
    from ril_dash.jobs.identity import project_identity

    celery_app = make_celery(broker, name="ril_dash_web")
    web_queue = project_queues(project_identity(project.dir), ("web",))[0]
    celery_app.conf.task_routes = {"background_callback_*": {"queue": web_queue}}
    celery_app.conf.task_acks_late = False  # a callback is not run twice
    celery_app.ril_web_queue = web_queue
    return BrokerCeleryManager(celery_app, cache, expire=3600)


def _in_app_context(manager: "BrokerCeleryManager", server) -> None:
    """Run the callback tasks of ``manager`` inside the Flask app context of ``server`` (the
    callbacks ask it for the project's services, as they do in a request). By task name: Dash
    binds its tasks to Celery's default app, not to the manager's."""
    from celery import signals

    contexts = threading.local()

    def push(sender=None, **_kw):
        if getattr(sender, "name", None) in manager.plain:
            contexts.current = server.app_context()
            contexts.current.push()

    def pop(sender=None, **_kw):
        if getattr(contexts, "current", None) is not None:
            contexts.current.pop()
            contexts.current = None

    signals.task_prerun.connect(push, weak=False)
    signals.task_postrun.connect(pop, weak=False)


class BrokerCeleryManager(dash.CeleryManager):
    """Dash's CeleryManager that keeps the pages answering while the broker is down, and keeps
    its signing secret in the local cache (shared by the server's processes) instead of Redis."""

    def __init__(self, celery_app, local_cache, expire=None) -> None:
        self.local = local_cache
        self.plain: dict[str, tuple] = {}
        super().__init__(celery_app, expire=expire)

    def make_job_fn(self, fn, progress, key=None):
        task = super().make_job_fn(fn, progress, key)
        self.plain[task.name] = (fn, progress)
        return task

    def _errors(self):
        from ril_dash.application.celery_jobs import broker_errors

        return broker_errors()

    def get_or_create_signing_secret(self, generate):
        self.local.add(self.SIGNING_SECRET_KEY, generate())  # only the first one is kept
        return self.local.get(self.SIGNING_SECRET_KEY)

    def call_job_fn(self, key, job_fn, args, context):
        try:
            return super().call_job_fn(key, job_fn, args, context)
        except self._errors() as exc:
            log.warning("the job broker cannot be reached (%s): running %s in the request",
                        exc, job_fn.name)
        fn, progress = self.plain[job_fn.name]
        output = copy_context().run(_run_now, fn, progress, args, context)
        self.local.set(key, output, expire=600)
        return OFFLINE + uuid.uuid4().hex

    def get_progress(self, key):
        try:
            return super().get_progress(key)
        except self._errors():
            return None

    def result_ready(self, key):
        if key in self.local:
            return True
        try:
            return super().result_ready(key)
        except self._errors():
            return False

    def get_result(self, key, job):
        if str(job or "").startswith(OFFLINE) or key in self.local:
            output = self.local.pop(key, default=None)
            return self.UNDEFINED if output is None else json.loads(output)
        try:
            return super().get_result(key, job)
        except self._errors():
            return self.UNDEFINED

    def job_running(self, job):
        if str(job or "").startswith(OFFLINE):
            return False
        try:
            return super().job_running(job)
        except self._errors():
            return True  # keep waiting: the broker may be back soon

    def terminate_job(self, job):
        if job is None or str(job).startswith(OFFLINE):
            return
        try:
            super().terminate_job(job)
        except self._errors():
            pass

    def get_updated_props(self, key):
        try:
            return super().get_updated_props(key)
        except self._errors():
            return {}


def _run_now(fn, progress, args, context) -> str:
    """Run a background callback here, as the Celery task would (no progress shown)."""
    from _plotly_utils.utils import PlotlyJSONEncoder
    from dash._callback_context import context_value
    from dash._utils import AttributeDict

    ctx = AttributeDict(**context)
    ctx.ignore_register_page = False
    ctx.updated_props = {}
    context_value.set(ctx)
    extra = [lambda _value: None] if progress else []
    if isinstance(args, dict):
        output = fn(*extra, **args)
    elif isinstance(args, (list, tuple)):
        output = fn(*extra, *args)
    else:
        output = fn(*extra, args)
    return json.dumps(output, cls=PlotlyJSONEncoder)


def start_callback_worker(manager: BrokerCeleryManager, server, threads: int) -> None:
    """Take the project's ``web`` queue in this process with ``threads`` threads (a daemon
    thread; it reconnects by itself when the broker comes back)."""
    celery_app = manager.handle
    _in_app_context(manager, server)
    worker = celery_app.WorkController(
        hostname=f"ril-dash-web-{secrets.token_hex(3)}@{socket.gethostname()}",
        pool="threads", concurrency=max(2, threads), queues=[celery_app.ril_web_queue],
        without_heartbeat=True, without_mingle=True, without_gossip=True,
        loglevel="WARNING")
    threading.Thread(target=worker.start, daemon=True, name="ril-dash-callbacks").start()


def _callback_worker_starter(manager: BrokerCeleryManager, server, threads: int):
    """A ``before_request`` hook that starts the callback worker once in each process that
    serves (threads do not survive a fork: a pre-forking server builds the app, then forks)."""
    started: set[int] = set()
    mutex = threading.Lock()

    def ensure_started() -> None:
        if os.getpid() in started:
            return
        with mutex:
            if os.getpid() not in started:
                start_callback_worker(manager, server, threads)
                started.add(os.getpid())

    return ensure_started


def install_job_broker(app: dash.Dash, manager: BrokerCeleryManager, project: Project,
                       settings) -> None:
    """Lab mode: the app's jobs go to the broker's workers, its callbacks are taken from the
    ``web`` queue by this process, and the broker learns that this project is served (the
    workers check it at their start; a broker that is down is only logged here)."""
    from ril_dash.application.celery_jobs import register_project
    from ril_dash.application.job_tier import Brokered
    from ril_dash.jobs.identity import project_identity
    from ril_dash.ui.services import TIER_KEY

    app.server.extensions[TIER_KEY] = Brokered(settings.broker)
    app.server.before_request(_callback_worker_starter(manager, app.server, settings.threads))
    try:
        register_project(settings.broker, project_identity(project.dir), project.config.name,
                         str(project.dir))
    except RilDashError as exc:
        log.error("%s", exc)
