"""The workflow state machine on the example workflow: every allowed and refused transition."""

from __future__ import annotations

import pytest

from ril_dash.errors import RilDashError, TransitionNotAllowed
from ril_dash.workflow.machine import (
    Action,
    SeriesState,
    Target,
    allowed_actions,
    apply,
    assign_targets,
    can,
    initial_state,
    transition_label,
)
from ril_dash.workflow.schema import RIGHTS, parse_workflow_yaml

from .example import EXAMPLE

WF = parse_workflow_yaml(EXAMPLE)
A, RL, AS, AP, SB = (Action.ACQUIRE, Action.RELEASE, Action.ASSIGN, Action.APPROVE,
                     Action.SEND_BACK)
USERS = ("ana", "bob", "rita", "sam", "root", "eve")  # eve is in no pool
STATES = tuple(SeriesState(p, o) for p, o in [
    ("analysts", None), ("analysts", "ana"), ("analysts", "root"),
    ("reviewers", None), ("reviewers", "rita"),
    ("scientists", None), ("scientists", "sam"),
])

# (pool, owner) -> {user: allowed actions}; users not listed may do nothing
ALLOWED = {
    ("analysts", None): {"ana": [A], "bob": [A], "root": [A, AS]},
    ("analysts", "ana"): {"ana": [RL, AS], "root": [A, RL, AS]},
    ("analysts", "root"): {"root": [RL, AS]},
    ("reviewers", None): {"rita": [A], "root": [A, AS, AP, SB]},
    ("reviewers", "rita"): {"rita": [RL, AS, AP, SB], "root": [A, RL, AS, AP, SB]},
    ("scientists", None): {"sam": [A], "root": [A, AS]},
    ("scientists", "sam"): {"sam": [RL], "root": [A, RL, AS]},
}

# (pool, owner, user, action, target) -> new state, for every allowed move
RESULTS = [
    ("analysts", None, "ana", A, None, ("analysts", "ana")),
    ("analysts", None, "bob", A, None, ("analysts", "bob")),
    ("analysts", None, "root", A, None, ("analysts", "root")),
    ("analysts", None, "root", AS, "scientists", ("scientists", None)),
    ("analysts", "ana", "ana", RL, None, ("analysts", None)),
    ("analysts", "ana", "ana", AS, "reviewers", ("reviewers", None)),
    ("analysts", "ana", "ana", AS, Target("reviewers", "rita"), ("reviewers", "rita")),
    ("analysts", "ana", "root", A, None, ("analysts", "root")),
    ("analysts", "ana", "root", RL, None, ("analysts", None)),
    ("analysts", "ana", "root", AS, Target("analysts", "bob"), ("analysts", "bob")),
    ("analysts", "root", "root", RL, None, ("analysts", None)),
    ("analysts", "root", "root", AS, "reviewers", ("reviewers", None)),
    ("reviewers", None, "rita", A, None, ("reviewers", "rita")),
    ("reviewers", None, "root", A, None, ("reviewers", "root")),
    ("reviewers", None, "root", AS, Target("analysts", "ana"), ("analysts", "ana")),
    ("reviewers", None, "root", AP, None, ("scientists", None)),
    ("reviewers", None, "root", SB, None, ("analysts", None)),
    ("reviewers", "rita", "rita", RL, None, ("reviewers", None)),
    ("reviewers", "rita", "rita", AS, "analysts", ("analysts", None)),
    ("reviewers", "rita", "rita", AS, Target("analysts", "bob"), ("analysts", "bob")),
    ("reviewers", "rita", "rita", AS, "scientists", ("scientists", None)),
    ("reviewers", "rita", "rita", AS, Target("scientists", "sam"), ("scientists", "sam")),
    ("reviewers", "rita", "rita", AP, None, ("scientists", None)),
    ("reviewers", "rita", "rita", SB, None, ("analysts", None)),
    ("reviewers", "rita", "root", A, None, ("reviewers", "root")),
    ("reviewers", "rita", "root", RL, None, ("reviewers", None)),
    ("reviewers", "rita", "root", AS, "scientists", ("scientists", None)),
    ("reviewers", "rita", "root", AP, None, ("scientists", None)),
    ("reviewers", "rita", "root", SB, None, ("analysts", None)),
    ("scientists", None, "sam", A, None, ("scientists", "sam")),
    ("scientists", None, "root", A, None, ("scientists", "root")),
    ("scientists", None, "root", AS, "analysts", ("analysts", None)),
    ("scientists", "sam", "sam", RL, None, ("scientists", None)),
    ("scientists", "sam", "root", A, None, ("scientists", "root")),
    ("scientists", "sam", "root", RL, None, ("scientists", None)),
    ("scientists", "sam", "root", AS, "reviewers", ("reviewers", None)),
]

