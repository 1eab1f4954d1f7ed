"""Logins (:mod:`ril_dash.ui.auth`) on a real ``ril-dash serve --login`` server.

Every route of the app is probed without a session (the routes are enumerated from a test-side
app built with ``create_app`` for the same project); sessions, fixation, logout, throttling,
open redirects, cookie flags, the Origin check, the header and the sharing of sessions with a
second server process (``ril_dash.wsgi``) are checked over HTTP with ``requests``.
"""

from __future__ import annotations

import json
import re
import sys

import pytest
import requests
from support import PRELOAD_CALLBACK, RunningServer, layout_texts, project_copy

from ril_dash.project.audit import AuditLog
from ril_dash.project.users import UsersFile

pytestmark = pytest.mark.slow  # starts real server processes (serve --login, a WSGI server)

ALICE_DISPLAY = 'Alice "Al" O\'Brien & Co'
PASSWORDS = {"alice": "alice-secret-1", "bob": "bob-secret-22", "carol": "carol-secret-3"}
PAGE_PATHS = ["/", "/view", "/rois", "/export", "/workflow", "/audit"]


@pytest.fixture(scope="module")
def project_dir(demo_home, tmp_path_factory):
    """A private copy of the demo project with three users."""
    target = project_copy(demo_home, tmp_path_factory.mktemp("auth") / "project",
                          [("bob", PASSWORDS["bob"], False), ("carol", PASSWORDS["carol"], False)])
    UsersFile.for_project(target).add("alice", PASSWORDS["alice"], admin=True,
                                      display_name=ALICE_DISPLAY)
    return target


@pytest.fixture(scope="module")
def server(project_dir, demo_home):
    server = RunningServer(["serve", str(project_dir), "--login"],
                           env={"RIL_DASH_HOME": str(demo_home)})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def test_app(project_dir, demo_home):
    """The app as the server builds it (in this process: for its routes and a test client)."""
    from ril_dash.project.project import Project
    from ril_dash.settings import Settings
    from ril_dash.ui.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIL_DASH_HOME", str(demo_home))
        return create_app(Project.open(project_dir),
                          Settings(project_dir=project_dir, login_required=True))


def login(url: str, user: str, password: str | None = None, *, next_path: str = "/",
          http: requests.Session | None = None) -> tuple[requests.Session, requests.Response]:
    http = http or requests.Session()
    reply = http.post(url + "/login", allow_redirects=False, timeout=30, data={
        "user": user, "password": PASSWORDS[user] if password is None else password,
        "next": next_path})
    return http, reply


def logged_in(server, user: str = "bob") -> requests.Session:
    http, reply = login(server.url, user)
    assert reply.status_code == 303, reply.text
    return http


def concrete(rule: str) -> str:
    """A URL path matching a Flask rule (every variable part filled in)."""
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: "dash/x.js" if m.group(1) == "path" else "x",
                  rule)


def is_login_redirect(reply: requests.Response) -> bool:
    return reply.status_code in (302, 303) and reply.headers["Location"].startswith("/login")


def find(node, class_name: str) -> list[dict]:
    """Components of a Dash layout (JSON) whose className holds ``class_name``."""
    found = []
    if isinstance(node, dict):
        props = node.get("props", {})
        if class_name in str(props.get("className", "")).split():
            found.append(node)
        for value in props.values():
            found += find(value, class_name)
    elif isinstance(node, list):
        for item in node:
            found += find(item, class_name)
    return found




# ---- without a session: every route is closed -------------------------------------------
def test_every_route_needs_a_session(server, test_app):
    from werkzeug.exceptions import HTTPException

    url_map = test_app.server.url_map
    rules = {r.rule for r in url_map.iter_rules()}
    assert "/_dash-update-component" in rules and "/ril/api/slice" in rules
    adapter = url_map.bind("localhost")

    def get_endpoint(path: str) -> str | None:
        try:
            return adapter.match(path, method="GET")[0]
        except HTTPException:
            return None

    paths = {path: get_endpoint(path) for path in {concrete(r) for r in rules} | set(PAGE_PATHS)}
    assert {paths[p] for p in PAGE_PATHS} <= {"/", "/<path:path>"}
    # /favicon.ico: a redirect to /_favicon.ico, checked in test_route_leaks
    public = {"/login", "/assets/ril.css", "/_favicon.ico", "/favicon.ico"}
    checked = 0
    for cookie in (None, "forged-or-expired-token"):
        cookies = {"ril_session": cookie} if cookie else {}
        for path, endpoint in sorted(paths.items()):
            if path in public:
                continue
            for method in ("GET", "POST"):
                reply = requests.request(method, server.url + path, cookies=cookies,
                                         allow_redirects=False, timeout=30)
                where = f"{method} {path}: {reply.status_code} {reply.text[:200]}"
                if method == "GET" and (endpoint in ("/", "/<path:path>", "ril_logout")):
                    assert reply.status_code == 302 and is_login_redirect(reply), where
                elif method == "POST" and path == "/logout":
                    assert is_login_redirect(reply), where
                else:
                    assert reply.status_code == 401, where
                    assert reply.json() == {"error": "Log in first.", "login": "/login"}, where
                checked += 1
    assert checked > 40
    for path in ("/login", "/assets/ril.css", "/_favicon.ico"):
        assert requests.get(server.url + path, timeout=30).status_code == 200, path


