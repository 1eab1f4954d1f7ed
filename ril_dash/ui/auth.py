"""Logins for multi-user serving: the login page, sessions in cookies, and the request guard.

:func:`install_auth` adds to the Flask server of the Dash app:

- ``GET/POST /login`` (a plain server-rendered page) and ``GET/POST /logout`` (GET only shows a
  button; POST ends the session). A successful login always starts a brand-new session (a
  cookie sent before the login is ignored and its session deleted), and only redirects to a
  local path.
- a ``before_request`` guard, first of all: with logins on, every request needs a live session
  except the login page, ``/assets/ril.css`` and the favicon (``/favicon.ico`` is a redirect to
  Dash's ``/_favicon.ico``, never the index page); HTML page GETs are redirected to
  ``/login?next=…``, anything else (Dash's layout, dependencies and callbacks, assets, the
  ``/ril/api`` routes) gets ``401 {"error": "Log in first.", "login": "/login"}``. Always, logins
  on or off, a POST/PUT/PATCH/DELETE whose ``Origin`` names another host is refused (403).

Callbacks and routes ask :func:`current_user`, :func:`logins_enabled`, :func:`users_admin` and
:func:`display_name_of`; code that runs outside the request (a background callback in a worker
process) passes the request's cookies to :func:`user_of_cookies`.

Sessions live in ``<project>/.sessions`` (:mod:`ril_dash.project.sessions`), so several server
processes share them. The ``ril_session`` cookie is HttpOnly, SameSite=Lax, Path=/ and, with
``secure_cookies``, Secure. A session also ends when its user leaves the users file or changes
password (the session carries a fingerprint of the password hash). The users file
(:mod:`ril_dash.project.users`) is re-read only when its size, mtime or inode changes; a
malformed file lets nobody in until it is fixed (sessions are kept). Failed logins are counted
by :mod:`ril_dash.project.login_throttle`, shared by every server process: after 5 within 5
minutes for one user name from one address, that name is refused from that address (it still
logs in from elsewhere); after 20 from one address across names, that address is refused; both
for the rest of the window.

Developer notes::

    request ──► _guard ──► Origin check (unsafe methods) ──► logins off: g.ril_user = "local"
                                                     └──► cookie → SessionStore.lookup
                                                          → users file (cached) → g.ril_user
                                                          or 302 /login?next= | 401 JSON
"""

from __future__ import annotations

import hashlib
import html
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

import flask
from flask import g, has_app_context, has_request_context, jsonify, redirect, request

from ril_dash.errors import InvalidUsers, NotLoggedIn, RilDashError
from ril_dash.project.audit import AuditLog
from ril_dash.project.login_throttle import LoginThrottle, login_keys
from ril_dash.project.sessions import SESSIONS_DIR, SessionStore
from ril_dash.project.users import User, UsersFile

LOCAL_USER = "local"
COOKIE = "ril_session"
AUTH_KEY = "ril_dash_auth"
#: expired sessions are purged at a login at most this often (seconds)
PURGE_INTERVAL = 600.0
#: reachable without a session (the login page needs its style sheet)
PUBLIC_PATHS = frozenset({"/assets/ril.css", "/_favicon.ico", "/favicon.ico"})
#: Flask endpoints of Dash's index and catch-all page routes
PAGE_ENDPOINTS = frozenset({"/", "/<path:path>"})
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WRONG_LOGIN = "Unknown user or wrong password."

log = logging.getLogger(__name__)
#: the auth of the last app set up in this process, for calls outside a request (background
#: callbacks run in forked workers without one)
_last_installed: _Auth | None = None


# -- users file, cached by stat -----------------------------------------------------------------
class _UsersCache:
    """The users file's users, re-read only when its mtime, size or inode changes."""

    def __init__(self, users_file: UsersFile) -> None:
        self.file = users_file
        self._key: object = ()
        self._users: dict[str, User] = {}
        self._lock = threading.Lock()

    def get(self) -> dict[str, User]:
        try:
            st = os.stat(self.file.path)
            key: object = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            key = None
        except OSError as exc:
            key = ("error", str(exc))
        if key == self._key:
            return self._users
        with self._lock:
            if key != self._key:
                try:
                    users = self.file.load() if key is not None else {}
                except InvalidUsers as exc:
                    log.error("nobody can log in until the users file is fixed: %s", exc)
                    users = {}
                self._key, self._users = key, users
            return self._users