# a valid target for each allowed assign, used by the exhaustive test
_ASSIGN_TARGET = {("analysts", "ana"): "reviewers", ("reviewers", "rita"): "scientists"}


def _cases():
    for state in STATES:
        for user in USERS:
            for action in Action:
                yield state, user, action


@pytest.mark.parametrize("state", STATES, ids=str)
@pytest.mark.parametrize("user", USERS)
def test_allowed_actions_table(state, user):
    assert allowed_actions(WF, state, user) == ALLOWED[(state.pool, state.owner)].get(user, [])


@pytest.mark.parametrize(("state", "user", "action"), list(_cases()),
                         ids=lambda v: str(v))
def test_every_transition_is_allowed_or_refused(state, user, action):
    allowed = action in ALLOWED[(state.pool, state.owner)].get(user, [])
    target = None
    if action is AS:
        target = _ASSIGN_TARGET.get((state.pool, state.owner), "analysts") if user != "root" \
            else "analysts"
    if allowed:
        new = apply(WF, state, user, action, target)
        assert isinstance(new, SeriesState)
    else:
        with pytest.raises(TransitionNotAllowed) as err:
            apply(WF, state, user, action, target)
        message = str(err.value)
        assert message.startswith(f"{user} cannot {action.value.replace('_', ' ')} this "
                                  f"series (in {state.pool}): ")
        # says what the user may do instead
        others = allowed_actions(WF, state, user)
        if others:
            assert "You may: " in message
            assert all(a.value in message for a in others)
        else:
            assert message.endswith("You can do nothing with this series now.")


def test_results_cover_every_allowed_action():
    covered = {((p, o), u, a) for p, o, u, a, _, _ in RESULTS}
    expected = {(k, u, a) for k, per_user in ALLOWED.items() for u, acts in per_user.items()
                for a in acts}
    assert covered == expected


@pytest.mark.parametrize(("pool", "owner", "user", "action", "target", "after"), RESULTS)
def test_results(pool, owner, user, action, target, after):
    assert apply(WF, SeriesState(pool, owner), user, action, target) == SeriesState(*after)
    # actions may be given by name too
    assert apply(WF, SeriesState(pool, owner), user, action.value, target) == SeriesState(*after)


