"""The gunicorn tier's configuration and its server-level body bound (ril_dash.gunicorn_app);
the processes themselves are tested in test_serving.py."""

from __future__ import annotations

import socket

import pytest

from ril_dash.gunicorn_app import (BODY_READ_TIMEOUT, RilDashGunicorn, gunicorn_options,
                                   limit_body)
from ril_dash.ui.request_limits import UPLOAD_BODY_BYTES


def test_the_options_are_valid_gunicorn_settings():
    options = gunicorn_options("::1", 8123, threads=6, workers=3, access_log="-")
    cfg = RilDashGunicorn(lambda: None, options).cfg
    assert cfg.bind == ["[::1]:8123"] and cfg.workers == 3 and cfg.threads == 6
    assert cfg.worker_class_str == "gthread"
    assert cfg.forwarded_allow_ips == []  # the app's --trusted-proxies alone decides
    assert (cfg.timeout, cfg.graceful_timeout, cfg.keepalive) == (120, 30, 5)
    assert cfg.accesslog == "-" and "%(p)s" in cfg.access_log_format
    assert cfg.limit_request_line == 8190


def test_the_app_is_built_and_warmed_up_when_a_worker_loads_it():
    import flask

    built, served = [], []
    server = flask.Flask("stand-in")
    server.before_request(lambda: served.append(flask.request.path))
    app = RilDashGunicorn(lambda: built.append(1) or server,
                          gunicorn_options("127.0.0.1", 8123, threads=2, workers=2))
    assert built == [] and served == []  # never in the arbiter
    wsgi = app.wsgi()
    assert built == [1] and served == ["/login"] and callable(wsgi) and app.wsgi() is wsgi


def run_wsgi(app, environ):
    answer = {}

    def start_response(status, headers):
        answer["status"], answer["headers"] = status, dict(headers)
    answer["body"] = b"".join(app(environ, start_response))
    return answer


def test_a_body_over_the_bound_is_refused_before_the_app_sees_it():
    seen = []

    def app(environ, start_response):
        seen.append(environ["CONTENT_LENGTH"])
        start_response("200 OK", [])
        return [b"ok"]

    limited = limit_body(app)
    answer = run_wsgi(limited, {"CONTENT_LENGTH": str(UPLOAD_BODY_BYTES + 1)})
    assert answer["status"].startswith("413") and seen == []
    assert b"(687 MB)" in answer["body"]
    assert answer["headers"]["Content-Length"] == str(len(answer["body"]))
    assert run_wsgi(limited, {"CONTENT_LENGTH": str(UPLOAD_BODY_BYTES)})["body"] == b"ok"
    assert run_wsgi(limited, {"CONTENT_LENGTH": "not a number"})["body"] == b"ok"
    assert seen == [str(UPLOAD_BODY_BYTES), "not a number"]


@pytest.mark.parametrize("length, timeout", [("12", BODY_READ_TIMEOUT), ("", None)])
def test_reading_a_body_waits_for_each_chunk_at_most_the_body_timeout(length, timeout):
    left, right = socket.socketpair()
    try:
        limit_body(lambda environ, start_response: [])(
            {"CONTENT_LENGTH": length, "gunicorn.socket": left}, None)
        assert left.gettimeout() == timeout
    finally:
        left.close()
        right.close()
