"""The application layer: every change a user can make, as one request-free function.

Routes, Dash callbacks, the command line and job workers call these functions alike, with the
project's :class:`~ril_dash.application.services.Services` and the acting
:class:`~ril_dash.application.policy.Actor`. Each one

1. checks the actor's rights with the pure functions of :mod:`~ril_dash.application.policy`
   (users file + workflow state → allowed, or a refusal that says why),
2. performs the domain operation (:mod:`ril_dash.project`),
3. records the audit line, and
4. returns a result object that the caller turns into a reply.

Modules:

- :mod:`~ril_dash.application.policy` — the rights rules, pure (no file, no request);
- :mod:`~ril_dash.application.services` — one process's open project, caches, store, leases,
  audit log and the workflow in force;
- :mod:`~ril_dash.application.rights` — the policy applied to a series' stored state;
- :mod:`~ril_dash.application.leases` — take, renew, release and break series leases;
- :mod:`~ril_dash.application.series_edits` — paint, points, text values, undo, redo, rollback;
- :mod:`~ril_dash.application.moves` — workflow moves (acquire, return, assign, approve, …);
- :mod:`~ril_dash.application.definitions` — the project's ROI and text-field definitions;
- :mod:`~ril_dash.application.transfer` — export and import of masks and tables;
- :mod:`~ril_dash.application.repairs` — series with damaged annotation files, and their repair.

Nothing here imports dash, flask, werkzeug or plotly (an import-linter contract checks it).
"""