def password_stamp(user: User) -> str:
    """A fingerprint of ``user``'s password hash: a new password ends the old sessions."""
    return hashlib.sha256(user.password_hash.encode("utf-8")).hexdigest()[:16]


class _Auth:
    def __init__(self, project_dir: Path, login_required: bool, secure_cookies: bool,
                 on_logout: Callable[[str], None] | None) -> None:
        self.project_dir = Path(project_dir)
        self.login_required = bool(login_required)
        self.secure_cookies = bool(secure_cookies)
        self.on_logout = on_logout
        self.users_file = UsersFile.for_project(self.project_dir)
        self.users = _UsersCache(self.users_file)
        self.sessions = SessionStore.for_project(self.project_dir)
        self.audit = AuditLog.for_project(self.project_dir)
        self.throttle = LoginThrottle(self.project_dir / SESSIONS_DIR)
        self._last_purge = 0.0

    def session_user(self, cookies=None) -> str | None:
        """The user of the session cookie in ``cookies`` (default: this request's), or None."""
        token = (request.cookies if cookies is None else cookies).get(COOKIE)
        if not token or not isinstance(token, str):
            return None
        session = self.sessions.lookup(token)
        if session is None:
            return None
        user = self.users.get().get(session.user)
        if user is None or session.stamp != password_stamp(user):
            return None
        return user.name

    def purge_now_and_then(self) -> None:
        now = time.time()
        if now - self._last_purge >= PURGE_INTERVAL:
            self._last_purge = now
            try:
                self.sessions.purge_expired()
            except OSError as exc:  # pragma: no cover - best effort
                log.warning("could not purge expired sessions: %s", exc)

    def record(self, user: str, action: str, detail=None) -> None:
        self.audit.record(user, action, detail=detail)  # a write failure is reported there


def _auth() -> _Auth | None:
    if has_app_context():
        auth = flask.current_app.extensions.get(AUTH_KEY)
        if auth is not None:
            return auth
    return _last_installed


# -- public API -----------------------------------------------------------------------------
def logins_enabled() -> bool:
    """Whether this server requires logins."""
    auth = _auth()
    return auth is not None and auth.login_required


def current_user() -> str:
    """The logged-in user of this request (``"local"`` when logins are off).

    Raises :class:`NotLoggedIn` when logins are on and there is no logged-in user (which the
    guard normally prevents, and always outside a request)."""
    if not logins_enabled():
        return LOCAL_USER
    user = g.get("ril_user") if has_request_context() else None
    if not user:
        raise NotLoggedIn("Log in first: this server requires a login (open /login).")
    return user


def user_of_cookies(cookies) -> str | None:
    """The logged-in user named by a request's ``cookies`` mapping, or None when its session
    is not live; ``"local"`` when logins are off.

    For code that runs outside the request, e.g. a Dash background callback in a worker
    process (pass ``dash.callback_context.cookies``)."""
    auth = _auth()
    if auth is None or not auth.login_required:
        return LOCAL_USER
    return auth.session_user(cookies or {})


def users_admin(user: str) -> bool:
    """The users file's admin flag of ``user`` (``"local"`` is an admin when logins are off)."""
    auth = _auth()
    if auth is None or not auth.login_required:
        return user == LOCAL_USER
    found = auth.users.get().get(user)
    return bool(found and found.admin)


def display_name_of(user: str) -> str:
    """The name shown for ``user``: the users file's display name, else the user name."""
    auth = _auth()
    found = auth.users.get().get(user) if auth is not None and auth.login_required else None
    return found.display_name if found else user


