"""The Compare panel of the slice viewer and the Model scores page, on a ``ril-dash serve
--login`` server with a workflow: the scores a reader gets, the refusal of a user who may not
read the series (also for the downloads), the CSV and Excel files, and in Chromium: open
Compare on a series with a model draft and a human edit, read the Dice, click a table row and a
plot point to move the viewer to that slice."""

from __future__ import annotations

import base64
import csv
import io

import nibabel as nib
import numpy as np
import pytest
from openpyxl import load_workbook
from support import DashUser, commit_roi, layout_texts, serving

from tests.workflow.example import EXAMPLE

pytestmark = pytest.mark.slow  # starts a server

S1, S2 = "P1/ct.nii.gz", "P2/ct.nii.gz"
SHAPE = (16, 16, 6)
USERS = {"ana": False, "rita": False, "root": True}
MODEL = {"kind": "model", "model": "kidney-seg@1.0.0"}
YAML = """\
name: Compare
images: {images}
rois:
  - {{name: Liver, color: "#c8763c", value: 1}}
  - {{name: Kidney, color: "#00aaff", value: 2}}
  - {{name: Lesion, color: "#ff0000", value: 3, type: point}}
"""
SCORES_OUTPUT = ("..compare-scores.children...compare-plot.figure...compare-plot.style..."
                 "compare-table.children...compare-done.data...compare-csv.disabled..."
                 "compare-excel.disabled..")
SCORES_PAGE = ("..scores-means.rowData...scores-grid.rowData...scores-message.children..."
               "scores-effort.rowData...scores-loop.figure..")
# slices z = 1, 2, 3 (draft) and 2, 3, 4 (human): 192 voxels each, 96 shared
DRAFT = [(x, y, z) for x in range(2, 10) for y in range(2, 10) for z in range(1, 4)]
HUMAN = [(x, y, z) for x in range(4, 12) for y in range(2, 10) for z in range(2, 5)]


def password(user: str) -> str:
    return f"{user}-password-1"


@pytest.fixture(scope="module")
def server(project):
    """``ril-dash serve --login`` of ``project``, for the module."""
    yield from serving(["serve", str(project), "--login"])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project, init_project
    from ril_dash.project.users import UsersFile

    root = tmp_path_factory.mktemp("compare")
    rng = np.random.default_rng(3)
    for sid in (S1, S2):
        (root / "images" / sid).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(rng.integers(0, 200, SHAPE).astype(np.int16), np.eye(4)),
                 root / "images" / sid)
    init_project(root / "project", root / "images")
    (root / "project" / "project.yaml").write_text(YAML.format(images=root / "images") + EXAMPLE)
    users = UsersFile.for_project(root / "project")
    for name, admin in USERS.items():
        users.add(name, password(name), admin=admin)
    store = AnnotationStore(Project.open(root / "project").config.annotations)
    annotations = store.series(S1, SHAPE)
    assert commit_roi(annotations, 1, DRAFT, MODEL) == 1
    assert commit_roi(annotations, 1, HUMAN, user="ana") == 2
    return root / "project"


def compare(user: DashUser, a=("1", 1), b=("current", 1), plane="axial", slices=None):
    return user.callback(SCORES_OUTPUT, [("compare-run", "n_clicks", 1),
                                         ("plane-select", "value", plane)], [
        ("compare-a-version", "value", a[0]), ("compare-a-roi", "value", a[1]),
        ("compare-b-version", "value", b[0]), ("compare-b-roi", "value", b[1]),
        ("compare-slices", "value", slices), ("viewer-meta", "data", {"series": S1}),
        ("compare-done", "data", None)])


def download(user: DashUser, button: str, done: dict):
    return user.callback("compare-download.data", [("compare-csv", "n_clicks", 0),
                                                   ("compare-excel", "n_clicks", 0)],
                         [("compare-done", "data", done)],
                         changed=[f"{button}.n_clicks"])


def content(reply) -> bytes:
    assert reply.status_code == 200, reply.text
    data = reply.json()["response"][list(reply.json()["response"])[0]]["data"]
    return base64.b64decode(data["content"]) if data["base64"] else data["content"].encode()