@pytest.mark.parametrize(("state", "user", "action", "target", "reason"), [
    (SeriesState("analysts"), "ana", RL, None, "nobody holds it"),
    (SeriesState("analysts"), "ana", AS, "reviewers", "nobody holds it; acquire it first"),
    (SeriesState("analysts"), "rita", A, None, "you are not a member of the pool 'analysts'"),
    (SeriesState("analysts"), "eve", A, None, "you are not a member"),
    (SeriesState("analysts", "ana"), "bob", A, None, ("it is held by ana; wait until it is "
                                                     "released, or ask an admin")),
    (SeriesState("analysts", "ana"), "ana", A, None, "you already hold it"),
    (SeriesState("analysts", "ana"), "bob", RL, None, "only its holder or an admin can release"),
    (SeriesState("analysts", "ana"), "bob", AS, "reviewers", ("only its holder or an admin can "
                                                             "assign it")),
    (SeriesState("analysts", "ana"), "ana", AS, "scientists",
     "the pool 'analysts' may only assign to: reviewers"),
    (SeriesState("analysts", "ana"), "ana", AS, "analysts", "may only assign to: reviewers"),
    (SeriesState("analysts", "ana"), "ana", AS, Target("reviewers", "ana"),
     "ana is not a member of the pool 'reviewers'"),
    (SeriesState("analysts", "ana"), "ana", AS, "nowhere", "there is no pool named 'nowhere'"),
    (SeriesState("analysts", "ana"), "ana", AS, None, "assign needs a target pool"),
    (SeriesState("analysts", "ana"), "ana", AP, None, "the pool 'analysts' has no review right"),
    (SeriesState("analysts", "ana"), "ana", SB, None, "has no review right"),
    (SeriesState("analysts", "ana"), "root", AP, None, "the pool 'analysts' has no approve_to"),
    (SeriesState("analysts", "ana"), "root", SB, None, "has no send_back_to"),
    (SeriesState("analysts", "ana"), "ana", RL, "reviewers", "release takes no target"),
    (SeriesState("reviewers", "rita"), "rita", AP, "scientists", "approve takes no target"),
    (SeriesState("reviewers", "rita"), "ana", AP, None, "only its holder or an admin"),
    (SeriesState("reviewers"), "rita", SB, None, "nobody holds it; acquire it first"),
    (SeriesState("scientists", "sam"), "sam", AS, "analysts",
     "the pool 'scientists' may only assign to: none"),
    (SeriesState("reviewers", "root"), "rita", A, None, "it is held by root"),
    (SeriesState("gone"), "ana", A, None, ("its pool 'gone' is not part of the workflow any "
                                          "more; an admin (root) must assign it")),
])
def test_refusals_say_why(state, user, action, target, reason):
    with pytest.raises(TransitionNotAllowed) as err:
        apply(WF, state, user, action, target)
    assert reason in str(err.value)
    assert isinstance(err.value, RilDashError)


def test_refusal_says_what_to_do_instead():
    with pytest.raises(TransitionNotAllowed) as err:
        apply(WF, SeriesState("reviewers", "rita"), "rita", AS, "reviewers")
    assert str(err.value) == (
        "rita cannot assign this series (in reviewers): the pool 'reviewers' may only assign "
        "to: analysts, scientists. You may: release, assign (to analysts, scientists), "
        "approve, send_back.")


def test_unknown_action():
    with pytest.raises(TransitionNotAllowed, match="unknown action 'delete'; the actions are "
                                                   "acquire, release, assign"):
        apply(WF, SeriesState("analysts"), "root", "delete")


def test_pool_removed_from_workflow_admin_can_rescue():
    state = SeriesState("gone", "ana")
    assert allowed_actions(WF, state, "ana") == []
    assert allowed_actions(WF, state, "root") == [A, RL, AS]
    assert apply(WF, state, "root", AS, "analysts") == SeriesState("analysts")
    with pytest.raises(TransitionNotAllowed, match="not part of the workflow any more; assign"):
        apply(WF, state, "root", AP)


def test_assign_targets():
    assert assign_targets(WF, SeriesState("analysts", "ana"), "ana") == [
        Target("reviewers"), Target("reviewers", "rita")]
    assert assign_targets(WF, SeriesState("reviewers", "rita"), "rita") == [
        Target("analysts"), Target("analysts", "ana"), Target("analysts", "bob"),
        Target("scientists"), Target("scientists", "sam")]
    assert assign_targets(WF, SeriesState("analysts"), "ana") == []
    assert assign_targets(WF, SeriesState("scientists", "sam"), "sam") == []
    assert [t for t in assign_targets(WF, SeriesState("scientists"), "root")
            if t.user is None] == [Target("analysts"), Target("reviewers"), Target("scientists")]
    for state in STATES:
        for user in USERS:
            for target in assign_targets(WF, state, user):
                assert apply(WF, state, user, AS, target) == SeriesState(target.pool, target.user)


