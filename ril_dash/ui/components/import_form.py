"""The "Import masks" form of the export page: masks made elsewhere become annotation versions.

It accepts the layouts :func:`ril_dash.project.import_masks.import_masks` reads (one binary
mask per ROI, a combined bitwise mask, or label maps with a value → ROI mapping file), matched
to the series by their relative path. Each series gets one new version with provenance
"import"; locked ROIs are never changed; a series whose masks do not fit its geometry is
refused with the reason, and the others are still imported.
"""

from __future__ import annotations

from dash import Input, Output, State, callback, dcc, html

from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.services import get_services


def import_section() -> html.Div:
    return html.Div(className="ril-import", children=[
        html.H2("Import masks"),
        html.P("Per-ROI masks (<series>/<ROI name>.nii.gz), combined masks "
               "(<series>/combined.nii.gz) or label maps at the series' own path, "
               "as written by an export. Each series gets a new version; nothing is deleted.",
               className="ril-muted"),
        html.Label("Masks folder (on the server)", htmlFor=ids.IMPORT_DIR),
        dcc.Input(id=ids.IMPORT_DIR, className="ril-search ril-wide", debounce=False),
        html.Label("Mapping file (optional: mapping.json or a CSV of value,name)",
                   htmlFor=ids.IMPORT_MAPPING),
        dcc.Input(id=ids.IMPORT_MAPPING, className="ril-search ril-wide", debounce=False),
        html.Div(html.Button("Import", id=ids.IMPORT_START, className="ril-button",
                             n_clicks=0), className="ril-button-row"),
        dcc.Loading(html.Div(id=ids.IMPORT_RESULT), type="dot"),
    ])


@callback(
    Output(ids.IMPORT_RESULT, "children"),
    Input(ids.IMPORT_START, "n_clicks"),
    State(ids.IMPORT_DIR, "value"), State(ids.IMPORT_MAPPING, "value"),
    prevent_initial_call=True,
)
def run_import(_clicks, folder, mapping):
    from ril_dash.project.import_masks import import_masks

    if not folder or not str(folder).strip():
        return html.Div("Choose the folder holding the masks.", className="ril-alert "
                        "ril-alert-error")
    services = get_services()
    try:
        user = access.require_admin("import masks")
        report = import_masks(services.project, str(folder).strip(),
                              mapping=(mapping or "").strip() or None, user=user)
        services.audit.record(user, "import", None, {"folder": str(folder).strip(),
                                                     "series": len(report.imported)})
    except (RilDashError, OSError) as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    lines = [html.Div(f"Imported masks into {len(report.imported)} series; "
                      f"{len(report.errors)} refused; {len(report.missing)} had no masks.",
                      className="ril-alert ril-alert-ok", id=ids.IMPORT_DONE)]
    lines += [html.Div(s.describe(), className="ril-alert ril-alert-" +
                       ("error" if s.error else "ok")) for s in report.series if s.source]
    return lines
