"""The pages run plotly.js's cartesian bundle (ril_dash.ui.plotly_bundle): Dash's plotly.js URL
answers with it while its version is the plotly package's, the full bundle otherwise; the
viewer in a browser runs it (no 3D trace types) and draws its traces without script errors
(the statistics histogram, a bar chart, is drawn in test_annotation_browser)."""

from __future__ import annotations

import logging

import flask
import pytest
from support import project_copy

from ril_dash.ui import plotly_bundle
from ril_dash.ui.plotly_bundle import BUNDLE, PLOTLY_JS, bundle_version, install_plotly_bundle

URL = "/" + PLOTLY_JS
CARTESIAN_TRACES = {"bar", "box", "contour", "heatmap", "histogram", "histogram2d",
                    "histogram2dcontour", "image", "pie", "scatter", "scatterternary", "violin"}


def test_the_vendored_bundle_is_the_version_of_the_plotly_package():
    ours = bundle_version(BUNDLE)
    assert ours is not None and ours == bundle_version(plotly_bundle._full_bundle())
    assert BUNDLE.read_text(encoding="utf-8")[:60].startswith(
        "/**\n* plotly.js (cartesian - minified) v")
    assert (BUNDLE.parent / "LICENSE.plotly.js.txt").read_text().startswith("MIT License")


def test_the_version_is_read_from_the_banner_only(tmp_path):
    other = tmp_path / "other.js"
    other.write_text("/**\n* plotly.js (basic) v3.0.1\n*/\nvar x;")
    assert bundle_version(other) == "3.0.1"
    other.write_text("console.log('plotly.js v1.0.0 is not a banner');")
    assert bundle_version(other) is None
    assert bundle_version(tmp_path / "missing.js") is None
    (tmp_path / "binary.js").write_bytes(b"\xff\xfe\x00plotly")
    assert bundle_version(tmp_path / "binary.js") is None


@pytest.fixture(scope="module")
def client(demo_home, tmp_path_factory):
    from ril_dash.project.project import Project
    from ril_dash.settings import Settings
    from ril_dash.ui.app import create_app

    project = project_copy(demo_home, tmp_path_factory.mktemp("plotly") / "project")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIL_DASH_HOME", str(demo_home))
        app = create_app(Project.open(project), Settings(project_dir=project))
    return app.server.test_client()


def test_dash_s_plotly_url_answers_with_the_cartesian_bundle(client):
    reply = client.get(URL)
    assert reply.status_code == 200
    assert reply.mimetype == "application/javascript"
    assert reply.data == BUNDLE.read_bytes()
    assert reply.headers["Cache-Control"] == "no-cache, max-age=0"  # a 304 while unchanged
    again = client.get(URL, headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    assert client.head(URL).status_code == 200
    # nothing else changes: the other scripts are Dash's
    assert client.get("/_dash-component-suites/dash/dcc/async-graph.js").data[:1000] != \
        BUNDLE.read_bytes()[:1000]


def test_another_plotly_version_keeps_the_full_bundle(tmp_path, monkeypatch, caplog):
    stale = tmp_path / "plotly-cartesian.min.js"
    stale.write_text("/**\n* plotly.js (cartesian - minified) v0.0.1\n*/\nvar Plotly;")
    monkeypatch.setattr(plotly_bundle, "BUNDLE", stale)
    server = flask.Flask(__name__)

    @server.route(URL)
    def full():
        return "the full bundle"

    with caplog.at_level(logging.WARNING, logger=plotly_bundle.__name__):
        assert install_plotly_bundle(server, "/") is False
    assert "cartesian bundle in" in caplog.text and "is version 0.0.1" in caplog.text
    assert server.test_client().get(URL).data == b"the full bundle"


def test_the_bundle_follows_the_routes_prefix():
    server = flask.Flask(__name__)
    assert install_plotly_bundle(server, "/lab/") is True
    reply = server.test_client().get("/lab" + URL)
    assert reply.status_code == 200 and reply.data == BUNDLE.read_bytes()
    assert server.test_client().get(URL).status_code == 404


@pytest.mark.browser
def test_the_viewer_runs_the_cartesian_bundle(page, demo_server, ui):
    ui.open_viewer(page, demo_server.url, "PHANTOM-001/CT-2026-01-14/arterial.nii.gz")
    traces = set(page.evaluate("Object.keys(Plotly.PlotSchema.get().traces)"))
    assert traces == CARTESIAN_TRACES  # not the full bundle (scatter3d, mesh3d, maps...)
    kinds = page.evaluate("document.querySelector('#viewer-graph .js-plotly-plot')._fullData"
                          ".map(t => t.type)")
    assert set(kinds) <= CARTESIAN_TRACES and "image" in kinds
    assert page.js_errors == []
