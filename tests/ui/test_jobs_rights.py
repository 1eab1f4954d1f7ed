"""Who sees and cancels which job, over HTTP with logins on: users see their own jobs, admins
everybody's (with the owner); only the owner or an admin may cancel, and a forged cancel of
someone else's job is answered 403 and changes nothing."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from support import DashUser, RunningServer, layout_texts

from ril_dash.jobs import CANCELLED, DONE, JobStore

pytestmark = pytest.mark.slow  # starts a real server process for the module

SERIES = ["P1/a.nii.gz", "P2/b.nii.gz"]
SHAPE = (12, 10, 4)
AFFINE = np.diag([-1.0, 1.0, 2.0, 1.0])
USERS = {"ana": False, "sam": False, "root": True}
JOBS_CANCEL_OUTPUT = "..jobs-message.children...jobs-refresh.data.."


def password(user: str) -> str:
    return f"{user}-password-1"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from ril_dash.project.import_masks import import_masks
    from ril_dash.project.project import Project, init_project
    from ril_dash.project.users import UsersFile

    root = tmp_path_factory.mktemp("jobs-rights")
    labels = np.zeros(SHAPE, np.uint8)
    labels[2:5, 2:5, 1] = 1
    for folder, data in (("images", np.ones(SHAPE, np.int16)), ("masks", labels)):
        for sid in SERIES:
            (root / folder / sid).parent.mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, AFFINE), root / folder / sid)
    init_project(root / "project", root / "images")
    (root / "project" / "project.yaml").write_text(
        f"name: rights\nimages: {root / 'images'}\nrois:\n"
        "  - {name: Liver, color: \"#ff0000\", value: 1}\n")
    assert len(import_masks(Project.open(root / "project"), root / "masks").imported) == 2
    users = UsersFile.for_project(root / "project")
    for name, admin in USERS.items():
        users.add(name, password(name), admin=admin)
    return root / "project"


@pytest.fixture(scope="module")
def server(project):
    srv = RunningServer(["serve", str(project), "--login"])
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def users(server):
    return {name: DashUser(server.url, name, password(name)) for name in USERS}


def cancel_on_jobs_page(user: DashUser, job_id: str):
    return user.callback(JOBS_CANCEL_OUTPUT, [[({"type": "jobs-cancel", "job": job_id},
                                                 "n_clicks", 1)]], [("jobs-refresh", "data", 0)])


def message(reply) -> list[str]:
    assert reply.status_code == 200, reply.text
    return layout_texts(reply.json()["response"]["jobs-message"]["children"])


def test_users_see_their_jobs_and_admins_everybodys(project, users):
    ana, sam, root = users["ana"], users["sam"], users["root"]
    reply = ana.background("export-result.children", [("export-start", "n_clicks", 1)], [
        ("export-out", "value", "ana-out"), ("export-mode", "value", "all"),
        ("export-glob", "value", None), ("export-options", "value", ["per_roi"])])
    assert reply.status_code == 200, reply.text
    done = (f"Exported 2 series (2 mask files) to "
            f"{(project / 'exports' / 'ana-out').resolve()}.")
    assert layout_texts(reply.json()["response"]["export-result"]["children"]) == [done]
    [job] = JobStore.for_project(project).list()
    assert (job.owner, job.kind, job.state) == ("ana", "export", DONE)

    texts = layout_texts(ana.page("/jobs"))
    assert "Owner" not in texts and "ana" not in texts
    heads = ["Kind", "State", "Progress", "Started", "Duration", "Result", ""]
    start = texts.index("Kind")
    assert texts[start:start + 7] == heads
    assert texts[start + 7:start + 10] == ["Export", "done", "2 / 2  P2/b.nii.gz"]
    assert done in texts
    assert ("No jobs yet: exports, imports and model runs you start are listed here."
            in layout_texts(sam.page("/jobs")))
    texts = layout_texts(root.page("/jobs"))
    start = texts.index("Kind")
    assert texts[start:start + 8] == ["Kind", "Owner", *heads[1:]]
    assert texts[start + 8:start + 11] == ["Export", "ana", "done"]


def test_only_the_owner_or_an_admin_may_cancel(project, users):
    ana, sam, root = users["ana"], users["sam"], users["root"]
    store = JobStore.for_project(project)
    running, _ = store.claim(store.create("ana", "export", {"out_dir": "x"}).id)  # alive: us
    queued = store.create("sam", "import", {"folder": "y"})
    try:
        # sam forges cancels of ana's job: on the Jobs page and on the export page
        reply = cancel_on_jobs_page(sam, running.id)
        assert reply.status_code == 403
        assert reply.json()["error"] == ("sam may not cancel a job of ana: only its owner or "
                                         "an administrator may.")
        reply = sam.callback("export-status.title", [("export-cancel", "n_clicks", 1)],
                             [("export-job", "data", running.id)])
        assert reply.status_code == 403
        assert not store.get(running.id).cancel_requested
        assert running.id not in str(sam.page("/jobs"))

        assert message(cancel_on_jobs_page(ana, running.id)) == [
            "Cancel requested: the job stops after the series it is working on."]
        assert store.get(running.id).cancel_requested
        assert message(cancel_on_jobs_page(root, queued.id)) == ["Cancelled before it started."]
        assert store.get(queued.id).state == CANCELLED
        for bad in ("../../etc/passwd", "0" * 32):
            assert message(cancel_on_jobs_page(root, bad))[0].startswith("There is no job")
        reply = ana.callback("export-status.title", [("export-cancel", "n_clicks", 1)],
                             [("export-job", "data", "0" * 32)])
        assert reply.json()["response"]["export-status"]["title"].startswith("There is no job")
    finally:
        store.finish(running.id, CANCELLED)
