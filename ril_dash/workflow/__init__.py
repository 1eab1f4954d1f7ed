"""Workflows that move series between pools of users: the workflow YAML (:mod:`.schema`) and a
pure state machine of the actions each user may take on a series (:mod:`.machine`).

Nothing here reads or writes project files or imports :mod:`ril_dash.project` or the UI; the
workflow state of each series is stored by :mod:`ril_dash.project.workflow_state`.
"""