def test_a_reader_gets_the_scores_and_the_files(server):
    ana = DashUser(server.url, "ana", password("ana"))
    choices = ana.callback(
        "..compare-a-version.options...compare-a-version.value...compare-a-roi.options..."
        "compare-a-roi.value...compare-b-version.options...compare-b-version.value..."
        "compare-b-roi.options...compare-b-roi.value...compare-message.children..",
        [("compare-open", "n_clicks", 1)],
        [("viewer-meta", "data", {"series": S1}), ("compare-a-version", "options", [])])
    assert choices.status_code == 200, choices.text
    got = choices.json()["response"]
    assert [o["value"] for o in got["compare-a-version"]["options"]] == ["current", "1", "2"]
    assert got["compare-a-version"]["value"] == "1"
    assert got["compare-b-version"]["value"] == "current"
    assert got["compare-a-roi"]["value"] == got["compare-b-roi"]["value"] == 1
    assert [o["label"] for o in got["compare-a-roi"]["options"]] == ["Liver", "Kidney"]

    reply = compare(ana)
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    texts = layout_texts(response["compare-scores"]["children"])
    assert texts[0] == "Liver @ v1 (kidney-seg@1.0.0)  vs  Liver @ current"
    assert texts[1:4] == ["Dice 0.500", "  ·  ", "Jaccard 0.333"]
    trace = response["compare-plot"]["figure"]["data"][0]
    assert trace["x"] == [2, 3, 4, 5] and trace["customdata"] == [1, 2, 3, 4]
    assert trace["y"] == [0.0, 0.75, 0.75, 0.0]
    done = response["compare-done"]["data"]
    assert done == {"series": S1, "plane": "axial", "a": [1, 1], "b": [None, 1], "slices": None}

    rows = list(csv.reader(io.StringIO(content(download(ana, "compare-csv", done)).decode())))
    assert rows[0][:3] == ["series", "plane", "slice"]
    assert [(r[2], r[8]) for r in rows[1:]] == [("2", "0.0"), ("3", "0.75"), ("4", "0.75"),
                                                ("5", "0.0")]
    book = load_workbook(io.BytesIO(content(download(ana, "compare-excel", done))))
    assert book.sheetnames == ["volume", "slices"]
    assert list(book["volume"].iter_rows(values_only=True))[1][5:9] == (192, 192, 96, 0.5)

    # slices typed as the viewer numbers them: slice 1 is empty in both (1.0, flagged)
    typed = compare(ana, slices="1-2").json()["response"]
    assert typed["compare-plot"]["figure"]["data"][0]["y"] == [1.0, 0.0]
    assert layout_texts(typed["compare-scores"]["children"])[1:4] == [
        "Dice 0.000", "  ·  ", "Jaccard 0.000"]
    assert typed["compare-done"]["data"]["slices"] == [0, 1]
    (empty_row, _) = typed["compare-table"]["children"]["props"]["children"][1]["props"][
        "children"]
    assert empty_row["props"]["className"] == "ril-compare-row ril-both-empty"
    assert layout_texts(compare(ana, slices="0-2").json()["response"]["compare-scores"][
        "children"]) == ["'0-2': slices are numbered from 1, and a range goes from low to high "
                         "(like '3-5')."]

    # a point ROI cannot be compared: said in the panel
    refused = compare(ana, a=("1", 3))
    assert layout_texts(refused.json()["response"]["compare-scores"]["children"]) == [
        "Lesion is a point ROI; Dice and Jaccard compare area ROIs."]


def test_a_user_who_may_not_read_the_series_is_refused(server):
    rita = DashUser(server.url, "rita", password("rita"))  # a reviewer; S1 is with the analysts
    reply = compare(rita)
    assert reply.status_code == 200, reply.text
    assert layout_texts(reply.json()["response"]["compare-scores"]["children"]) == [
        "rita may not open P1/ct.nii.gz: it is in the pool 'analysts', and you are not a "
        "member of it (your pools: reviewers)."]
    forged = download(rita, "compare-csv", {"series": S1, "plane": "axial", "a": [1, 1],
                                            "b": [None, 1]})
    assert forged.status_code == 403 and "rita may not open" in forged.text
    garbled = download(DashUser(server.url, "ana", password("ana")), "compare-csv",
                       {"series": S1, "a": [1]})
    assert garbled.status_code == 200, garbled.text  # nothing to download, no server error
    assert "compare-download" not in garbled.json().get("response", {})
    scores = rita.callback(SCORES_PAGE, [("scores-refresh", "n_clicks", 0)])
    assert scores.json()["response"]["scores-grid"]["rowData"] == []


