"""Command line: ``ril-dash`` (also ``python run.py``).

::

    ril-dash [SERVER OPTIONS]                           serve the embedded demo project
    ril-dash serve PROJECT_DIR [SERVER OPTIONS]         serve a project
    ril-dash init PROJECT_DIR --images DIR [--annotations DIR] [--name NAME]
    ril-dash import-masks PROJECT_DIR --masks DIR [--mapping FILE]   (transfer_cli)
    ril-dash export PROJECT_DIR --out DIR [--series GLOB] [--no-per-roi] [--no-combined]
                    [--copy-images] [--copy-annotations] [--no-excel]   (transfer_cli)
    ril-dash users PROJECT_DIR add NAME [--admin] [--display-name X] [--password-stdin]
    ril-dash users PROJECT_DIR remove NAME | passwd NAME [--password-stdin] | list  (users_cli)
    ril-dash plugins PROJECT_DIR list | check BUNDLE | import ZIP | export ID[@V] OUT |
                     enable ID | disable ID | activate ID@V | trust ID@V   (see plugins_cli)
    ril-dash repair PROJECT_DIR [SERIES ...] [--user NAME]   damaged annotation files (repair_cli)
    ril-dash train PROJECT_DIR --architecture unet|cnn --bundle ID | --parent ID[@V]
                   [--roi NAME ...] [--text-field F] [--pool P | --series GLOB]   (train_cli)

SERVER OPTIONS: ``--host H --port P --login --workflow FILE --threads N --workers N
--access-log FILE --secure-cookies --lease-seconds S --plugins DIR --allowed-host NAME
--trusted-proxies N``.
On 127.0.0.1 (the default) one local user works without logging in; any
other ``--host``, or ``--login``, requires logins from the project's users file, which must hold
at least one user (:func:`startup_checks` says how to add one).

Errors the user can fix (an invalid project.yaml, a missing folder, a port in use) are printed
as one clear message and the command exits with status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import socket
import sys
from pathlib import Path

from ril_dash import __version__
from ril_dash.errors import RilDashError
from ril_dash.project import audit_trouble
from ril_dash.settings import DEFAULT_HOST, DEFAULT_PORT, Settings, check_trusted_proxies

DEFAULT_THREADS = Settings.threads
MAX_WORKERS = 32
DEFAULT_LEASE = Settings.lease_seconds
MAX_THREADS = 256
MIN_LEASE, MAX_LEASE = 10.0, 24 * 3600.0


class CliError(RilDashError):
    """A command-line request that cannot be carried out."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port_free(host: str, port: int) -> None:
    """Raise CliError with advice if ``host:port`` cannot be bound.

    Probes as the server binds (SO_REUSEADDR, as waitress does on POSIX): connections left in
    TIME_WAIT by a server that was killed do not block a restart, a listening one does.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        if os.name == "posix":  # on Windows the option would let two servers share the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); the port is probably "
                f"used by another program (another ril-dash?). Stop it or choose another port "
                f"with --port.") from None


def check_address(host: str, port: int) -> None:
    """Refuse a port out of range (before any work is done)."""
    if not host or any(ch.isspace() for ch in host):
        raise CliError(f"--host must be an address or host name, not {host!r}")
    if not 1 <= port <= 65535:
        raise CliError(f"--port must be between 1 and 65535, not {port}")


def _gunicorn_serves(workers: int) -> bool:
    from ril_dash.serving import uses_gunicorn  # not at import: it loads the web framework

    return uses_gunicorn(workers)


def settings_from_args(project_dir: Path, args: argparse.Namespace) -> Settings:
    """Check the serving options and turn them into :class:`Settings`.

    Logins are required with ``--login`` and whenever the server listens beyond this computer.
    """
    check_address(args.host, args.port)
    if not 1 <= args.threads <= MAX_THREADS:
        raise CliError(f"--threads must be between 1 and {MAX_THREADS}, not {args.threads}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise CliError(f"--workers must be between 1 and {MAX_WORKERS}, not {args.workers}")
    if args.access_log and not _gunicorn_serves(args.workers):
        raise CliError("--access-log needs --workers 2 or more on Linux or macOS (the gunicorn "
                       "server); one waitress process keeps no access log")
    if not MIN_LEASE <= args.lease_seconds <= MAX_LEASE:
        raise CliError(f"--lease-seconds must be between {MIN_LEASE:g} and {MAX_LEASE:g} "
                       f"seconds, not {args.lease_seconds:g}")
    from ril_dash.worker_cli import broker_of

    try:
        proxies = check_trusted_proxies(args.trusted_proxies)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return Settings(project_dir=Path(project_dir), host=args.host, port=args.port,
                    login_required=bool(args.login) or not _is_loopback(args.host),
                    workflow_file=args.workflow, threads=args.threads, workers=args.workers,
                    access_log=args.access_log,
                    volume_cache_bytes=Settings.volume_cache_bytes // args.workers,
                    secure_cookies=bool(args.secure_cookies), lease_seconds=args.lease_seconds,
                    plugin_dirs=tuple(args.plugins),
                    allowed_hosts=tuple(args.allowed_host), trusted_proxies=proxies,
                    broker=broker_of(args.broker))


def startup_checks(project, settings: Settings) -> list:
    """Everything that must hold before a server starts; return who can log in.

    Validates the workflow (InvalidWorkflow names the file, line and field). With logins on it
    also validates the users file (InvalidUsers names the line and field), refuses a users file
    without users (saying how to add one) and checks that file locks work in the annotation
    folder and the project folder: several server processes or users share them.

    Returns the :class:`~ril_dash.project.users.User` entries, sorted by name (empty when
    logins are off).
    """
    users = []
    if settings.login_required:
        from ril_dash.project.users import UsersFile

        users_file = UsersFile.for_project(project.dir)
        users = sorted(users_file.load().values(), key=lambda u: u.name)
        if not users:
            why = ("--login was given" if _is_loopback(settings.host)
                   else f"serving on {settings.host} (beyond this computer) needs logins")
            raise CliError(
                f"{why}, but {users_file.path} holds no users. Add one first with: "
                f"ril-dash users {project.dir} add NAME --admin   (it asks for the password), "
                f"then start the server again.")
    from ril_dash.application.services import load_workflow

    load_workflow(project, settings.workflow_file)
    if settings.login_required:
        from ril_dash.project import series_locks

        for folder in dict.fromkeys((Path(project.config.annotations), Path(project.dir))):
            reason = series_locks.check_locking_works(folder)
            if reason:
                raise CliError(
                    f"{reason}. Several users or server processes cannot share this project "
                    f"safely without working file locks (network mounts often lack them): "
                    f"move the project and its annotation folder to a local disk or a share "
                    f"with working locks, or serve a single user on 127.0.0.1 without --login.")
    return users


def _url(host: str, port: int) -> str:
    if host in ("0.0.0.0", "::"):
        host = socket.gethostname()
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def serve(settings: Settings) -> None:
    """Open the project, check it, build the app and serve it with waitress until interrupted."""
    from ril_dash.project.project import Project

    project = Project.open(settings.project_dir)
    users = startup_checks(project, settings)
    check_port_free(settings.host, settings.port)

    from ril_dash.serving import serve_forever

    def builder(project):
        def build_app():  # in each server process
            from ril_dash.ui.app import create_app

            return create_app(project, settings).server
        return build_app

    def reopen():  # a graceful reload (SIGHUP to gunicorn): the project as it is now
        fresh = Project.open(settings.project_dir)
        startup_checks(fresh, settings)
        return builder(fresh)

    workers = f", {settings.workers} processes" if settings.workers > 1 else ""
    print(f"ril_dash {__version__}: serving '{project.config.name}' "
          f"({len(project.series)} series) at {_url(settings.host, settings.port)}{workers}  "
          f"(Ctrl+C to stop)", flush=True)
    if settings.login_required:
        who = ", ".join(f"{u.name} (admin)" if u.admin else u.name for u in users)
        print(f"Logins required. {len(users)} user{'s' if len(users) != 1 else ''} can log in: "
              f"{who}. Manage them with: ril-dash users {project.dir} list|add|remove|passwd",
              flush=True)
    serve_forever(builder(project), settings.host, settings.port, threads=settings.threads,
                  workers=settings.workers, access_log=settings.access_log, reopen=reopen)


def _add_server_options(parser: argparse.ArgumentParser, top_level: bool = True) -> None:
    # Sub-commands must not overwrite values given before the command with their defaults.
    def default(value):
        return value if top_level else argparse.SUPPRESS

    parser.add_argument("--host", default=default(DEFAULT_HOST),
                        help=f"address to listen on (default {DEFAULT_HOST}: this computer "
                             f"only; any other address requires logins)")
    parser.add_argument("--port", type=int, default=default(DEFAULT_PORT),
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--login", action="store_true", default=default(False),
                        help="require logins even on 127.0.0.1 (users from PROJECT_DIR/"
                             "users.yaml, see 'ril-dash users')")
    parser.add_argument("--workflow", type=Path, metavar="FILE", default=default(None),
                        help="workflow file to use (default: the workflow: of project.yaml)")
    parser.add_argument("--threads", type=int, metavar="N", default=default(DEFAULT_THREADS),
                        help=f"worker threads of the server (default {DEFAULT_THREADS})")
    parser.add_argument("--workers", type=int, metavar="N", default=default(1),
                        help="server processes sharing the port and the project (default 1; "
                             "more use more cores, each with its own image cache; gunicorn "
                             "runs them on Linux and macOS)")
    parser.add_argument("--access-log", metavar="FILE", default=default(None),
                        help="with --workers 2 or more: log each request to FILE (- for the "
                             "standard output)")
    parser.add_argument("--secure-cookies", action="store_true", default=default(False),
                        help="mark the login cookie Secure (when an HTTPS proxy serves the app)")
    parser.add_argument("--lease-seconds", type=float, metavar="S",
                        default=default(DEFAULT_LEASE),
                        help=f"how long a series stays reserved for its editor without "
                             f"activity (default {DEFAULT_LEASE:g})")
    parser.add_argument("--plugins", type=Path, action="append", metavar="DIR",
                        default=default([]),
                        help="another folder of model bundles (besides PROJECT_DIR/plugins "
                             "and $RIL_DASH_PLUGINS); repeatable")
    parser.add_argument("--allowed-host", action="append", metavar="NAME", default=default([]),
                        help="another host name the server answers to (e.g. the name of a "
                             "reverse proxy in front of it); repeatable. Requests naming any "
                             "other host are refused (against DNS rebinding)")
    parser.add_argument("--trusted-proxies", type=int, metavar="N", default=default(0),
                        help="the number of reverse proxies in front of the server: take the "
                             "client address (failed-login counts, leases, audit log) from "
                             "their X-Forwarded-For header (default 0: the header is ignored)")
    from ril_dash.worker_cli import add_broker_option

    add_broker_option(parser, default(None))


def _add_user_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--user", metavar="NAME", default=None,
                        help=f"{what} (default: your login name on this computer)")


def cli_actor(args: argparse.Namespace):
    """The acting user of a command: ``--user``, else the operating-system user. Whoever runs
    the command line already has the project's files, so they act as an admin; what they do is
    recorded in the audit log under that name."""
    import getpass

    from ril_dash.application.policy import Actor

    user = getattr(args, "user", None)
    if not user:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (containers)
            user = f"uid-{os.getuid()}"
    return Actor(str(user), admin=True, host="cli")


def cli_services(project_dir: Path, plugin_dirs=()):
    """The project's services for one command-line run (checkpoints written inline);
    ``plugin_dirs``: the lab's model bundle folders (``--plugins``)."""
    from ril_dash.application.services import Services
    from ril_dash.project.project import Project

    return Services(Project.open(project_dir), background_checkpoints=False,
                    plugin_dirs=plugin_dirs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ril-dash",
        description="Annotate medical-imaging datasets for and with deep learning. "
                    "Without a command, serves the embedded demo project.")
    parser.add_argument("--version", action="version", version=f"ril_dash {__version__}")
    _add_server_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p_serve = sub.add_parser("serve", help="serve a project in the browser",
                             description="Serve PROJECT_DIR at http://HOST:PORT.")
    p_serve.add_argument("project_dir", type=Path, metavar="PROJECT_DIR",
                         help="folder holding project.yaml")
    _add_server_options(p_serve, top_level=False)

    p_demo = sub.add_parser("demo", help="serve the embedded demo project (the default)",
                            description="Create the demo project on first use and serve it.")
    _add_server_options(p_demo, top_level=False)

    p_init = sub.add_parser("init", help="create a project for a folder of NIfTI series",
                            description="Write PROJECT_DIR/project.yaml (with an example ROI and "
                                        "text field) for the series found under --images.")
    p_init.add_argument("project_dir", type=Path, metavar="PROJECT_DIR")
    p_init.add_argument("--images", type=Path, required=True, metavar="IMAGES_DIR",
                        help="folder of .nii / .nii.gz series (never written to)")
    p_init.add_argument("--annotations", type=Path, metavar="DIR",
                        help="annotation store (default PROJECT_DIR/annotations)")
    p_init.add_argument("--name", help="project name (default: the folder name)")

    from ril_dash.transfer_cli import add_transfer_parsers

    add_transfer_parsers(sub, _add_user_option)
    from ril_dash.run_model_cli import add_run_model_parser

    add_run_model_parser(sub, _add_user_option)
    from ril_dash.train_cli import add_train_parser

    add_train_parser(sub, _add_user_option)

    from ril_dash.users_cli import add_users_parser

    add_users_parser(sub)
    from ril_dash.plugins_cli import add_plugins_parser
    from ril_dash.repair_cli import add_repair_parser

    add_plugins_parser(sub, _add_user_option)
    add_repair_parser(sub, _add_user_option)
    from ril_dash.worker_cli import add_worker_parser

    add_worker_parser(sub)
    return parser


