"""The job tier's options and refusals that need no process: broker URLs, worker options, the
project id, the queue of each kind of job, and the embedded tier running a job in place."""

from __future__ import annotations

import os

import pytest

from ril_dash.application import jobs as app_jobs
from ril_dash.application.celery_jobs import IO, MODELS, project_queues, queue_of
from ril_dash.application.job_tier import EMBEDDED
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.cli import main
from ril_dash.errors import RilDashError
from ril_dash.jobs import DONE
from ril_dash.jobs.identity import project_identity
from ril_dash.project.project import Project
from ril_dash.worker_cli import broker_of
from ril_dash.wsgi import settings_from_env


def test_broker_urls():
    assert broker_of(None, {}) is None
    assert broker_of(None, {"RIL_DASH_BROKER": " redis://lab:6379/0 "}) == "redis://lab:6379/0"
    assert broker_of("redis://a:6379/1", {"RIL_DASH_BROKER": "redis://b:6379/0"}) == \
        "redis://a:6379/1"
    for bad in ("amqp://lab//", "lab:6379", "redis://"):
        with pytest.raises(RilDashError) as refused:
            broker_of(bad, {})
        assert str(refused.value) == (f"--broker must be a Redis URL such as "
                                      f"redis://HOST:6379/0, not {bad!r}")


def test_the_wsgi_app_takes_its_broker_from_the_environment(tmp_path):
    env = {"RIL_DASH_PROJECT": str(tmp_path), "RIL_DASH_BROKER": "redis://lab:6379/0"}
    assert settings_from_env(env).broker == "redis://lab:6379/0"
    assert settings_from_env({"RIL_DASH_PROJECT": str(tmp_path)}).broker is None


def test_worker_options_are_refused_with_what_to_give(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("RIL_DASH_BROKER", raising=False)
    assert main(["worker", str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("ril-dash: error: give the job broker the servers use: "
                                       "--broker redis://HOST:6379/0 (or set $RIL_DASH_BROKER)\n")
    assert main(["worker", str(tmp_path), "--broker", "redis://x:1/0", "--queues", "gpu"]) == 2
    assert capsys.readouterr().err == ("ril-dash: error: --queues takes models, io or "
                                       "models,io, not 'gpu'\n")
    assert main(["worker", str(tmp_path), "--broker", "redis://x:1/0",
                 "--concurrency", "0"]) == 2
    assert "--concurrency must be between 1 and 64, not 0" in capsys.readouterr().err
    assert main(["serve", str(tmp_path), "--broker", "http://x"]) == 2
    assert "--broker must be a Redis URL" in capsys.readouterr().err


def test_kinds_go_to_their_queues_of_the_project(tmp_path):
    assert [queue_of(k) for k in ("model", "explain", "contour", "export", "import")] == \
        [MODELS, MODELS, MODELS, IO, IO]
    first = project_identity(tmp_path)
    assert project_identity(tmp_path) == first  # kept in the project's job folder
    assert (tmp_path / ".jobs" / "project-id").read_text() == first + "\n"
    assert project_queues(first) == [f"ril-dash.{first[:12]}.models",
                                     f"ril-dash.{first[:12]}.io"]
    (tmp_path / ".jobs" / "project-id").write_text("not an id")
    with pytest.raises(RilDashError, match="does not hold a project id; remove it"):
        project_identity(tmp_path)


def test_the_embedded_tier_runs_the_job_here(tmp_path):
    from ril_dash.project.project import init_project

    (tmp_path / "images").mkdir()
    project = init_project(tmp_path / "p", tmp_path / "images")
    services = Services(Project.open(project.dir))
    job = app_jobs.start_export(services, Actor("ana", True, "t"), tmp_path / "out", "all", [])
    seen = []
    ended = EMBEDDED.run(services, job, on_progress=seen.append)
    assert (ended.state, ended.result["series"]) == (DONE, 0)
    assert ended.pid == os.getpid()
