"""HTTP routes of series leases (on the slice API blueprint of :mod:`ril_dash.ui.routes`).

The viewer takes the lease of its series when it opens (in the page layout), renews it while it
stays open and gives it up when the page is left (``navigator.sendBeacon``); a closed laptop or a
crashed browser simply lets the lease expire. See :mod:`ril_dash.ui.access` for the rules.

- ``GET  /ril/api/lease?series`` → ``{editable, reason, holder, can_break}`` (takes nothing)
- ``POST /ril/api/lease {series, action}`` with ``action`` one of ``renew`` (take or renew),
  ``release``, ``break`` (admins: break whoever's lease, then take it) or ``repair`` (admins:
  roll a series with a damaged annotation file forward, see
  :mod:`ril_dash.application.repairs`, then take the lease) → the same object (``repair`` adds
  ``repaired: {version, restored, set_aside}``)
"""

from __future__ import annotations

from flask import jsonify

from ril_dash.ui import access
from ril_dash.ui.routes import BadRequest, blueprint, series_arg
from ril_dash.ui.request_checks import checked_json

ACTIONS = ("renew", "release", "break", "repair")


@blueprint.get("/lease")
def lease_status():
    return jsonify(access.editing_status(series_arg(), take=False))


@blueprint.post("/lease")
def lease_action():
    body = checked_json()
    if not isinstance(body, dict):
        raise BadRequest("send a JSON object {series, action}")
    series, action = body.get("series"), body.get("action")
    if not isinstance(series, str) or not series:
        raise BadRequest("missing 'series'")
    if action not in ACTIONS:
        raise BadRequest(f"'action' must be one of {', '.join(ACTIONS)}")
    access.require(series, "read")  # unknown or escaping ids: 404
    if action == "release":
        released = access.release_lease(series)
        return jsonify(released=released, **access.editing_status(series, take=False))
    if action == "break":
        access.break_lease(series)
    if action == "repair":
        done = access.repair_series(series)
        return jsonify(repaired={"version": done.version, "restored": done.restored,
                                 "set_aside": list(done.set_aside)},
                       **access.editing_status(series, take=True))
    return jsonify(access.editing_status(series, take=True))