def test_the_model_scores_page_and_its_downloads(server):
    root = DashUser(server.url, "root", password("root"))
    reply = root.callback(SCORES_PAGE, [("scores-refresh", "n_clicks", 0)])
    response = reply.json()["response"]
    assert response["scores-message"]["children"] == "1 scores of 1 model versions"
    (row,) = response["scores-grid"]["rowData"]
    assert (row["series"], row["model"], row["roi_name"], row["draft_version"],
            row["current_version"], row["dice"]) == (S1, "kidney-seg@1.0.0", "Liver", 1, 2, 0.5)
    (mean,) = response["scores-means"]["rowData"]
    assert (mean["model"], mean["series"], mean["mean_dice"]) == ("kidney-seg@1.0.0", 1, 0.5)
    # the correction effort: one edit after the draft, 96 voxels added and 96 removed
    assert response["scores-effort"]["rowData"] == [
        {"model": "kidney-seg@1.0.0", "series": 1, "voxels_changed": 192, "median_voxels": 192,
         "strokes": 1, "median_strokes": 1, "minutes": 0.0, "median_minutes": 0.0}]
    # no version of this project was trained in ril_dash: the loop's plot says how to get one
    loop = response["scores-loop"]["figure"]
    assert loop["data"] == [] and "No model version was trained" in loop["layout"][
        "annotations"][-1]["text"]
    csv_reply = root.callback("scores-download.data", [("scores-csv", "n_clicks", 1),
                                                      ("scores-means-csv", "n_clicks", None),
                                                      ("scores-excel", "n_clicks", None)],
                              changed=["scores-means-csv.n_clicks"])
    rows = list(csv.reader(io.StringIO(content(csv_reply).decode())))
    assert rows[0][:4] == ["model", "roi", "series", "mean_dice"]
    assert rows[1][:4] == ["kidney-seg@1.0.0", "Liver", "1", "0.5"]


# ---- in Chromium ------------------------------------------------------------------------------
@pytest.fixture
def ana_page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(server.url + "/login")
    page.fill("input[name=user]", "ana")
    page.fill("input[name=password]", password("ana"))
    page.click("button[type=submit]")
    page.wait_for_selector(".ril-user")
    yield page
    context.close()


@pytest.mark.browser
def test_compare_in_the_viewer_jumps_to_the_clicked_slice(server, ana_page, ui):
    page = ana_page
    ui.open_viewer(page, server.url, S1, index=2)
    page.click("#compare-open")
    page.wait_for_function("document.querySelector('#compare-a-version').textContent"
                           ".includes('kidney-seg@1.0.0')")
    page.click("#compare-run")
    ui.wait_text(page, "#compare-scores-volume", "Dice 0.500  ·  Jaccard 0.333  on 4 slices")
    cells = page.eval_on_selector_all(
        ".ril-compare-row", "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
    assert cells == [["2", "64", "0", "0", "0.000", "0.000"],
                     ["3", "64", "64", "48", "0.750", "0.600"],
                     ["4", "64", "64", "48", "0.750", "0.600"],
                     ["5", "0", "64", "0", "0.000", "0.000"]]
    page.locator(".ril-compare-row").nth(3).click()  # slice 5 (index 4)
    ui.wait_full(page, index=4)
    page.locator("#compare-plot").scroll_into_view_if_needed()
    point = page.evaluate("""() => {
        const gd = document.querySelector('#compare-plot .js-plotly-plot');
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl.xaxis._offset + fl.xaxis.l2p(2),
                r.top + fl.yaxis._offset + fl.yaxis.l2p(0)];
    }""")  # the point of slice 2 (index 1, Dice 0)
    page.mouse.move(*point)
    page.mouse.click(*point)
    ui.wait_full(page, index=1)
    assert page.inner_text("#viewer-position") == "Axial  2 / 6"
