"""Run-time settings shared by the CLI and the app, and the per-user data folder.

The data folder holds the generated demo project and caches. It follows XDG conventions:
``$RIL_DASH_HOME`` if set, else ``$XDG_DATA_HOME/ril-dash``, else ``~/.local/share/ril-dash``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8050
#: more reverse proxies than this in front of one server is a configuration mistake
MAX_TRUSTED_PROXIES = 10


def check_trusted_proxies(count: int, option: str = "--trusted-proxies") -> int:
    """``count`` if it is a sensible number of reverse proxies, else ValueError saying what to
    give (see :mod:`ril_dash.ui.proxies`)."""
    if not 0 <= count <= MAX_TRUSTED_PROXIES:
        raise ValueError(f"{option} must be the number of reverse proxies in front of the "
                         f"server, between 0 (none, the default) and {MAX_TRUSTED_PROXIES}, "
                         f"not {count}")
    return count


def data_home() -> Path:
    """Return the per-user data folder (not created).

    Examples
    --------
    >>> import os
    >>> os.environ["RIL_DASH_HOME"] = "/tmp/rd"
    >>> str(data_home())
    '/tmp/rd'
    >>> del os.environ["RIL_DASH_HOME"]
    """
    explicit = os.environ.get("RIL_DASH_HOME")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "ril-dash"


@dataclass(frozen=True)
class Settings:
    """What a server needs to start."""

    project_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    debug: bool = False
    #: bytes of decoded volumes kept in memory per server process
    volume_cache_bytes: int = 3 * 1024**3
    #: multi-user mode: every request needs a logged-in user (always on beyond loopback)
    login_required: bool = False
    #: a workflow file given at run time (else the ``workflow:`` of project.yaml, if any)
    workflow_file: Path | None = None
    #: waitress worker threads (per process)
    threads: int = 8
    #: server processes sharing the listening socket (``ril_dash.serving``: gunicorn when > 1)
    workers: int = 1
    #: where gunicorn writes one line per request (a file, or ``-``: standard output)
    access_log: str | None = None
    #: mark the session cookie Secure (set when a TLS proxy serves the app over HTTPS)
    secure_cookies: bool = False
    #: seconds a series lease lasts unless the open viewer renews it
    lease_seconds: float = 120.0
    #: extra folders of model bundles (``--plugins``), searched after PROJECT/plugins
    plugin_dirs: tuple[Path, ...] = ()
    #: further ``Host`` names the server answers to (``--allowed-host``, e.g. a reverse proxy's)
    allowed_hosts: tuple[str, ...] = ()
    #: reverse proxies in front of the server whose ``X-Forwarded-For`` gives the client
    #: address (``--trusted-proxies``; 0: the header is ignored)
    trusted_proxies: int = 0
    #: the job broker (``--broker redis://HOST:6379/0``): jobs run on Celery workers; None:
    #: in the server's own processes
    broker: str | None = None
