"""The "Import masks" form of the export page: masks made elsewhere become annotation versions.

It accepts the layouts :func:`ril_dash.project.import_masks.import_masks` reads (one binary
mask per ROI, a combined bitwise mask, or label maps with a value → ROI mapping file), matched
to the series by their relative path. Each series gets one new version with provenance
"import"; locked ROIs are never changed; a series whose masks do not fit its geometry is
refused with the reason, and the others are still imported.

The import is a job (:mod:`ril_dash.jobs`), run in a Dash background callback with a progress
bar; Cancel stops it between series (those imported so far keep their complete new version).
It is listed on the Jobs page too.
"""

from __future__ import annotations

import dash
from dash import State, dcc, html

from ril_dash.application.jobs import IMPORT, start_import
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.components.job_views import JobControls, outcome, run_in_background
from ril_dash.ui.services import get_services

CONTROLS = JobControls(IMPORT, start=ids.IMPORT_START, cancel=ids.IMPORT_CANCEL,
                       progress=ids.IMPORT_PROGRESS, status=ids.IMPORT_STATUS,
                       job=ids.IMPORT_JOB, result=ids.IMPORT_RESULT)


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
        *CONTROLS.layout("Import"),
    ])


@CONTROLS.callbacks([State(ids.IMPORT_DIR, "value"), State(ids.IMPORT_MAPPING, "value")])
def run_import(set_progress, _clicks, folder, mapping):
    """Check that the user is an admin, create the import job and run it here."""
    if not folder or not str(folder).strip():
        return html.Div("Choose the folder holding the masks.", className="ril-alert "
                        "ril-alert-error")
    try:
        who = access.actor_of_cookies(dash.callback_context.cookies)
        job = start_import(get_services(), who, str(folder).strip(),
                           (mapping or "").strip() or None)
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    return outcome(run_in_background(job, set_progress), done_id=ids.IMPORT_DONE)
