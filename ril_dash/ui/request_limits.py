"""Checks every request passes before anything reads it: its ``Host`` and its body size.

- **Host** (against DNS rebinding): a page on another site whose name was re-pointed at this
  server's address sends its own name as ``Host``. Only these names are served: ``localhost``,
  any IP address literal (``127.0.0.1``, ``[::1]``, a LAN address), the ``--host`` the server
  listens on, this computer's host name, and the names given with ``--allowed-host`` (the name
  of a reverse proxy); anything else gets 400 with what to do. The port is not compared (a
  proxy may forward ``Host`` without it).
- **Body size**: a request announcing a body larger than its route allows gets 413 before the
  body is read. The bound is :data:`BODY_BYTES` for forms, the JSON API and Dash callbacks;
  Dash callbacks of a user who may upload models (the only large legitimate requests: a bundle
  ``.zip`` on the Models page, a ``.keras`` file in the model wizard, sent base64-encoded in the
  callback) may reach :data:`UPLOAD_BODY_BYTES`. Bodies without a ``Content-Length`` (chunked)
  are cut at the same bound while they are read. The WSGI server gets
  :data:`UPLOAD_BODY_BYTES` as its own limit.
"""

from __future__ import annotations

import ipaddress
import socket

import flask
from flask import jsonify, request

from ril_dash.models.wizard_files import MAX_UPLOAD_BYTES as WIZARD_UPLOAD_BYTES
from ril_dash.ui.pages.models_page import MAX_UPLOAD_BYTES as BUNDLE_UPLOAD_BYTES

#: the largest body of a form, a JSON API call or an ordinary Dash callback
BODY_BYTES = 4 * 1024**2
#: the largest upload callback: the biggest file base64-encoded (4/3) plus the callback's JSON
UPLOAD_BODY_BYTES = max(BUNDLE_UPLOAD_BYTES, WIZARD_UPLOAD_BYTES) * 4 // 3 + BODY_BYTES
CALLBACK_PATH = "/_dash-update-component"
ALLOWED_HOSTS_KEY = "ril_dash_allowed_hosts"
ANY_ADDRESS = ("0.0.0.0", "::", "")


def allowed_host_names(listen_host: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """The ``Host`` names (lower case, no port) served besides IP literals.

    >>> sorted(allowed_host_names("127.0.0.1", ("Lab.Example.org",)))
    ['127.0.0.1', 'lab.example.org', 'localhost']
    """
    names = {"localhost", *(name.strip().lower().rstrip(".") for name in extra)}
    if listen_host not in ANY_ADDRESS:
        names.add(listen_host.lower().strip("[]"))
    else:  # listening on every address: the URL printed at start names this computer
        for name in (socket.gethostname(), socket.getfqdn()):
            names.add(name.lower())
    return frozenset(name for name in names if name)


def host_name_of(host_header: str) -> str:
    """The name of a ``Host`` header without its port (IPv6 literals without brackets).

    >>> [host_name_of(h) for h in ("Localhost:8050", "[::1]:8050", "10.0.0.5", "a.b.")]
    ['localhost', '::1', '10.0.0.5', 'a.b']
    """
    host = host_header.strip().lower()
    if host.startswith("["):  # an IPv6 literal; malformed without its closing bracket
        return host[1:].split("]", 1)[0] if "]" in host else ""
    return host.rsplit(":", 1)[0].rstrip(".") if host.count(":") == 1 else host.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def host_allowed(host_header: str | None, names: frozenset[str]) -> bool:
    """Whether a request's ``Host`` header names this server."""
    if not host_header:
        return False
    name = host_name_of(host_header)
    return name in names or _is_ip(name)


def install_request_limits(server: flask.Flask, listen_host: str,
                           allowed_hosts: tuple[str, ...] = ()) -> None:
    """Refuse foreign ``Host`` headers and over-large bodies on ``server`` (see above).

    The checks run first of all ``before_request`` functions, so a refused request never
    reaches the login guard or a route. Call after :func:`ril_dash.ui.auth.install_auth`.
    """
    server.extensions[ALLOWED_HOSTS_KEY] = allowed_host_names(listen_host, allowed_hosts)
    server.config["MAX_CONTENT_LENGTH"] = UPLOAD_BODY_BYTES
    funcs = server.before_request_funcs.setdefault(None, [])
    funcs.insert(1, _limit_body)  # right after the login guard (first): the user sets the bound
    funcs.insert(0, _check_host)


def _check_host():
    names = flask.current_app.extensions[ALLOWED_HOSTS_KEY]
    if host_allowed(request.headers.get("Host"), names):
        return None
    return jsonify(error=(
        f"Refused: this server does not answer to the name "
        f"{request.headers.get('Host', '')[:100]!r}. Open it by its address (e.g. "
        f"http://127.0.0.1:PORT), or start it with --allowed-host NAME for a name that "
        f"leads to it (a reverse proxy).")), 400


def _may_upload() -> bool:
    from ril_dash.ui.pages.models_page import rights_of_user

    return rights_of_user().manage


def body_limit() -> int:
    """The largest body the current request may have."""
    if request.path == CALLBACK_PATH and request.method == "POST" and _may_upload():
        return UPLOAD_BODY_BYTES
    return BODY_BYTES


def _limit_body():
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    length = request.content_length
    # the rights behind the upload bound are only looked up for a body that needs them
    limit = BODY_BYTES if length is not None and length <= BODY_BYTES else body_limit()
    request.max_content_length = limit  # also bounds a chunked body while it is read
    if length is not None and length > limit:
        response = jsonify(error=(
            f"Refused: the request body ({length / 2**20:.1f} MB) is larger "
            f"than this server accepts here ({limit / 2**20:.0f} MB)."))
        response.status_code = 413
        return response
    return None