def _run(args: argparse.Namespace) -> None:
    if args.command == "init":
        from ril_dash.project.project import init_project

        project = init_project(args.project_dir, args.images, args.annotations, name=args.name)
        print(f"Created {project.dir / 'project.yaml'} with {len(project.series)} series. "
              f"Edit its ROIs and text fields, then run: ril-dash serve {project.dir}")
        return
    if args.command == "export":
        from ril_dash.transfer_cli import export_command

        export_command(args)
        return
    if args.command == "serve":
        serve(settings_from_args(args.project_dir, args))
        return
    if args.command == "users":
        from ril_dash.users_cli import users_command

        users_command(args)
        return
    if args.command == "import-masks":
        from ril_dash.transfer_cli import import_masks_command

        import_masks_command(args)
        return
    if args.command == "plugins":
        from ril_dash.plugins_cli import plugins_command

        plugins_command(args)
        return
    if args.command == "repair":
        from ril_dash.repair_cli import repair_command

        repair_command(args)
        return
    if args.command == "worker":
        from ril_dash.worker_cli import worker_command

        worker_command(args)
        return
    if args.command == "run-model":
        from ril_dash.run_model_cli import run_model_command

        run_model_command(args)
        return
    if args.command == "train":
        from ril_dash.train_cli import train_command

        train_command(args)
        return
    from ril_dash.demo.demo_project import ensure_demo_project

    settings_from_args(Path("."), args)  # refuse bad options before building the demo
    serve(settings_from_args(ensure_demo_project(), args))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ril-dash`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    with audit_trouble.collecting() as warnings:
        try:
            _run(args)
        except RilDashError as exc:
            print(f"ril-dash: error: {exc}", file=sys.stderr)
            return 2
        finally:
            for warning in warnings:  # a change saved whose audit line could not be written
                print(f"ril-dash: warning: {warning}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
