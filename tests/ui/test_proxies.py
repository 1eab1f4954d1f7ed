"""Client addresses behind a reverse proxy (``--trusted-proxies``, ril_dash.ui.proxies): the
``X-Forwarded-For`` header is ignored unless the server is told how many proxies are in front
of it, and then the failed-login throttle counts the forwarded client address."""

from __future__ import annotations

import pytest
from support import project_copy

from ril_dash.project.login_throttle import LoginThrottle, login_keys

PASSWORD = "dora-secret-44"


def app_with(project, demo_home, trusted_proxies):
    from ril_dash.project.project import Project
    from ril_dash.settings import Settings
    from ril_dash.ui.app import create_app

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RIL_DASH_HOME", str(demo_home))
        return create_app(Project.open(project), Settings(
            project_dir=project, login_required=True, trusted_proxies=trusted_proxies))


def fail_logins(app, times, forwarded_for):
    client = app.server.test_client()
    for _ in range(times):
        reply = client.post("/login", data={"user": "dora", "password": "wrong", "next": "/"},
                            environ_base={"REMOTE_ADDR": "10.9.9.9"},  # the proxy
                            headers={"X-Forwarded-For": forwarded_for})
        assert reply.status_code == 401


@pytest.mark.parametrize("trusted, counted, not_counted", [
    (0, "10.9.9.9", "172.16.0.5"),  # default: a forged header is ignored
    (1, "172.16.0.5", "10.9.9.9"),  # one proxy: its entry (the rightmost) is the client
])
def test_the_throttle_counts_the_address_the_setting_trusts(
        demo_home, tmp_path, trusted, counted, not_counted):
    project = project_copy(demo_home, tmp_path / "project", [("dora", PASSWORD, False)])
    app = app_with(project, demo_home, trusted)
    fail_logins(app, 5, "203.0.113.7, 172.16.0.5")
    throttle = LoginThrottle(project / ".sessions")
    assert throttle.retry_at(login_keys("dora", counted)) is not None
    assert throttle.retry_at(login_keys("dora", not_counted)) is None
    client = app.server.test_client()
    # dora from her own address still logs in; from the throttled one she waits
    own = client.post("/login", data={"user": "dora", "password": PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.9.9.9"},
                      headers={"X-Forwarded-For": "172.16.0.99"})
    assert own.status_code == (429 if trusted == 0 else 303)


def test_the_number_of_proxies_is_checked(tmp_path):
    from ril_dash.cli import CliError, build_parser, settings_from_args
    from ril_dash.wsgi import WsgiConfigError, settings_from_env

    env = {"RIL_DASH_PROJECT": str(tmp_path)}
    assert settings_from_env(env).trusted_proxies == 0
    assert settings_from_env(dict(env, RIL_DASH_TRUSTED_PROXIES=" 2 ")).trusted_proxies == 2
    for bad in ("many", "-1", "11"):
        with pytest.raises(WsgiConfigError, match="RIL_DASH_TRUSTED_PROXIES must be"):
            settings_from_env(dict(env, RIL_DASH_TRUSTED_PROXIES=bad))
    args = build_parser().parse_args(["serve", str(tmp_path), "--trusted-proxies", "1"])
    assert settings_from_args(tmp_path, args).trusted_proxies == 1
    args = build_parser().parse_args(["serve", str(tmp_path), "--trusted-proxies", "11"])
    with pytest.raises(CliError, match="--trusted-proxies must be the number of reverse"):
        settings_from_args(tmp_path, args)
