"""Build the Dash application: ``create_app(project, settings)`` is the only place a ``Dash``
object is made.

Pages register themselves from :mod:`ril_dash.ui.pages`; the slice images are served by the
Flask blueprint in :mod:`ril_dash.ui.routes`; shared state lives in
:class:`ril_dash.ui.services.Services`, attached to the Flask app.
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
from dash import Input, Output, dcc, html

import ril_dash
from ril_dash import __version__
from ril_dash.application.leases import release_leases_of
from ril_dash.application.series_table import series_table
from ril_dash.errors import LockHeld, NotLoggedIn, PermissionDenied, RilDashError
from ril_dash.project.project import Project
from ril_dash.settings import Settings
from ril_dash.ui import (
    annotation_routes,  # noqa: F401  (adds the annotation routes)
    contour_routes,  # noqa: F401  (adds the semi-automatic contouring route)
    ids,
    lease_routes,  # noqa: F401  (adds the lease routes)
    map_routes,  # noqa: F401  (adds the heat-map routes)
)
from ril_dash.ui.components.model_notice import notice_parts
from ril_dash.ui.audit_warnings import admin_notice, install_audit_warnings
from ril_dash.ui.background import background_manager, install_job_broker
from ril_dash.ui.auth import current_user, display_name_of, install_auth, logins_enabled
from ril_dash.ui.plotly_bundle import install_plotly_bundle
from ril_dash.ui.proxies import install_trusted_proxies
from ril_dash.ui.request_checks import install_request_checks
from ril_dash.ui.request_limits import install_request_limits
from ril_dash.ui.routes import blueprint
from ril_dash.ui.services import EXTENSION_KEY, Services, get_services, services_of_app

#: a file every copy of the browser assets holds (the viewer's script)
ASSET_MARK = "ril_viewer.js"
log = logging.getLogger(__name__)


class AssetsMissing(RilDashError):
    """The browser scripts and styles are not where this copy of ril_dash expects them."""


def assets_folder(package: Path | None = None) -> Path:
    """The folder of the browser scripts and styles that belong to the running ``ril_dash``.

    They are the package ``ril_dash.assets``: pyproject.toml maps the repository's top-level
    ``assets/`` folder onto it. A wheel install holds it inside the package
    (``site-packages/ril_dash/assets``); in a checkout (installed editable, or run as
    ``python run.py``) it is the ``assets/`` folder beside ``ril_dash/``. Both places are
    looked up from the package's own ``__file__``, so code imported from one checkout never
    serves another checkout's scripts. Raises :class:`AssetsMissing` (with what to do) when
    neither holds them: the viewer would open without its scripts otherwise. ``package`` (the
    ``ril_dash`` folder) is for tests.
    """
    package = package or Path(ril_dash.__file__).resolve().parent
    places = (package / "assets", package.parent / "assets")
    for folder in places:
        if (folder / ASSET_MARK).is_file():
            return folder
    raise AssetsMissing(
        f"the browser scripts of ril_dash are missing (no {ASSET_MARK} in "
        f"{' or '.join(str(p) for p in places)}): this installation is incomplete. Reinstall "
        f"ril_dash (pip install --force-reinstall ril_dash-*.whl, or pip install -e . in a "
        f"checkout).")


def _user_header() -> tuple[list, list, list]:
    """(nav links, user block, admin notices) of the header for the user of this request."""
    from ril_dash.ui.access import is_admin

    try:
        user = current_user()
    except NotLoggedIn:  # outside a request (nothing is shown to anybody then)
        return [], [], []
    links = [dcc.Link("Workflow", href="/workflow", className="ril-nav-link")]
    notices = []
    if is_admin(user):
        links.append(dcc.Link("Audit", href="/audit", className="ril-nav-link"))
        notices = admin_notice(get_services().audit)
    if not logins_enabled():
        return links, [], notices
    return links, [
        html.Span(display_name_of(user), className="ril-user", title=f"logged in as {user}"),
        html.Form(html.Button("Log out", type="submit", className="ril-button ril-logout"),
                  method="POST", action="/logout", className="ril-logout-form"),
    ], notices


def _shell(project: Project):
    """The page frame; evaluated for every request of ``/_dash-layout`` (it shows the user)."""
    links, user_block, admin_notices = _user_header()
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
                dcc.Link("Jobs", href="/jobs", className="ril-nav-link"),
                dcc.Link("Models", href="/models", className="ril-nav-link"),
                dcc.Link("Model scores", href="/scores", className="ril-nav-link"),
                *links,
            ]),
            html.Span(f"v{__version__}", className="ril-version"),
            *user_block,
        ]),
        *admin_notices,
        *notice_parts(),
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


def _lease_releaser(server):
    """``on_logout``: give up the series leases of a user who logs out."""

    def release(user: str) -> None:
        release_leases_of(services_of_app(server), user)

    return release


def _refuse_denied_callbacks(server) -> None:
    """A Dash callback that raises a rights error answers 401/403/423 with the reason (the page
    shows nothing new), never a 500: forged callback requests are refused like any other."""
    from flask import jsonify

    for error, status in ((NotLoggedIn, 401), (PermissionDenied, 403), (LockHeld, 423)):
        server.register_error_handler(
            error, lambda exc, status=status: (jsonify(error=str(exc)), status))


def _interrupt_orphaned_jobs(project: Project) -> None:
    """At start: jobs left queued or running by a process that died (the previous server, a
    killed background job) become ``interrupted``, and an export's temp files are removed."""
    from ril_dash.application.jobs import clean_up_interrupted
    from ril_dash.jobs import JobStore

    try:
        JobStore.for_project(project.dir).mark_interrupted(cleanup=clean_up_interrupted)
    except (RilDashError, OSError) as exc:  # a damaged job folder never stops the server
        log.error("could not check the project's jobs: %s", exc)