# (pool, owner, user) -> rights the user has on the series now
RIGHTS_TABLE = [
    ("analysts", None, "ana", {"read"}),
    ("analysts", "ana", "ana", {"read", "annotate"}),
    ("analysts", "ana", "bob", {"read"}),
    ("analysts", "ana", "rita", set()),
    ("analysts", "ana", "eve", set()),
    ("analysts", "ana", "root", set(RIGHTS)),
    ("analysts", None, "root", set(RIGHTS)),
    ("reviewers", "rita", "rita", {"read", "annotate", "review"}),
    ("reviewers", None, "rita", {"read"}),
    ("reviewers", "rita", "ana", set()),
    ("reviewers", "root", "rita", {"read"}),
    ("scientists", None, "sam", {"read", "export"}),
    ("scientists", "sam", "sam", {"read", "export"}),
    ("scientists", "sam", "ana", set()),
    ("gone", "ana", "ana", set()),
    ("gone", None, "root", set(RIGHTS)),
]


@pytest.mark.parametrize(("pool", "owner", "user", "rights"), RIGHTS_TABLE)
def test_rights(pool, owner, user, rights):
    state = SeriesState(pool, owner)
    assert {r for r in RIGHTS if can(WF, state, user, r)} == rights


def test_unknown_right():
    with pytest.raises(ValueError, match="unknown right 'write'"):
        can(WF, SeriesState("analysts"), "ana", "write")


def test_a_series_through_the_whole_workflow():
    state = initial_state(WF)
    assert state == SeriesState("analysts", None)
    labels = []
    for user, action, target in [("ana", A, None), ("ana", AS, "reviewers"), ("rita", A, None),
                                 ("rita", SB, None), ("bob", A, None),
                                 ("bob", AS, Target("reviewers", "rita")), ("rita", AP, None),
                                 ("sam", A, None), ("sam", RL, None)]:
        new = apply(WF, state, user, action, target)
        labels.append(transition_label(state, new, user, action))
        state = new
    assert state == SeriesState("scientists", None)
    assert labels == [
        "acquire analysts by ana",
        "assign analysts → reviewers by ana",
        "acquire reviewers by rita",
        "send_back reviewers → analysts by rita",
        "acquire analysts by bob",
        "assign analysts → reviewers (rita) by bob",
        "approve reviewers → scientists by rita",
        "acquire scientists by sam",
        "release scientists by sam",
    ]


def test_labels_for_admin_lock_breaking():
    before = SeriesState("analysts", "ana")
    assert transition_label(before, apply(WF, before, "root", A), "root", A) == \
        "acquire analysts (held by ana) by root"
    assert transition_label(before, apply(WF, before, "root", "release"), "root", "release") == \
        "release analysts (held by ana) by root"


def test_html_names_are_plain_data():
    wf = parse_workflow_yaml(
        "workflow:\n  start_pool: '<b>p</b>'\n  pools:\n"
        "    '<b>p</b>': {users: ['<script>x()</script>'], rights: [annotate],"
        " assign_to: ['<b>p</b>']}\n")
    user = "<script>x()</script>"
    state = apply(wf, initial_state(wf), user, A)
    assert state == SeriesState("<b>p</b>", user) and can(wf, state, user, "annotate")
    new = apply(wf, state, user, AS, "<b>p</b>")
    assert transition_label(state, new, user, AS) == "assign <b>p</b> → <b>p</b> by " + user
    with pytest.raises(TransitionNotAllowed, match="<img> cannot acquire"):
        apply(wf, state, "<img>", A)


def test_state_is_immutable():
    state = SeriesState("analysts")
    with pytest.raises(AttributeError):
        state.owner = "ana"  # type: ignore[misc]
    assert apply(WF, state, "ana", A) is not state and state.owner is None
