"""The rights policy as a table: user × pool × state × right → allowed, or the reason refused.

Pure functions of :mod:`ril_dash.application.policy`, without HTTP, files or Flask: the same
rules the server applies to every request (the HTTP tests in tests/ui/test_rights.py check the
wiring).
"""

import pytest

from ril_dash.application.policy import (
    Actor,
    SeriesState,
    admin_decision,
    export_any,
    is_admin,
    job_decision,
    rules_for,
    series_decision,
)
from ril_dash.errors import PermissionDenied
from ril_dash.workflow.schema import parse_workflow_yaml
from tests.workflow.example import EXAMPLE

WF = parse_workflow_yaml(EXAMPLE)
S = "P1/ct.nii.gz"
IN_POOL = "it is in the pool 'analysts'"

# (user, users-file admin, state, right, refusal reason or None when allowed)
TABLE = [
    # analysts: annotate only what they hold
    ("ana", False, SeriesState("analysts", "ana"), "annotate", None),
    ("ana", False, SeriesState("analysts", "ana"), "read", None),
    ("ana", False, SeriesState("analysts", None), "read", None),
    ("ana", False, SeriesState("analysts", None), "annotate",
     f"{IN_POOL} and nobody holds it; acquire it on the Workflow page first"),
    ("bob", False, SeriesState("analysts", "ana"), "annotate", f"{IN_POOL} and is held by ana"),
    ("ana", False, SeriesState("analysts", "ana"), "review",
     f"{IN_POOL}, whose members may not review"),
    ("ana", False, SeriesState("analysts", "ana"), "export",
     f"{IN_POOL}, whose members have no export right"),
    # a series in another pool
    ("ana", False, SeriesState("reviewers", "rita"), "read",
     "it is in the pool 'reviewers', and you are not a member of it (your pools: analysts)"),
    ("rita", False, SeriesState("reviewers", "rita"), "review", None),
    ("rita", False, SeriesState("reviewers", "rita"), "annotate", None),
    ("rita", False, SeriesState("reviewers", None), "review",
     "it is in the pool 'reviewers' and nobody holds it; acquire it on the Workflow page first"),
    # scientists read and export without holding
    ("sam", False, SeriesState("scientists", None), "read", None),
    ("sam", False, SeriesState("scientists", None), "export", None),
    ("sam", False, SeriesState("scientists", "sam"), "annotate",
     "it is in the pool 'scientists', whose members may not annotate"),
    ("sam", False, SeriesState("analysts", None), "export",
     f"{IN_POOL}, and you are not a member of it (your pools: scientists)"),
    # a user in no pool
    ("eve", False, SeriesState("analysts", None), "read",
     f"{IN_POOL}, and you are not a member of it (your pools: none)"),
    # admins of the workflow and of the users file may do everything
    ("root", False, SeriesState("analysts", "ana"), "annotate", None),
    ("root", False, SeriesState("scientists", None), "export", None),
    ("alice", True, SeriesState("reviewers", "rita"), "annotate", None),
    ("alice", True, SeriesState("scientists", None), "review", None),
]


@pytest.mark.parametrize("user,admin,state,right,reason", TABLE)
def test_series_rights_table(user, admin, state, right, reason):
    decision = series_decision(WF, state, Actor(user, admin), right, S)
    assert decision.allowed is (reason is None)
    if reason is None:
        assert decision.reason is None
        decision.check()
    else:
        verb = {"read": "open"}.get(right, right)
        assert decision.reason == f"{user} may not {verb} {S}: {reason}."
        with pytest.raises(PermissionDenied, match="may not"):
            decision.check()


@pytest.mark.parametrize("right", ["read", "annotate", "review", "export"])
@pytest.mark.parametrize("user", ["ana", "eve", "sam"])
def test_without_a_workflow_every_user_may_use_every_series(user, right):
    assert series_decision(None, None, Actor(user), right, S).allowed


@pytest.mark.parametrize("workflow", [None, WF])
@pytest.mark.parametrize("user,admin,allowed", [
    ("ana", False, False), ("eve", False, False), ("root", False, True), ("alice", True, True),
])
def test_admin_only_tasks(workflow, user, admin, allowed):
    if workflow is None and user == "root":
        allowed = False  # root is an admin of the workflow only
    decision = admin_decision(workflow, Actor(user, admin), "import masks")
    assert decision.allowed is allowed
    assert is_admin(workflow, Actor(user, admin)) is allowed
    if not allowed:
        assert decision.reason == f"Only an administrator may import masks; {user} is not one."


@pytest.mark.parametrize("user,admin,allowed", [
    ("sam", False, True), ("ana", False, False), ("rita", False, False), ("eve", False, False),
    ("root", False, True), ("alice", True, True),
])
def test_export_at_all(user, admin, allowed):
    assert export_any(WF, Actor(user, admin)) is allowed
    assert export_any(None, Actor(user, admin))


def test_users_file_admins_join_the_workflows_admins_and_nobody_else_does():
    assert rules_for(WF, Actor("ana")) is WF
    assert rules_for(WF, Actor("root")) is WF
    assert rules_for(None, Actor("alice", True)) is None
    assert rules_for(WF, Actor("alice", True)).admins == WF.admins | {"alice"}


@pytest.mark.parametrize("user,admin,allowed", [
    ("ana", False, True), ("bob", False, False), ("root", False, True), ("alice", True, True),
])
def test_a_job_is_its_owners_and_the_admins(user, admin, allowed):
    decision = job_decision(WF, Actor(user, admin), "ana", "cancel")
    assert decision.allowed is allowed
    if not allowed:
        assert decision.reason == ("bob may not cancel a job of ana: only its owner or an "
                                   "administrator may.")
