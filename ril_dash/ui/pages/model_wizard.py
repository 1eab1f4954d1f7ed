"""The model wizard (``/models/new``): a bare ``.keras``/``.h5`` file becomes a bundle version.

For admins and members of a workflow pool with the ``models`` right; every callback asks the
application layer (:mod:`ril_dash.application.model_wizard`), which checks that right again, so
a forged request is refused like a click. The steps:

1. **upload**: the file is kept in the project's private ``.models/uploads/``, scanned, and
   loaded in the model worker to read its input and output shapes (a refusal is shown with its
   message); the steps below are then prefilled from the shapes;
2. **identity, task, geometry, normalisation, outputs, runtime**: plain fields, each one a key of
   ``plugin.yaml``; the manifest they make is shown as the YAML that will be written, or the
   message of the first field that is wrong;
3. **live preview** on a series and slice of the project: the normalised model input and what a
   run would write there, computed on every change through the model run's own path;
4. **Create version** writes ``PROJECT/plugins/<id>/<version>/`` (audited; an existing version
   is refused, never overwritten).

Developer notes::

    upload ─► receive_model_file, describe_upload ─► wiz-token, the steps (prefilled)
    any field ─► build_wizard_manifest ─► the YAML shown (runtime: the measured store)
    series, slice, any field ─► preview_wizard_slice ─► the images, wiz-runtime-store
    Create ─► create_bundle_version ─► message; wiz-token cleared (the upload is dropped,
              the YAML shown stays: it is what was written)
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dash
from dash import ALL, Input, Output, State, callback, dcc, html

from ril_dash.application import model_wizard as commands
from ril_dash.errors import PermissionDenied, RilDashError
from ril_dash.models import wizard, wizard_files
from ril_dash.models.manifest import manifest_yaml
from ril_dash.ui import access
from ril_dash.ui.components import wizard_form as form_ui
from ril_dash.ui.components.wizard_preview import preview_view
from ril_dash.ui.services import get_services

UPLOAD = "wiz-upload"
UPLOAD_STATUS = "wiz-upload-status"
TOKEN = "wiz-token"
RUNTIME = "wiz-runtime-store"
STEPS = "wiz-steps"
SERIES = "wiz-series"
SLICE = "wiz-slice"
SLICE_HINT = "wiz-slice-hint"
PREVIEW = "wiz-preview"
YAML = "wiz-yaml"
MANIFEST_ERROR = "wiz-manifest-error"
CREATE = "wiz-create"
CREATED = "wiz-created"
#: the fields the preview does not depend on (they only name the bundle)
PREVIEW_KEYS = [k for k in form_ui.FIELDS if k not in form_ui.IDENTITY + ("memory_mb",)]


def register() -> None:
    dash.register_page(__name__, path="/models/new", name="New model",
                       title="ril_dash – new model bundle", layout=layout)


def _alert(message: str, kind: str = "error") -> html.Div:
    return html.Div(message, className=f"ril-alert ril-alert-{kind}")


def _check_right():
    services = get_services()
    commands.require_models_right(services, access.actor())
    return services


def layout(**_query) -> html.Div:
    try:
        services = _check_right()
    except PermissionDenied as exc:
        return html.Div(className="ril-page", children=[html.H2("New model bundle"),
                                                        _alert(str(exc))])
    series = [s.id for s in services.project.series]
    return html.Div(className="ril-page ril-wizard", children=[
        html.H2("New model bundle version"),
        html.P("Turn a trained Keras model into a bundle every user of the project can run: "
               "upload the file, describe how slices become its input and what its outputs "
               "mean, check the preview, create the version. What is written is the "
               "plugin.yaml shown below, as a person could write it by hand.",
               className="ril-muted"),
        dcc.Upload(id=UPLOAD, max_size=wizard_files.MAX_UPLOAD_BYTES, accept=".keras,.h5",
                   className="ril-wizard-upload", children=html.Div([
                       "Drop a .keras file (or a legacy full-model .h5) here, or ",
                       html.A("choose one"),
                       f" (at most {wizard_files.MAX_UPLOAD_BYTES // 2**20} MB)"])),
        dcc.Loading(html.Div(id=UPLOAD_STATUS)),
        dcc.Store(id=TOKEN), dcc.Store(id=RUNTIME),
        html.Div(id=STEPS),
        html.Section(className="ril-wizard-step", children=[
            html.H3("Preview"),
            html.Div(className="ril-wizard-row", children=[
                dcc.Dropdown(id=SERIES, value=series[0] if series else None,
                             options=[{"label": s, "value": s} for s in series],
                             clearable=False, className="ril-select ril-wizard-series"),
                html.Label(["slice ", dcc.Input(id=SLICE, type="number", min=0, step=1,
                                                value=0, debounce=True,
                                                className="ril-wizard-number")]),
                html.Span(id=SLICE_HINT, className="ril-muted")]),
            dcc.Loading(html.Div(id=PREVIEW, children=html.P(
                "Upload a model to see it on a slice.", className="ril-muted")))]),
        html.Section(className="ril-wizard-step", children=[
            html.H3("plugin.yaml"),
            html.Div(id=MANIFEST_ERROR),
            html.Pre(id=YAML, className="ril-wizard-yaml"),
            html.Button("Create version", id=CREATE, disabled=True,
                        className="ril-button ril-primary"),
            html.Div(id=CREATED)]),
    ])


# ---- upload ---------------------------------------------------------------------------------
def _slug(filename: str) -> str:
    """A bundle id proposed from a file name: ``Liver UNet v2.keras`` → ``liver-unet-v2``."""
    stem = re.sub(r"[^a-z0-9._-]+", "-", Path(filename).stem.lower()).strip("-._")
    return (stem or "model")[:64]


def _choice_fields(services) -> dict[str, list[str]]:
    return {f.name: list(f.values) for f in services.project.config.text_fields
            if f.type == "choice"}


@callback(Output(UPLOAD_STATUS, "children"), Output(TOKEN, "data"), Output(STEPS, "children"),
          Output(RUNTIME, "data"), Output(YAML, "children", allow_duplicate=True),
          Input(UPLOAD, "contents"), State(UPLOAD, "filename"), State(SERIES, "value"),
          prevent_initial_call=True)
def receive_upload(contents, filename, series):
    """Keep, scan and inspect the uploaded file; prefill the steps from its shapes."""
    services = _check_right()
    who = access.actor()
    try:
        data = base64.b64decode(str(contents or "").partition(",")[2], validate=True)
    except ValueError:
        return _alert("The upload arrived damaged; upload the file again."), None, [], None, ""
    try:
        upload = commands.receive_model_file(services, who, filename, data)
        upload, summary = commands.describe_upload(services, who, upload.token)
        is_ct = bool(series) and commands.series_is_ct(services, series)
    except RilDashError as exc:
        return _alert(str(exc)), None, [], None, ""
    model_id = _slug(upload.filename)
    form = {**wizard.suggested_form(summary, is_ct=is_ct), "id": model_id,
            "version": wizard.next_free_version(services.models.entries(), model_id),
            "name": Path(upload.filename).stem}
    rois = [r.name for r in services.project.config.rois if r.type == "area"]
    steps = form_ui.steps(form, rois=rois, choice_fields=_choice_fields(services),
                          outputs=summary.outputs or 2)
    status = html.Div(className="ril-alert", children=[
        html.B(upload.filename), f" (sha256 {upload.sha256[:12]}…) {summary.describe()}."])
    return status, upload.token, steps, None, ""


@callback(Output(form_ui.field_id("version"), "value"),
          Input(form_ui.field_id("id"), "value"), prevent_initial_call=True)
def propose_version(model_id):
    """The next free version of the bundle id typed."""
    services = _check_right()
    return wizard.next_free_version(services.models.entries(), str(model_id or "").strip())


@callback(Output("wiz-seg-outputs", "hidden"), Output("wiz-class-outputs", "hidden"),
          Input(form_ui.field_id("task"), "value"))
def show_task_outputs(task):
    """The output step of the task chosen."""
    _check_right()
    return task == "classification", task != "classification"


@callback(Output("wiz-classes", "children"), Input(form_ui.field_id("text_field"), "value"),
          State({"type": form_ui.CLASS, "index": ALL}, "id"), prevent_initial_call=True)
def class_choices(text_field, rows):
    """Class index → value dropdowns offering the chosen text field's values."""
    services = _check_right()
    return form_ui.class_rows(len(rows), _choice_fields(services).get(text_field, []))