def test_a_page_redirect_keeps_where_the_user_was_going(server):
    reply = requests.get(server.url + "/view?series=a%2Fb", allow_redirects=False, timeout=30)
    assert reply.headers["Location"] == "/login?next=%2Fview%3Fseries%3Da%252Fb"
    page = requests.get(server.url + reply.headers["Location"], timeout=30).text
    assert 'name="next" value="/view?series=a%2Fb"' in page


def test_a_forged_callback_needs_a_session(server):
    reply = requests.post(server.url + "/_dash-update-component", json=PRELOAD_CALLBACK,
                          timeout=30)
    assert reply.status_code == 401
    http = logged_in(server)
    reply = http.post(server.url + "/_dash-update-component", json=PRELOAD_CALLBACK, timeout=30)
    assert reply.status_code == 200, reply.text
    assert "plotly-preload" in reply.text and "response" in reply.json()


# ---- logging in and out -----------------------------------------------------------------
def test_login_sets_a_safe_cookie_and_opens_the_app(server, project_dir):
    http, reply = login(server.url, "bob", next_path="/rois")
    assert reply.status_code == 303 and reply.headers["Location"] == "/rois"
    set_cookie = reply.headers["Set-Cookie"]
    assert set_cookie.startswith("ril_session=")
    flags = [part.strip().lower() for part in set_cookie.split(";")]
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # no --secure-cookies
    token = http.cookies["ril_session"]
    assert token not in "".join(p.read_text() for p in (project_dir / ".sessions").iterdir())
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 200
    assert http.get(server.url + "/rois", timeout=30).status_code == 200
    entries = AuditLog.for_project(project_dir).read(user="bob", action="login", limit=1)
    assert entries and entries[0]["detail"]["address"] == "127.0.0.1"


def test_wrong_password_and_unknown_user(server, project_dir):
    for user, password in (("bob", "not-his-password"), ("mallory", "whatever-123")):
        reply = requests.post(server.url + "/login", allow_redirects=False, timeout=30,
                              data={"user": user, "password": password, "next": "/"})
        assert reply.status_code == 401
        assert "Unknown user or wrong password." in reply.text
        assert "ril_session=" not in reply.headers.get("Set-Cookie", "")
    failed = AuditLog.for_project(project_dir).read(action="login_failed", limit=2)
    assert {e["user"] for e in failed} == {"bob", "mallory"}
    assert all(e["detail"]["address"] == "127.0.0.1" for e in failed)


def cookie_of(reply: requests.Response) -> str:
    return re.match(r"ril_session=([^;]*)", reply.headers["Set-Cookie"]).group(1)


def layout_status(server, token: str) -> int:
    return requests.get(server.url + "/_dash-layout", cookies={"ril_session": token},
                        timeout=30).status_code


def test_session_fixation(server):
    # a value planted before the login is never the session after it
    planted = "attacker-chosen-value"
    assert layout_status(server, planted) == 401
    reply = requests.post(server.url + "/login", cookies={"ril_session": planted},
                          data={"user": "bob", "password": PASSWORDS["bob"], "next": "/"},
                          allow_redirects=False, timeout=30)
    assert reply.status_code == 303
    token = cookie_of(reply)
    assert token != planted and len(token) >= 40
    assert layout_status(server, token) == 200
    assert layout_status(server, planted) == 401
    # even a real session planted by someone else is replaced, and ended
    planted = logged_in(server, "carol").cookies["ril_session"]
    assert layout_status(server, planted) == 200
    reply = requests.post(server.url + "/login", cookies={"ril_session": planted},
                          data={"user": "bob", "password": PASSWORDS["bob"], "next": "/"},
                          allow_redirects=False, timeout=30)
    assert cookie_of(reply) != planted
    assert layout_status(server, cookie_of(reply)) == 200
    assert layout_status(server, planted) == 401