def create_app(project: Project, settings: Settings | None = None) -> dash.Dash:
    """Return the Dash app serving ``project``.

    Parameters
    ----------
    project : Project
        The opened project (already validated).
    settings : Settings, optional
        Server settings: cache size, logins, cookies, workflow file, lease length.
    """
    settings = settings or Settings(project_dir=project.dir)
    manager = background_manager(project, settings.broker)
    app = dash.Dash(
        __name__,
        background_callback_manager=manager,
        use_pages=True,
        pages_folder="",
        assets_folder=str(assets_folder()),
        title=f"ril_dash – {project.config.name}",
        update_title=None,
        suppress_callback_exceptions=True,
    )
    app.enable_dev_tools(debug=False, dev_tools_props_check=False)
    app.server.extensions[EXTENSION_KEY] = Services(
        project, workflow_file=settings.workflow_file,
        volume_cache_bytes=settings.volume_cache_bytes, lease_seconds=settings.lease_seconds,
        plugin_dirs=settings.plugin_dirs)
    install_auth(app.server, project.dir, login_required=settings.login_required,
                 secure_cookies=settings.secure_cookies, on_logout=_lease_releaser(app.server))
    install_request_limits(app.server, settings.host, settings.allowed_hosts)
    install_trusted_proxies(app.server, settings.trusted_proxies)
    install_audit_warnings(app.server)
    install_plotly_bundle(app.server, app.config.routes_pathname_prefix)
    app.server.register_blueprint(blueprint)
    app.server.before_request(app.server.extensions[EXTENSION_KEY].refresh_config)

    _refuse_denied_callbacks(app.server)
    install_request_checks(app.server, lambda: app.callback_map,
                           app.config.routes_pathname_prefix)
    _interrupt_orphaned_jobs(project)

    from ril_dash.ui.pages import (
        audit_page,
        export_page,
        jobs_page,
        model_scores,
        model_wizard,
        models_page,
        project_viewer,
        roi_manager,
        slice_viewer,
        workflow_board,
    )

    project_viewer.register()
    series_table(project)  # the project grid's columns: built now, not at the first page
    slice_viewer.register()
    roi_manager.register()
    export_page.register()
    jobs_page.register()
    models_page.register()
    model_scores.register()
    workflow_board.register()
    audit_page.register()
    model_wizard.register()
    app.layout = lambda: _shell(project)  # per request: the header shows the user
    if settings.broker:  # once every page's callbacks are registered (they are its tasks)
        install_job_broker(app, manager, project, settings)
    return app