# ---- manifest and preview -------------------------------------------------------------------
def _form(values, runtime) -> dict:
    form = form_ui.read_form(values)
    if runtime:
        form["cpu_seconds_per_slice"] = runtime
    return form


@callback(Output(YAML, "children"), Output(MANIFEST_ERROR, "children"),
          Output(CREATE, "disabled"),
          Input(TOKEN, "data"), Input(RUNTIME, "data"),
          *form_ui.form_dependencies(Input), prevent_initial_call=True)
def show_manifest(token, runtime, *values):
    """The plugin.yaml the steps make, or what is wrong with them."""
    services = _check_right()
    if not token:  # none yet, or the version was created: keep what is shown
        return dash.no_update, None, True
    try:
        manifest = commands.build_wizard_manifest(services, token, _form(values, runtime))
    except RilDashError as exc:
        return "", _alert(str(exc)), True
    return manifest_yaml(manifest), None, False


@callback(Output(SLICE, "value"), Output(SLICE, "max"), Output(SLICE_HINT, "children"),
          Input(SERIES, "value"), Input(form_ui.field_id("plane"), "value"))
def slice_range(series, plane):
    """The middle slice of the series in the model's plane, and how many there are."""
    services = _check_right()
    plane = plane or "axial"
    try:
        access.require(series, "read")
        n = services.volume(series).n_slices(plane)
    except RilDashError as exc:
        return 0, 0, str(exc)
    return n // 2, n - 1, f"0 … {n - 1} ({plane})"