def test_logout_ends_the_session_and_releases_the_leases(server, project_dir):
    from ril_dash.project.project import Project
    from ril_dash.project.series_locks import SeriesLocks

    http = logged_in(server, "carol")
    old = http.cookies["ril_session"]
    locks = SeriesLocks(Project.open(project_dir).config.annotations)
    series = "MNI152/T1-2009a/t1.nii.gz"
    locks.acquire(series, "carol", "another-host", 1)
    page = http.get(server.url + "/logout", timeout=30)  # GET only shows a button
    assert page.status_code == 200 and 'action="/logout"' in page.text
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 200
    reply = http.post(server.url + "/logout", allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and reply.headers["Location"] == "/login"
    assert "ril_session=;" in reply.headers["Set-Cookie"] or "ril_session=\"\"" in \
        reply.headers["Set-Cookie"]
    assert requests.get(server.url + "/_dash-layout", cookies={"ril_session": old},
                        timeout=30).status_code == 401
    assert AuditLog.for_project(project_dir).read(user="carol", action="logout", limit=1)
    assert locks.holder(series) is None  # on_logout gave carol's series back


@pytest.mark.parametrize("target", ["//evil.example", "https://evil.example",
                                    "/\\evil.example", "/\t/evil.example", "evil.example",
                                    "javascript:alert(1)"])
def test_next_never_leaves_the_server(server, target):
    _, reply = login(server.url, "bob", next_path=target)
    assert reply.status_code == 303 and reply.headers["Location"] == "/", target


def test_a_cross_origin_post_is_refused(server):
    http = logged_in(server)
    evil = {"Origin": "http://evil.example"}
    for path in ("/_dash-update-component", "/ril/api/edit", "/logout"):
        reply = http.post(server.url + path, json=PRELOAD_CALLBACK, headers=evil, timeout=30,
                          allow_redirects=False)
        assert reply.status_code == 403, (path, reply.text)
    reply = requests.post(server.url + "/login", headers=evil, timeout=30,
                          data={"user": "bob", "password": PASSWORDS["bob"], "next": "/"})
    assert reply.status_code == 403
    same = {"Origin": server.url}
    reply = http.post(server.url + "/_dash-update-component", json=PRELOAD_CALLBACK,
                      headers=same, timeout=30)
    assert reply.status_code == 200
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 200  # still in


def test_header_shows_the_user_as_text(server):
    http = logged_in(server, "alice")
    layout = http.get(server.url + "/_dash-layout", timeout=30).json()
    (user,) = find(layout, "ril-user")
    assert user["props"]["children"] == ALICE_DISPLAY  # a text child: React escapes it
    (form,) = find(layout, "ril-logout-form")
    assert form["type"] == "Form" and form["props"]["method"] == "POST"
    assert form["props"]["action"] == "/logout"
    links = layout_texts(find(layout, "ril-nav"))
    assert "Workflow" in links and "Audit" in links  # alice is an admin
    page = http.get(server.url + "/logout", timeout=30).text
    assert "Alice &quot;Al&quot; O&#x27;Brien &amp; Co" in page
    assert ALICE_DISPLAY not in page

    bob = logged_in(server, "bob").get(server.url + "/_dash-layout", timeout=30).json()
    assert layout_texts(find(bob, "ril-user")) == ["bob"]
    links = layout_texts(find(bob, "ril-nav"))
    assert "Workflow" in links and "Audit" not in links


def test_removed_user_and_new_password_end_sessions(server, project_dir):
    users = UsersFile.for_project(project_dir)
    users.add("dave", "dave-secret-44")
    PASSWORDS["dave"] = "dave-secret-44"
    http = logged_in(server, "dave")
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 200
    users.set_password("dave", "dave-secret-55")
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 401
    PASSWORDS["dave"] = "dave-secret-55"
    http = logged_in(server, "dave")
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 200
    users.remove("dave")
    assert http.get(server.url + "/_dash-layout", timeout=30).status_code == 401
    _, reply = login(server.url, "dave")
    assert reply.status_code == 401


def test_throttle_after_five_failures(test_app, project_dir):
    client = test_app.server.test_client()

    def attempt(user, password, address):
        return client.post("/login", data={"user": user, "password": password, "next": "/"},
                           environ_base={"REMOTE_ADDR": address})

    for _ in range(5):
        assert attempt("carol", "wrong-password", "10.0.0.1").status_code == 401
    refused = attempt("carol", PASSWORDS["carol"], "10.0.0.1")
    assert refused.status_code == 429
    text = refused.get_data(as_text=True)
    assert "Too many failed logins" in text and "Try again after" in text
    assert 0 < int(refused.headers["Retry-After"]) <= 300
    # the attacker's address does not lock carol out of her own address, nor bob out of it
    assert attempt("carol", PASSWORDS["carol"], "10.0.0.2").status_code == 303
    assert attempt("bob", PASSWORDS["bob"], "10.0.0.1").status_code == 303
    # the count is kept in the project's sessions folder: a second app (process) shares it
    from ril_dash.project.login_throttle import LoginThrottle, login_keys

    shared = LoginThrottle(project_dir / ".sessions")
    assert shared.retry_at(login_keys("carol", "10.0.0.1")) is not None
    assert shared.retry_at(login_keys("carol", "10.0.0.2")) is None


def test_one_address_spraying_user_names_is_refused(test_app):
    client = test_app.server.test_client()

    def attempt(user, password):
        return client.post("/login", data={"user": user, "password": password, "next": "/"},
                           environ_base={"REMOTE_ADDR": "10.0.0.66"})

    for n in range(20):
        assert attempt(f"guess{n}", "wrong-password").status_code == 401
    assert attempt("bob", PASSWORDS["bob"]).status_code == 429
    assert client.post("/login", data={"user": "bob", "password": PASSWORDS["bob"]},
                       environ_base={"REMOTE_ADDR": "10.0.0.67"}).status_code == 303


def test_two_servers_share_the_failed_login_count(server, project_dir, demo_home):
    """Failures counted by the served process refuse the login in a second process."""
    for _ in range(3):
        _, reply = login(server.url, "alice", "wrong-password")
        assert reply.status_code == 401
    script = ("import sys; from ril_dash.project.project import Project; "
              "from ril_dash.settings import Settings; from ril_dash.ui.app import create_app; "
              "p = sys.argv[1]; app = create_app(Project.open(p), "
              "Settings(project_dir=p, login_required=True)); c = app.server.test_client(); "
              "print([c.post('/login', data={'user': 'alice', 'password': 'nope'}).status_code "
              "for _ in range(3)])")
    import os
    import subprocess

    out = subprocess.run([sys.executable, "-c", script, str(project_dir)], capture_output=True,
                         text=True, timeout=120, env={**os.environ,
                                                      "RIL_DASH_HOME": str(demo_home)})
    assert out.returncode == 0, out.stderr
    # 3 failures here + 2 there reach the limit of 5; the third try there is refused
    assert out.stdout.strip().splitlines()[-1] == "[401, 401, 429]"
    _, reply = login(server.url, "alice")
    assert reply.status_code == 429
    from ril_dash.project.login_throttle import LoginThrottle, login_keys

    LoginThrottle(project_dir / ".sessions").clear(login_keys("alice", "127.0.0.1")[0])
    _, reply = login(server.url, "alice")
    assert reply.status_code == 303


def test_user_of_cookies_for_background_callbacks(server, test_app):
    from ril_dash.ui.auth import user_of_cookies

    token = logged_in(server, "bob").cookies["ril_session"]
    with test_app.server.app_context():  # no request: as in a background worker
        assert user_of_cookies({"ril_session": token}) == "bob"
        assert user_of_cookies({"ril_session": "forged"}) is None
        assert user_of_cookies({}) is None and user_of_cookies(None) is None
    requests.post(server.url + "/logout", cookies={"ril_session": token}, timeout=30)
    with test_app.server.app_context():
        assert user_of_cookies({"ril_session": token}) is None


def test_the_throttle_window_ends(tmp_path):
    from ril_dash.project.login_throttle import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(tmp_path, clock=lambda: now[0])
    for _ in range(4):
        throttle.failed(["pair:x|a"])
        now[0] += 10
    assert throttle.retry_at(["pair:x|a"]) is None
    throttle.failed(["pair:x|a"])
    assert throttle.retry_at(["pair:x|a", "addr:y"]) == 1300.0
    now[0] = 1299.0
    assert throttle.retry_at(["pair:x|a"]) == 1300.0
    now[0] = 1300.0
    assert throttle.retry_at(["pair:x|a"]) is None


def test_the_throttle_is_shared_by_instances_on_one_folder(tmp_path):
    from ril_dash.project.login_throttle import LoginThrottle, login_keys

    first, second = LoginThrottle(tmp_path), LoginThrottle(tmp_path)
    keys = login_keys("root", "192.0.2.1")
    for throttle in (first, second, first, second):
        throttle.failed(keys)
    assert first.retry_at(keys) is None and second.retry_at(keys) is None
    second.failed(keys)
    assert first.retry_at(keys) is not None
    assert first.retry_at(login_keys("root", "192.0.2.2")) is None
    assert oct((tmp_path / "login_failures.json").stat().st_mode & 0o777) == "0o600"
    (tmp_path / "login_failures.json").write_text("{damaged")
    assert first.retry_at(keys) is None  # a damaged file counts as no failures


# ---- several processes share the sessions ------------------------------------------------
def test_a_wsgi_process_shares_sessions(server, project_dir, demo_home):
    script = ("import sys, waitress; from ril_dash.wsgi import application; "
              "waitress.serve(application, host='127.0.0.1', port=int(sys.argv[-1]))")
    second = RunningServer([], command=[sys.executable, "-c", script], env={
        "RIL_DASH_HOME": str(demo_home), "RIL_DASH_PROJECT": str(project_dir),
        "RIL_DASH_SECURE_COOKIES": "yes"})
    try:
        reply = requests.post(second.url + "/login", allow_redirects=False, timeout=30,
                              data={"user": "bob", "password": PASSWORDS["bob"], "next": "/"})
        assert reply.status_code == 303
        flags = [p.strip().lower() for p in reply.headers["Set-Cookie"].split(";")]
        assert "secure" in flags
        token = cookie_of(reply)
        cookies = {"ril_session": token}
        for url in (server.url, second.url):  # the other process knows the session
            assert requests.get(url + "/_dash-layout", cookies=cookies,
                                timeout=30).status_code == 200
        requests.post(server.url + "/logout", cookies=cookies, timeout=30)
        assert requests.get(second.url + "/_dash-layout", cookies=cookies,
                            timeout=30).status_code == 401
        assert requests.get(second.url + "/", allow_redirects=False,
                            timeout=30).status_code == 302
    finally:
        second.stop()


# ---- logins off: the single local user ---------------------------------------------------
def test_logins_off_shows_no_login(demo_server):
    layout = requests.get(demo_server.url + "/_dash-layout", timeout=30).json()
    assert find(layout, "ril-user") == [] and find(layout, "ril-logout-form") == []
    links = layout_texts(find(layout, "ril-nav"))
    assert "Workflow" in links and "Audit" in links  # the local user is an admin
    reply = requests.get(demo_server.url + "/login", allow_redirects=False, timeout=30)
    assert reply.status_code == 303 and reply.headers["Location"] == "/"
    reply = requests.post(demo_server.url + "/ril/api/edit", headers={
        "Origin": "http://evil.example"}, json={}, timeout=30)
    assert reply.status_code == 403  # the Origin check holds without logins too


# ---- the browser ----------------------------------------------------------------------------
@pytest.mark.browser
def test_login_and_logout_in_a_browser(server, page):
    page.goto(server.url + "/")
    page.wait_for_selector("form.ril-login-form")
    assert "/login?next=" in page.url
    page.fill("input[name=user]", "alice")
    page.fill("input[name=password]", PASSWORDS["alice"])
    page.click("button[type=submit]")
    page.wait_for_selector(".ril-user")
    assert page.url == server.url + "/"
    assert page.locator(".ril-user").text_content() == ALICE_DISPLAY
    page.wait_for_selector(".ril-folder")  # the project page works
    page.click(".ril-logout")
    page.wait_for_selector("form.ril-login-form")
    assert page.url == server.url + "/login"
    page.goto(server.url + "/rois")
    page.wait_for_selector("form.ril-login-form")
    assert page.js_errors == []


def test_session_files_are_private(server, project_dir):
    logged_in(server)
    folder = project_dir / ".sessions"
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o600
        if re.fullmatch(r"[0-9a-f]{64}\.json", path.name):
            assert json.loads(path.read_text())["user"]
        else:  # the shared failed-login counts
            assert path.name.startswith("login_failures.json")
