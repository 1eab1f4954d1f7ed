"""Models page (``/models``): every model bundle and version, and (for managers) their settings.

One card per bundle: its name, task and whether it is enabled for the project, then its
versions newest first with status (ok, or the error that makes it unusable, and what does not
fit this project's ROIs or text fields), author, date,
changelog, input and output summary, runtime estimate, validation figures and trust. The
active version (the one runs use) is marked. Administrators and members of a pool with the
``models`` right also get Enable/Disable, Activate (switch the active version, e.g. roll back)
and an upload of a bundle ``.zip``; administrators also Trust (after a confirmation that says
what trusting means).
Every change is an audited command of :mod:`ril_dash.application.model_admin`, which checks
the right again (a forged request is answered 403); the buttons are only a convenience.

Developer notes::

    layout / MODELS_REFRESH / NOTICE (a new version appeared) ─► show_models
    Enable·Disable {MODELS_TOGGLE} / Activate {MODELS_ACTIVATE} / trust dialog OK
        ─► manage_models ─► model_admin.* ─► MODELS_MESSAGE, MODELS_REFRESH
    Trust {MODELS_TRUST} ─► ask_trust ─► confirmation dialog (+ the ref it is about)
    upload (.zip) ─► upload_bundle ─► model_admin.import_bundle ─► MODELS_UPLOAD_RESULT
    Train a development model: see ril_dash.ui.components.train_form
"""

from __future__ import annotations

import base64
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dash
from dash import ALL, Input, Output, State, callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from ril_dash.application.policy import models_decision
from ril_dash.errors import PermissionDenied, RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.model_text import (input_summary, output_summary,
                                               runtime_estimate, validation_summary)
from ril_dash.ui.components.train_form import train_section
from ril_dash.ui.model_catalog import BundleView, VersionView, bundle_views, catalog_entries
from ril_dash.ui.model_catalog import registry_state
from ril_dash.ui.services import get_services

UPLOAD_RESULT = "models-upload-result"
#: a bundle .zip larger than this is refused before it is decoded
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
TRUST_TEXT = ("Trust {ref}? Trusting this exact model file (sha256 {sha}…) lets it load without "
              "the safety scan and run the custom code its bundle ships ({custom}). Code in a "
              "model file can do anything the model worker can: read and change your files. "
              "Trust it only if you know who made it and where it comes from. The audit log "
              "records that you trusted it.")


def register() -> None:
    dash.register_page(__name__, path="/models", name="Models", title="ril_dash – models",
                       layout=layout)


@dataclass(frozen=True)
class Rights:
    """What the page offers the user (model_admin checks again): ``manage`` enable, activate
    and upload (admins, pools with the ``models`` right), ``trust`` (admins only)."""

    manage: bool = False
    trust: bool = False


def rights_of_user() -> Rights:
    """The logged-in user's :class:`Rights`."""
    manage = models_decision(get_services().workflow, access.actor()).allowed
    return Rights(manage, manage and access.is_admin())


def _date(entry) -> str:
    """When the version appeared in its plugins folder."""
    return time.strftime("%Y-%m-%d", time.localtime(entry.added)) if entry.added else ""


def _status(version: VersionView, config) -> html.Td:
    from ril_dash.models.manifest import project_problems

    if version.manifest is None or version.entry.error:
        return html.Td(version.entry.error or "unusable", className="ril-model-error")
    problems = project_problems(version.manifest, config)
    return html.Td(["active" if version.active else "ok",
                    *[html.Div(p, className="ril-model-problem") for p in problems]],
                   className="ril-model-active" if version.active else "ril-model-ok")


def _trust_cell(version: VersionView, rights: Rights) -> html.Td:
    if version.trusted:
        who = version.trusted.get("user", "?")
        when = version.trusted.get("time")
        stamp = f" on {str(when)[:10]}" if when else ""
        return html.Td(f"trusted by {who}{stamp}", className="ril-model-trusted")
    if rights.trust and version.manifest is not None:
        return html.Td(html.Button("Trust…", id={"type": ids.MODELS_TRUST, "ref": version.ref},
                                   className="ril-button", n_clicks=0))
    return html.Td("not trusted" if version.manifest and version.manifest.custom_objects
                   else "", className="ril-muted")