@callback(Output(PREVIEW, "children"), Output(RUNTIME, "data", allow_duplicate=True),
          Output("wiz-runtime", "children"),
          Input(TOKEN, "data"), Input(SERIES, "value"), Input(SLICE, "value"),
          *form_ui.form_dependencies(Input, PREVIEW_KEYS),
          *form_ui.form_dependencies(State, form_ui.IDENTITY)[:len(form_ui.IDENTITY)],
          prevent_initial_call=True)
def show_preview(token, series, index, *values):
    """Run the steps' manifest on the chosen slice; measure seconds per slice."""
    services = _check_right()
    n_preview = len(PREVIEW_KEYS) + 3
    form = {**form_ui.read_form(values[:n_preview], PREVIEW_KEYS),
            **dict(zip(form_ui.IDENTITY, values[n_preview:]))}
    if not token or not series:
        return dash.no_update, dash.no_update, dash.no_update
    try:
        manifest, preview = commands.preview_wizard_slice(services, access.actor(), token,
                                                          form, series, int(index or 0))
    except RilDashError as exc:
        return _alert(str(exc)), dash.no_update, dash.no_update
    colors = {r.name: r.color for r in services.project.config.rois}
    seconds = float(f"{preview.seconds_per_slice:.2g}")
    return (preview_view(preview, manifest, colors), seconds,
            f"CPU seconds per slice: {seconds:g}, measured on the preview "
            f"(model worker, one slice).")


# ---- create ---------------------------------------------------------------------------------
@callback(Output(CREATED, "children"), Output(TOKEN, "data", allow_duplicate=True),
          Input(CREATE, "n_clicks"), State(TOKEN, "data"),
          State(RUNTIME, "data"), *form_ui.form_dependencies(State),
          prevent_initial_call=True)
def create_version(_clicks, token, runtime, *values):
    """Write the bundle version (audited; refused when it exists)."""
    services = _check_right()
    who = access.actor()
    try:
        manifest = commands.build_wizard_manifest(services, token, _form(values, runtime))
        entry = commands.create_bundle_version(services, who, token, manifest)
    except RilDashError as exc:
        return _alert(str(exc)), dash.no_update
    return html.Div(className="ril-alert", children=[
        f"Created {manifest.id} {manifest.version} in {entry.folder}. Every user of the "
        f"project sees it on the ", dcc.Link("Models", href="/models"), " page."]), None
