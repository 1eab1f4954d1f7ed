"""HTTP route of the semi-automatic contouring tools (on the slice API blueprint).

``POST /ril/api/contour`` with a JSON request (see
:func:`ril_dash.project.contouring.parse_contour_request`: ``tool`` = snap, auto, batch or
interpolate, the ROI, plane, slice, the version the user sees, ``preset``, ``params``...) and
the overlay style. Snap, auto-contouring and fill between slices run at once; batch contouring
runs as a job (kind ``contour``, listed on the Jobs page with its progress) in this request's
thread (or on a job worker when the server has a broker), so the answer comes when it is done. The answer is that of ``/ril/api/edit`` (changed,
the overlay of the slice on screen, the slice summary) plus ``message``, ``slices`` (the slices
produced) and, for batch, ``job`` and ``skipped``. Refusals are 422 with a message; nothing is
written.
"""

from __future__ import annotations

from flask import jsonify

from ril_dash.application.contouring import contour_series, start_batch_contour
from ril_dash.application.series_edits import outcome
from ril_dash.errors import EditRefused
from ril_dash.jobs import DONE
from ril_dash.project.contouring import parse_contour_request
from ril_dash.ui import access
from ril_dash.ui.annotation_routes import change_summary, overlay_of, series_body, style_of
from ril_dash.ui.routes import blueprint
from ril_dash.ui.services import get_job_tier, get_services


def _batch(services, actor, series, req):
    job = start_batch_contour(services, actor, series, req)
    ended = get_job_tier().run(services, job)
    if ended.state != DONE:
        raise EditRefused(f"Batch contouring did not finish ({ended.state}): "
                          f"{ended.error or 'see the Jobs page'}")
    return job.id, ended.result


@blueprint.post("/contour")
def contour():
    body, series = series_body()
    req = parse_contour_request(body)
    services, actor = get_services(), access.actor()
    if req.tool == "batch":
        job_id, result = _batch(services, actor, series, req)
        change = outcome(services.annotations(series), result["version"])
        extra = {"job": job_id, "skipped": result["skipped"], "message": result["message"],
                 "slices": result["slices"]}
    else:
        done, change = contour_series(services, actor, series, req)
        extra = {"message": done.message, "slices": list(done.slices)}
    return jsonify(changed=change.changed, **extra,
                   overlay=overlay_of(change.state, req.plane, req.index, style_of(body)),
                   **change_summary(change, req.plane))