def _version_row(version: VersionView, rights: Rights, config) -> html.Tr:
    m = version.manifest
    usable = m is not None and not version.entry.error
    action = ""
    if rights.manage and usable and not version.active:
        action = html.Button("Activate", id={"type": ids.MODELS_ACTIVATE, "ref": version.ref},
                             className="ril-button", n_clicks=0,
                             title="Make this the version runs use (e.g. roll back)")
    cells = [html.Td(version.entry.version, className="ril-model-version"),
             _status(version, config)]
    if usable:
        per_slice = m.runtime.cpu_seconds_per_slice
        cells += [html.Td(m.author), html.Td(_date(version.entry)), html.Td(m.changelog),
                  html.Td(input_summary(m)), html.Td(output_summary(m)),
                  html.Td(f"{per_slice:g} s/slice ({runtime_estimate(per_slice, 100)}), "
                          f"{m.runtime.memory_mb:g} MB"),
                  html.Td(validation_summary(m))]
    else:
        cells += [html.Td("", colSpan=7)]
    cells += [_trust_cell(version, rights) if usable else html.Td(""), html.Td(action)]
    return html.Tr(cells, className="ril-model-row", **{"data-ref": version.ref})


def bundle_card(view: BundleView, rights: Rights, config) -> html.Section:
    current = view.current
    task = current.manifest.task if current is not None else "unusable"
    state = "enabled" if view.enabled else "disabled"
    toggle = ""
    if rights.manage and (current is not None or not view.enabled):  # (broken: never runs)
        toggle = html.Button("Disable" if view.enabled else "Enable",
                             id={"type": ids.MODELS_TOGGLE, "model": view.id},
                             className="ril-button", n_clicks=0)
    heads = ["Version", "Status", "Author", "Date", "Changelog", "Input", "Output", "Runtime",
             "Validation", "Trust", ""]
    return html.Section(className="ril-model-card", **{"data-model": view.id}, children=[
        html.H3([f"{view.name} ", html.Span(f"({view.id})", className="ril-muted-inline")]),
        html.Div(className="ril-button-row", children=[
            html.Span(f"{task} · {state} for this project · active version "
                      f"{view.active or 'none'}", className=f"ril-model-state ril-{state}"),
            toggle]),
        html.P(current.manifest.description, className="ril-muted") if current else None,
        html.Table(className="ril-roi-table ril-models-table", children=[
            html.Thead(html.Tr([html.Th(h) for h in heads])),
            html.Tbody([_version_row(v, rights, config) for v in view.versions])]),
    ])


def models_list() -> list:
    services = get_services()
    try:
        views = bundle_views(catalog_entries(services), registry_state(services))
    except RilDashError as exc:  # e.g. an unreadable settings file: say so, what to do
        return [_alert(str(exc), "error")]
    if not views:
        return [html.Div("No model bundles yet: put one into the project's plugins/ folder "
                         "(see plugins/README.md) or upload a bundle .zip.",
                         className="ril-muted")]
    rights = rights_of_user()
    return [bundle_card(view, rights, services.project.config) for view in views]


def _upload() -> html.Div:
    return html.Div(className="ril-model-upload", children=[
        html.H3("Add a bundle"),
        dcc.Upload(id=ids.MODELS_UPLOAD, accept=".zip", multiple=False,
                   className="ril-upload", max_size=MAX_UPLOAD_BYTES,
                   children=html.Div(["Drop a bundle .zip here or ",
                                      html.A("choose a file")])),
        html.Div(id=UPLOAD_RESULT),
        html.P(["Or turn a bare .keras / .h5 model into a bundle, with a live preview on a "
                "series: ", dcc.Link("the model wizard", href="/models/new",
                                     className="ril-wizard-link"), "."]),
    ])


def layout(**_query) -> html.Div:
    manage = rights_of_user().manage
    return html.Div(className="ril-page ril-models", children=[
        html.H2("Models"),
        html.P("Model bundles of this project's plugins/ folder, the examples shipped with "
               "ril_dash and any lab folders. A new version is a new folder: versions never "
               "change, and every draft records the model id@version it came from."
               + ("" if manage else " Administrators (or a pool with the models right) manage "
                                    "them."), className="ril-muted"),
        dcc.Store(id=ids.MODELS_REFRESH, data=0),
        dcc.Store(id=ids.MODELS_TRUST_REF),
        dcc.ConfirmDialog(id=ids.MODELS_TRUST_DIALOG, message=""),
        html.Div(id=ids.MODELS_MESSAGE),
        _upload() if manage else None,
        train_section(),
        html.Div(models_list(), id=ids.MODELS_LIST),
    ])


@callback(Output(ids.MODELS_LIST, "children"), Input(ids.MODELS_REFRESH, "data"),
          Input(ids.NOTICE, "children"), prevent_initial_call=True)
def show_models(_refresh, _notice):
    access.current_user()  # logged-in users only
    return models_list()


def _alert(text: str, kind: str, **kw) -> html.Div:
    return html.Div(text, className=f"ril-alert ril-alert-{kind}", **kw)


