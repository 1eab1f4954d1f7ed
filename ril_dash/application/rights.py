"""The rights policy applied to what is stored: a series' workflow state, looked up once.

:mod:`~ril_dash.application.policy` decides from plain values; these helpers fetch the series'
state from the annotation store (through :class:`~ril_dash.application.services.Services`) and
raise :class:`~ril_dash.errors.PermissionDenied` with the policy's reason when refused. An id
that is not a series of the project raises :class:`~ril_dash.errors.SeriesNotFound` before
anything else is looked at or written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ril_dash.application import policy
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.project.workflow_state import board_states, current_state
from ril_dash.workflow.machine import SeriesState, initial_state


def series_state(services: Services, series: str) -> SeriesState | None:
    """The workflow state of ``series`` (None when no workflow is in force)."""
    if services.workflow is None:
        return None
    return current_state(services.annotations(series), services.workflow)


@dataclass(frozen=True)
class SeriesView:
    """What one actor may see of many series at once (the project grid): ``states`` (None
    without a workflow), ``readable(id)`` (may open it, and so see its annotations) and
    ``shows_metadata(id)`` (may see its metadata columns: only where readable, unless
    project.yaml's ``settings.metadata_visible_to: everyone`` shows them to every user)."""

    states: Mapping[str, SeriesState] | None
    readable: Callable[[str], bool]
    shows_metadata: Callable[[str], bool]


def _everything(_series: str) -> bool:
    return True


def series_view(services: Services, actor: Actor, series_ids: Iterable[str], *,
                annotated: set[str] | None = None,
                summaries: Mapping[str, dict] | None = None) -> SeriesView:
    """:class:`SeriesView` of ``series_ids`` for ``actor``, from the store's summaries (one
    read for all series); ``annotated`` and ``summaries`` as the caller already has them."""
    workflow = services.workflow
    states = None if workflow is None else board_states(
        services.project.config.annotations, series_ids, workflow, annotated=annotated,
        summaries=summaries)
    if states is None or policy.is_admin(workflow, actor):
        readable = _everything
    else:
        def readable(series: str) -> bool:
            return _reads(workflow, actor, states[series])
    everyone = services.project.config.metadata_visible_to == "everyone"
    return SeriesView(states, readable, _everything if everyone else readable)


def _reads(workflow, actor: Actor, state: SeriesState) -> bool:
    return state.owner == actor.user or policy.may(workflow, state, actor, "read")


@dataclass(frozen=True)
class StateView:
    """What one actor may see of every series in one workflow ``state`` (None without a
    workflow): :class:`SeriesView`'s ``readable`` and ``shows_metadata`` for them."""

    state: SeriesState | None
    readable: bool
    shows_metadata: bool


def unannotated_view(services: Services, actor: Actor) -> StateView:
    """:class:`StateView` of the series without any version (the workflow's initial state):
    the same answer as :func:`series_view` gives each of them, computed once."""
    workflow = services.workflow
    if workflow is None:
        return StateView(None, True, True)
    state = initial_state(workflow)
    readable = policy.is_admin(workflow, actor) or _reads(workflow, actor, state)
    everyone = services.project.config.metadata_visible_to == "everyone"
    return StateView(state, readable, readable or everyone)


def decision(services: Services, actor: Actor, series: str, right: str) -> policy.Decision:
    """The policy's answer for ``actor`` exercising ``right`` on ``series`` now (its state is
    looked up only when a workflow applies to the actor)."""
    workflow = services.workflow
    if workflow is None or policy.is_admin(workflow, actor):
        return policy.ALLOWED
    return policy.series_decision(workflow, series_state(services, series), actor, right,
                                  series)


def may(services: Services, actor: Actor, series: str, right: str) -> bool:
    """Whether ``actor`` may exercise ``right`` on ``series`` now."""
    return decision(services, actor, series, right).allowed


def require(services: Services, actor: Actor, series: str, right: str) -> None:
    """Raise unless ``actor`` may exercise ``right`` on ``series`` (a series of the project)."""
    services.project.get_series(series)
    decision(services, actor, series, right).check()


def require_admin(services: Services, actor: Actor, what: str) -> None:
    """Raise unless ``actor`` is an admin (``what`` names the task in the refusal)."""
    policy.admin_decision(services.workflow, actor, what).check()


def is_admin(services: Services, actor: Actor) -> bool:
    """Whether ``actor`` is an admin of this project now."""
    return policy.is_admin(services.workflow, actor)


def may_export_any(services: Services, actor: Actor) -> bool:
    """Whether ``actor`` may export any series at all."""
    return policy.export_any(services.workflow, actor)