def safe_next(target: object) -> str:
    """``target`` if it is a path on this server, else ``"/"`` (no open redirects).

    >>> [safe_next(t) for t in ("/view?series=a", "//evil.example", "/\\\\evil", "https://x")]
    ['/view?series=a', '/', '/', '/']
    """
    if not isinstance(target, str) or not target.startswith("/") or len(target) > 2000:
        return "/"
    if target.startswith(("//", "/\\")) or "\\" in target:
        return "/"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/"  # browsers drop tabs and line breaks: "/\t/evil" would become "//evil"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def install_auth(server: flask.Flask, project_dir: Path, *, login_required: bool,
                 secure_cookies: bool = False,
                 on_logout: Callable[[str], None] | None = None) -> None:
    """Add the login routes and the request guard to ``server`` (see the module docstring).

    Parameters
    ----------
    server : flask.Flask
        The Dash app's Flask server.
    project_dir : Path
        The project folder: its users file, ``.sessions/`` and audit log are used.
    login_required : bool
        Whether every request needs a logged-in user (else everyone is ``"local"``).
    secure_cookies : bool
        Mark the session cookie Secure (when an HTTPS proxy serves the app).
    on_logout : callable, optional
        Called with the user name after a logout (e.g. to release the user's series leases).
    """
    global _last_installed
    auth = _Auth(project_dir, login_required, secure_cookies, on_logout)
    server.extensions[AUTH_KEY] = auth
    _last_installed = auth
    # first of all before_request functions: nothing runs for a request that is refused
    server.before_request_funcs.setdefault(None, []).insert(0, _guard)
    if login_required:
        server.after_request(_security_headers)
    server.add_url_rule("/login", "ril_login", _login, methods=["GET", "POST"])
    server.add_url_rule("/logout", "ril_logout", _logout, methods=["GET", "POST"])
    # browsers ask for /favicon.ico: without this route Dash's catch-all would answer with its
    # index page (project name, versions) to anyone, as the path is public
    server.add_url_rule("/favicon.ico", "ril_favicon", _favicon)


def _favicon() -> flask.Response:
    return redirect("/_favicon.ico", 301)


# -- the guard ------------------------------------------------------------------------------
def _same_origin() -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    parts = urlsplit(origin.strip())
    # the scheme is not compared: behind an HTTPS proxy the app itself sees plain http
    return parts.scheme in ("http", "https") and parts.netloc.lower() == request.host.lower()


def _is_page_request() -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    rule = request.url_rule
    if rule is not None and (rule.endpoint in PAGE_ENDPOINTS or rule.endpoint == "ril_logout"):
        return True
    return any(value == "text/html" for value, _ in request.accept_mimetypes)


def _login_url() -> str:
    target = request.path + (f"?{request.query_string.decode('latin-1')}"
                             if request.query_string else "")
    return "/login?next=" + quote(safe_next(target), safe="")


def _guard():
    if request.method in UNSAFE_METHODS and not _same_origin():
        return jsonify(error="Refused: this request came from another site (its Origin "
                             "header names another host)."), 403
    auth = _auth()
    if auth is None or not auth.login_required:
        g.ril_user = LOCAL_USER
        return None
    path = request.path
    if path in PUBLIC_PATHS or path == "/login":
        return None
    user = auth.session_user()
    if user is not None:
        g.ril_user = user
        return None
    if path == "/logout" and request.method == "POST":
        response = redirect("/login", 303)  # an expired session: nothing left to end
    elif _is_page_request():
        response = redirect(_login_url(), 302)
    else:
        response = jsonify(error="Log in first.", login="/login")
        response.status_code = 401
    if COOKIE in request.cookies:
        _clear_cookie(response, auth)
    return response


def _security_headers(response: flask.Response) -> flask.Response:
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _clear_cookie(response: flask.Response, auth: _Auth) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Lax",
                           secure=auth.secure_cookies)


# -- pages --------------------------------------------------------------------------------
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ril_dash – {title}</title>
<link rel="stylesheet" href="/assets/ril.css"></head>
<body class="ril-login-body"><main class="ril-login">
<h1 class="ril-login-title">ril_dash</h1>
{body}
</main></body></html>
"""


def _page(title: str, body: str, status: int = 200) -> flask.Response:
    response = flask.make_response(_PAGE.format(title=html.escape(title), body=body), status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'")
    return response


def _login_page(user: str = "", next_path: str = "/", error: str = "",
                status: int = 200) -> flask.Response:
    esc = html.escape
    message = (f'<p class="ril-login-error" role="alert">{esc(error)}</p>' if error else "")
    body = f"""<form class="ril-login-form" method="post" action="/login">
