"""The job workers on the Jobs page (admins, lab mode only): which ``ril-dash worker`` processes
are connected to the broker now, the project's queues each takes, and the jobs each runs.

The broker is asked with a short timeout when the page opens and every 10 s after
(:meth:`~ril_dash.application.job_tier.Brokered.workers`); a broker that does not answer is
said in place of the table. The web server's own callback workers (queue ``web``) are listed
too: they run the pages' long actions and follow the jobs.
"""

from __future__ import annotations

from dash import Input, Output, callback, dcc, html

from ril_dash.application.job_tier import Brokered
from ril_dash.errors import RilDashError
from ril_dash.ui import access, ids
from ril_dash.ui.services import get_job_tier, get_services

__all__ = ["workers_section", "workers_table"]

REFRESH_MS = 10_000


def workers_table() -> html.Div | html.Table:
    """The table of the workers (or why there is none)."""
    tier = get_job_tier()
    try:
        rows = tier.workers(get_services(), access.actor())
    except RilDashError as exc:
        return html.Div(str(exc), className="ril-alert ril-alert-error")
    if not rows:
        return html.Div("No worker takes this project's jobs now: start one with "
                        "ril-dash worker PROJECT --broker URL. Jobs wait in their queue "
                        "until one does.", className="ril-alert ril-alert-warning",
                        id=ids.JOB_WORKERS_NONE)
    body = []
    for row in rows:
        running = ", ".join(f"{kind} of {owner} ({job_id[:8]})"
                            for job_id, kind, owner in row["running"]) or "idle"
        body.append(html.Tr([html.Td(row["name"], className="ril-worker-name"),
                             html.Td(", ".join(row["queues"]), className="ril-worker-queues"),
                             html.Td(running, className="ril-worker-running")],
                            **{"data-worker": row["name"]}))
    return html.Table(className="ril-jobs-table ril-workers", children=[
        html.Thead(html.Tr([html.Th(h) for h in ("Worker", "Queues", "Running")])),
        html.Tbody(body)])


def workers_section(admin: bool) -> list:
    """The section of the Jobs page (empty unless an admin looks and jobs go to a broker)."""
    if not admin or not isinstance(get_job_tier(), Brokered):
        return []
    return [html.H3("Job workers"),
            dcc.Interval(id=ids.JOB_WORKERS_TIMER, interval=REFRESH_MS),
            html.Div(workers_table(), id=ids.JOB_WORKERS)]


@callback(Output(ids.JOB_WORKERS, "children"), Input(ids.JOB_WORKERS_TIMER, "n_intervals"),
          prevent_initial_call=True)
def refresh_workers(_ticks):
    return workers_table()
