"""The users of a project: add one, remove one, change a password — audited.

The users file (:mod:`ril_dash.project.users`) is managed from the command line by whoever runs
the server, so the actor is the operating-system user (:func:`ril_dash.cli.cli_actor`). Removing
a user or changing a password ends that user's sessions at once. The audit line names the user
changed, never the password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ril_dash.application.policy import Actor
from ril_dash.errors import InvalidUsers
from ril_dash.project.audit import AuditLog
from ril_dash.project.sessions import SessionStore
from ril_dash.project.users import UsersFile, check_name, display_name_problem


def users_file(project_dir: str | os.PathLike) -> UsersFile:
    project_dir = Path(project_dir)
    if not (project_dir / "project.yaml").is_file():
        raise InvalidUsers(f"{project_dir} is not a ril_dash project (no project.yaml); "
                           f"create one with 'ril-dash init'")
    return UsersFile.for_project(project_dir)


Password = str | Callable[[], str]  # or a function that asks for it, once the rest is checked


def _value(password: Password) -> str:
    return password() if callable(password) else password


def add_user(project_dir: str | os.PathLike, actor: Actor, name: str, password: Password, *,
             admin: bool = False, display_name: str | None = None) -> UsersFile:
    """Add user ``name`` (InvalidUsers for a bad or taken name, display name or password)."""
    users = users_file(project_dir)
    name = check_name(name)
    if name in users.load():
        raise InvalidUsers(f"user {name} already exists in {users.path}; use 'passwd' to "
                           f"change its password or 'remove' it first")
    if display_name is not None:
        problem = display_name_problem(display_name)
        if problem:
            raise InvalidUsers(f"--display-name: {problem}")
    users.add(name, _value(password), admin=admin, display_name=display_name)
    AuditLog.for_project(project_dir).record(actor.user, "user_add", None,
                                             {"name": name, "admin": bool(admin)})
    return users


def remove_user(project_dir: str | os.PathLike, actor: Actor, name: str) -> int:
    """Remove user ``name`` and end their sessions; returns how many sessions ended."""
    users = users_file(project_dir)
    name = check_name(name)
    users.remove(name)
    ended = SessionStore.for_project(project_dir).delete_user(name)
    AuditLog.for_project(project_dir).record(actor.user, "user_remove", None,
                                             {"name": name, "sessions_ended": ended})
    return ended


def change_password(project_dir: str | os.PathLike, actor: Actor, name: str,
                    password: Password) -> int:
    """Give user ``name`` a new password and end their sessions; returns how many ended."""
    users = users_file(project_dir)
    name = check_name(name)
    if name not in users.load():
        raise InvalidUsers(f"no user {name!r} in {users.path}")
    users.set_password(name, _value(password))
    ended = SessionStore.for_project(project_dir).delete_user(name)
    AuditLog.for_project(project_dir).record(actor.user, "password_change", None,
                                             {"name": name, "sessions_ended": ended})
    return ended