@callback(
    Output(ids.MODELS_TRUST_DIALOG, "displayed"), Output(ids.MODELS_TRUST_DIALOG, "message"),
    Output(ids.MODELS_TRUST_REF, "data"),
    Input({"type": ids.MODELS_TRUST, "ref": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def ask_trust(_clicks):
    """Show what trusting a version means before it is done."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not ctx.triggered[0].get("value"):
        raise PreventUpdate
    ref = str(trigger["ref"])
    entry = next((e for e in catalog_entries(get_services())
                  if f"{e.id}@{e.version}" == ref and e.manifest is not None), None)
    if entry is None:
        raise PreventUpdate
    custom = entry.manifest.custom_objects or "no custom objects"
    return True, TRUST_TEXT.format(ref=ref, sha=entry.manifest.sha256[:16], custom=custom), ref


def _change(trigger, trust_ref):
    """Run the model_admin command a click asks for; returns the message to show."""
    from ril_dash.application import model_admin

    services, who = get_services(), access.actor()
    if trigger == ids.MODELS_TRUST_DIALOG:
        model_id, version = str(trust_ref).split("@", 1)
        model_admin.trust_model_version(services, who, model_id, version)
        return f"{trust_ref} is trusted: it loads with its custom code from now on."
    if trigger.get("type") == ids.MODELS_TOGGLE:
        model_id = str(trigger["model"])
        enabled = not any(v.id == model_id and v.enabled for v in bundle_views(
            catalog_entries(services), registry_state(services)))
        model_admin.set_model_enabled(services, who, model_id, enabled)
        return f"{model_id} is {'enabled' if enabled else 'disabled'} for this project."
    model_id, version = str(trigger["ref"]).split("@", 1)
    model_admin.activate_model_version(services, who, model_id, version)
    return f"{model_id} {version} is now the active version: new runs use it."


@callback(
    Output(ids.MODELS_MESSAGE, "children"), Output(ids.MODELS_REFRESH, "data"),
    Input({"type": ids.MODELS_TOGGLE, "model": ALL}, "n_clicks"),
    Input({"type": ids.MODELS_ACTIVATE, "ref": ALL}, "n_clicks"),
    Input(ids.MODELS_TRUST_DIALOG, "submit_n_clicks"),
    State(ids.MODELS_TRUST_REF, "data"), State(ids.MODELS_REFRESH, "data"),
    prevent_initial_call=True,
)
def manage_models(_toggles, _activations, _trusted, trust_ref, refresh):
    """Enable/disable a bundle, activate a version or trust one (model_admin checks rights)."""
    trigger = ctx.triggered_id
    if trigger is None or not ctx.triggered[0].get("value"):
        raise PreventUpdate  # buttons (re)drawn by a refresh, not a click
    if trigger == ids.MODELS_TRUST_DIALOG and not trust_ref:
        raise PreventUpdate
    try:
        text = _change(trigger, trust_ref)
    except PermissionDenied:
        raise  # answered 403 by the app
    except RilDashError as exc:
        return _alert(str(exc), "error"), (refresh or 0) + 1
    return _alert(text, "ok", id=ids.MODELS_DONE), (refresh or 0) + 1


@callback(
    Output(UPLOAD_RESULT, "children"), Output(ids.MODELS_REFRESH, "data", allow_duplicate=True),
    Input(ids.MODELS_UPLOAD, "contents"), State(ids.MODELS_UPLOAD, "filename"),
    State(ids.MODELS_REFRESH, "data"),
    prevent_initial_call=True,
)
def upload_bundle(contents, filename, refresh):
    """Import an uploaded bundle .zip into the project's plugins folder (model_admin checks
    the right, the zip's safety and that no version is overwritten)."""
    from ril_dash.application.model_admin import import_bundle

    if not contents:
        raise PreventUpdate
    name = Path(str(filename or "bundle.zip")).name
    if not name.lower().endswith(".zip"):
        return _alert(f"{name} is not a .zip: upload a bundle folder zipped "
                      f"(ril-dash plugins export makes one).", "error"), dash.no_update
    who = access.actor()
    try:
        data = base64.b64decode(contents.split(",", 1)[-1], validate=False)
    except ValueError:
        return _alert(f"{name} could not be read; upload it again.", "error"), dash.no_update
    with tempfile.TemporaryDirectory(prefix="ril-bundle-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            added = import_bundle(get_services(), who, path)
        except PermissionDenied:
            raise  # answered 403 by the app
        except RilDashError as exc:
            return _alert(str(exc), "error"), dash.no_update
    listed = ", ".join(f"{i} {v}" for i, v in added)
    return _alert(f"Imported {listed}.", "ok", id=ids.MODELS_DONE), (refresh or 0) + 1
