"""Client addresses behind trusted reverse proxies (``--trusted-proxies N``).

Behind a reverse proxy every request comes from the proxy's address, so the login throttle,
leases and audit lines would see one address for everybody. With ``N`` trusted proxies (the
number of proxies in front of the server, each appending the address it received the request
from to ``X-Forwarded-For``), Werkzeug's standard :class:`~werkzeug.middleware.proxy_fix.ProxyFix`
takes the client address from the ``N``-th entry from the right of that header. Only
``X-Forwarded-For`` is used (not the forwarded host, port or scheme: the ``Host`` check of
:mod:`ril_dash.ui.request_limits` keeps comparing the real ``Host``).

Off by default (``N`` = 0): then the header is ignored, since any client can send it and would
otherwise pick the address it is counted under.
"""

from __future__ import annotations

import flask
from werkzeug.middleware.proxy_fix import ProxyFix


def install_trusted_proxies(server: flask.Flask, count: int) -> None:
    """Take the client address from ``X-Forwarded-For`` set by ``count`` proxies (0: never)."""
    if count > 0:
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=count, x_proto=0, x_host=0,
                                   x_port=0, x_prefix=0)
