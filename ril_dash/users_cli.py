"""``ril-dash users PROJECT_DIR add|remove|passwd|list``: the project's users file (logins
for serving) from the command line; changes are audited as the OS user or ``--user``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_users_parser", "users_command"]


def add_users_parser(sub) -> None:
    """Add ``users`` to the sub-commands ``sub`` of the ``ril-dash`` parser."""
    p_users = sub.add_parser("users", help="manage the users file (logins for serving)",
                             description="Add, remove, re-password or list the users of "
                                         "PROJECT_DIR/users.yaml. Passwords are asked on the "
                                         "terminal (or read from stdin with --password-stdin) "
                                         "and stored only as salted hashes.")
    p_users.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    users_sub = p_users.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    p_uadd = users_sub.add_parser("add", help="add a user")
    p_uadd.add_argument("name", metavar="NAME", help="1-64 letters, digits or . _ - @")
    p_uadd.add_argument("--admin", action="store_true", help="may manage the project")
    p_uadd.add_argument("--display-name", metavar="X", help="name shown in the app")
    p_uadd.add_argument("--password-stdin", action="store_true",
                        help="read the password as one line from stdin (for scripts)")
    p_urm = users_sub.add_parser("remove", help="remove a user")
    p_urm.add_argument("name", metavar="NAME")
    p_upw = users_sub.add_parser("passwd", help="change a user's password")
    p_upw.add_argument("name", metavar="NAME")
    p_upw.add_argument("--password-stdin", action="store_true",
                       help="read the password as one line from stdin (for scripts)")
    users_sub.add_parser("list", help="list the users")


def users_command(args: argparse.Namespace) -> None:
    """``ril-dash users PROJECT_DIR add|remove|passwd|list`` (changes audited as the OS user)."""
    from ril_dash.application import accounts
    from ril_dash.cli import cli_actor
    from ril_dash.project.users import check_name, read_password

    project_dir = Path(args.project_dir)
    if args.users_action == "list":
        users = accounts.users_file(project_dir)
        rows = users.list()
        if not rows:
            print(f"No users in {users.path}. Add one with: ril-dash users {project_dir} "
                  f"add NAME --admin")
            return
        width = max(len(name) for name, _, _ in rows)
        for name, admin, display_name in rows:
            print(f"{name:<{width}}  {'admin' if admin else 'user '}  {display_name}")
        return
    actor, name = cli_actor(args), check_name(args.name)
    path = accounts.users_file(project_dir).path

    def password() -> str:
        return read_password(name, args.password_stdin)

    if args.users_action == "add":
        accounts.add_user(project_dir, actor, name, password, admin=args.admin,
                          display_name=args.display_name)
        print(f"Added {'admin ' if args.admin else ''}user {name} to {path}.")
    elif args.users_action == "remove":
        ended = accounts.remove_user(project_dir, actor, name)
        print(f"Removed user {name} from {path} (ended {ended} session(s)).")
    else:  # passwd
        ended = accounts.change_password(project_dir, actor, name, password)
        print(f"Changed the password of {name} (ended {ended} session(s)).")
