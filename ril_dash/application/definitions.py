"""Changes of the project's definitions: its ROIs and text fields (admins only).

Each command checks that the actor is an admin, makes the change through
:mod:`ril_dash.project.roi_editing` / :mod:`ril_dash.project.text_field_editing` (file lock,
compare-and-swap on the file's hash, strict validation, atomic write), makes this process use
the new project.yaml, records a ``definitions`` audit line naming the change, and returns the
new :class:`~ril_dash.project.schema.ProjectConfig`. Deleting an ROI clears its voxels as a new
version of each series that used it, in the actor's name.

Every command takes ``(services, actor, name, …)`` (``name``: the ROI or field changed) followed by the keyword arguments of the
domain function it wraps, e.g.::

    add_roi(services, actor, "Liver", "RID58", "#c8763c", expected_sha256=sha)
    delete_roi(services, actor, "Liver", confirm_series_count=3, expected_sha256=sha)
"""

from __future__ import annotations

import functools
from typing import Callable

from ril_dash.application import rights
from ril_dash.application.policy import Actor
from ril_dash.application.services import Services
from ril_dash.project import roi_editing, text_field_editing
from ril_dash.project.schema import ProjectConfig

__all__ = ["add_roi", "add_text_field", "delete_roi", "delete_text_field", "move_roi",
           "move_text_field", "update_roi", "update_text_field"]

WHAT = "change the project's ROIs and text fields"


def _command(change: Callable[..., ProjectConfig], label: str, *, pass_user: bool = False):
    """The application command for the domain function ``change`` (audited as ``label``)."""

    @functools.wraps(change)
    def command(services: Services, actor: Actor, item: str, /, *args,
                **kwargs) -> ProjectConfig:
        rights.require_admin(services, actor, WHAT)
        if pass_user:
            kwargs["user"] = actor.user
        config = change(services.project.dir, item, *args, **kwargs)
        services.reload_config()
        detail = {"change": label, "name": item}
        if kwargs.get("name") not in (None, item):
            detail["new_name"] = kwargs["name"]
        services.audit.record(actor.user, "definitions", None, detail)
        return config

    command.__doc__ = (f"{label.capitalize()} (admins only; audited). Wraps "
                       f":func:`{change.__module__}.{change.__name__}`.")
    return command


add_roi = _command(roi_editing.add_roi, "add ROI")
update_roi = _command(roi_editing.update_roi, "change ROI")
move_roi = _command(roi_editing.move_roi, "move ROI")
delete_roi = _command(roi_editing.delete_roi, "delete ROI", pass_user=True)
add_text_field = _command(text_field_editing.add_text_field, "add text field")
update_text_field = _command(text_field_editing.update_text_field, "change text field")
move_text_field = _command(text_field_editing.move_text_field, "move text field")
delete_text_field = _command(text_field_editing.delete_text_field, "delete text field")