<p class="ril-login-hint">Log in to annotate.</p>
{message}
<label class="ril-login-label">User
<input class="ril-login-input" name="user" autocomplete="username" required
 maxlength="64" value="{esc(user)}"{'' if user else ' autofocus'}></label>
<label class="ril-login-label">Password
<input class="ril-login-input" type="password" name="password"
 autocomplete="current-password" required{' autofocus' if user else ''}></label>
<input type="hidden" name="next" value="{esc(next_path)}">
<button class="ril-button ril-primary ril-login-submit" type="submit">Log in</button>
</form>"""
    return _page("log in", body, status)


def _login():
    auth = _auth()
    if auth is None or not auth.login_required:
        return redirect("/", 303)
    if request.method != "POST":
        return _login_page(next_path=safe_next(request.args.get("next", "/")))
    name = request.form.get("user", "").strip()[:64]
    password = request.form.get("password", "")
    next_path = safe_next(request.form.get("next", "/"))
    address = request.remote_addr or "unknown"
    keys = login_keys(name, address)
    try:
        retry = auth.throttle.retry_at(keys)
    except RilDashError as exc:
        return _login_page(name, next_path, status=503,
                           error=f"Could not check failed logins: {exc}. Tell the administrator.")
    if retry is not None:
        wait = max(1, math.ceil((retry - time.time()) / 60))
        at = time.strftime("%H:%M", time.localtime(retry))
        response = _login_page(name, next_path, status=429, error=(
            f"Too many failed logins for this user name from this address, or from this "
            f"address. Try again after {at} (in about {wait} minute{'s' if wait != 1 else ''})."))
        response.headers["Retry-After"] = str(max(1, math.ceil(retry - time.time())))
        return response
    if not name or not auth.users_file.verify(name, password):
        try:
            auth.throttle.failed(keys)
        except RilDashError as exc:
            log.error("failed login not counted: %s", exc)
        auth.record(name or "?", "login_failed", {"address": address})
        return _login_page(name, next_path, error=WRONG_LOGIN, status=401)
    user = auth.users.get().get(name)
    if user is None:  # pragma: no cover - changed between the two reads
        return _login_page(name, next_path, error=WRONG_LOGIN, status=401)
    old = request.cookies.get(COOKIE)
    if old:
        auth.sessions.delete(old)  # never keep a session fixed before the login
    try:
        token = auth.sessions.create(user.name, stamp=password_stamp(user))
    except RilDashError as exc:
        return _login_page(name, next_path, status=503,
                           error=f"Could not start a session: {exc}. Tell the administrator.")
    try:
        auth.throttle.clear(keys[0])
    except RilDashError as exc:
        log.error("could not clear the failed logins of %s: %s", user.name, exc)
    auth.record(user.name, "login", {"address": address})
    auth.purge_now_and_then()
    response = redirect(next_path, 303)
    response.set_cookie(COOKIE, token, path="/", httponly=True, samesite="Lax",
                        secure=auth.secure_cookies)
    response.headers["Cache-Control"] = "no-store"
    return response


def _logout():
    auth = _auth()
    if auth is None or not auth.login_required:
        return redirect("/", 303)
    user = current_user()
    if request.method != "POST":
        esc = html.escape
        body = f"""<form class="ril-login-form" method="post" action="/logout">
<p class="ril-login-hint">Logged in as <span class="ril-login-user">{esc(display_name_of(user))}
</span> ({esc(user)}).</p>
<button class="ril-button ril-primary ril-login-submit" type="submit">Log out</button>
<a class="ril-login-link" href="/">Back to the project</a>
</form>"""
        return _page("log out", body)
    auth.sessions.delete(request.cookies.get(COOKIE))
    if auth.on_logout is not None:
        try:
            auth.on_logout(user)
        except Exception:  # the logout itself must still happen
            log.exception("releasing the series of %s at logout failed", user)
    auth.record(user, "logout", {"address": request.remote_addr or "unknown"})
    response = redirect("/login", 303)
    _clear_cookie(response, auth)
    return response
