"""Build the Dash application: ``create_app(project, settings)`` is the only place a ``Dash``
object is made.

Pages register themselves from :mod:`ril_dash.ui.pages`; the slice images are served by the
Flask blueprint in :mod:`ril_dash.ui.routes`; shared state lives in
:class:`ril_dash.ui.services.Services`, attached to the Flask app.
"""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Input, Output, dcc, html

from ril_dash import __version__
from ril_dash.project.project import Project
from ril_dash.settings import Settings, data_home
from ril_dash.ui import (
    annotation_routes,  # noqa: F401  (adds the annotation routes)
    ids,
)
from ril_dash.ui.routes import blueprint
from ril_dash.ui.services import EXTENSION_KEY, Services
from ril_dash.workflow.schema import Workflow, load_workflow_file, workflow_from_project

ASSETS = Path(__file__).resolve().parents[2] / "assets"


def _shell(project: Project):
    return html.Div(className="ril-shell", children=[
        dcc.Location(id=ids.URL, refresh="callback-nav"),
        dcc.Interval(id=ids.PRELOAD_TIMER, interval=1500, max_intervals=1),
        html.Div(id=ids.PRELOAD, style={"display": "none"}),
        html.Header(className="ril-header", children=[
            dcc.Link("ril_dash", href="/", className="ril-brand"),
            html.Span(project.config.name, className="ril-project-name", title=str(project.dir)),
            html.Nav(className="ril-nav", children=[
                dcc.Link("Project", href="/", className="ril-nav-link"),
                dcc.Link("ROIs", href="/rois", className="ril-nav-link"),
                dcc.Link("Export", href="/export", className="ril-nav-link"),
            ]),
            html.Span(f"v{__version__}", className="ril-version"),
        ]),
        html.Main(dash.page_container, className="ril-main"),
    ])


@dash.callback(Output(ids.PRELOAD, "children"), Input(ids.PRELOAD_TIMER, "n_intervals"),
               prevent_initial_call=True)
def preload_plotly(_):
    """Mount a hidden graph, slider and dropdown once the first page has settled: their code
    (plotly.js above all) is loaded lazily by the first one on screen, so this loads it while
    the user is still choosing a series instead of when they open one (and without slowing the
    project page down)."""
    return [dcc.Graph(figure={"data": []}), dcc.Slider(0, 1, value=0), dcc.Dropdown([])]


def _background_manager(project: Project) -> dash.DiskcacheManager:
    """Background callbacks (exports) run in forked worker processes; their progress and
    results pass through a disk cache in the per-user data folder."""
    import hashlib

    import diskcache

    key = hashlib.sha1(str(project.dir.resolve()).encode()).hexdigest()[:12]
    folder = data_home() / "cache" / f"background-{key}"
    folder.mkdir(parents=True, exist_ok=True)
    return dash.DiskcacheManager(diskcache.Cache(str(folder)), expire=3600)


def load_workflow(project: Project, settings: Settings) -> Workflow | None:
    """The workflow in force: the file given at run time, else project.yaml's, else None.

    Raises InvalidWorkflow (naming the file, line and field) when it is malformed."""
    if settings.workflow_file is not None:
        return load_workflow_file(settings.workflow_file)
    return workflow_from_project(project.config)


def create_app(project: Project, settings: Settings | None = None) -> dash.Dash:
    """Return the Dash app serving ``project``.

    Parameters
    ----------
    project : Project
        The opened project (already validated).
    settings : Settings, optional
        Server settings; only the cache size is used here.
    """
    app = dash.Dash(
        __name__,
        background_callback_manager=_background_manager(project),
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        title=f"ril_dash – {project.config.name}",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    app.enable_dev_tools(debug=False, dev_tools_props_check=False)
    settings = settings or Settings(project_dir=project.dir)
    app.server.extensions[EXTENSION_KEY] = Services(
        project, volume_cache_bytes=settings.volume_cache_bytes,
        workflow=load_workflow(project, settings), lease_seconds=settings.lease_seconds)
    app.server.register_blueprint(blueprint)

    from ril_dash.ui.pages import export_page, project_viewer, roi_manager, slice_viewer

    project_viewer.register()
    slice_viewer.register()
    roi_manager.register()
    export_page.register(project.dir)
    app.layout = _shell(project)
    return app
