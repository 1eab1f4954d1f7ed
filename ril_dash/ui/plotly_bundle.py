"""The plotly.js the pages load: plotly.js's own *cartesian* bundle instead of the full one.

``dcc.Graph`` loads plotly.js the first time a graph is on a page, from the URL Dash gives it:
the plotly package's full ``plotly.min.js`` (4.8 MB, every trace type). Evaluating it holds the
browser's main thread for about 1.2 s on a 2-core machine: a viewer opened by its link (or
reloaded) shows its first slice but takes no stroke until then, and the project page, which
loads it ahead of the viewer, stops answering for as long. The app draws only ``image``,
``scatter`` and ``bar`` traces (and shapes, which every bundle has), all in plotly.js's
official cartesian bundle of the same version (1.5 MB: ``bar``, ``box``, ``contour``,
``heatmap``, the histograms, ``image``, ``pie``, ``scatter``, ``scatterternary``, ``violin``).

:func:`install_plotly_bundle` answers Dash's plotly.js URL with that bundle, kept in
``ril_dash/ui/vendor/`` (npm package ``plotly.js-cartesian-dist-min``, MIT licence, beside it).
It does so only while the bundle's version is the one the plotly package ships; otherwise the
full bundle is served as before and the log says why (upgrading plotly needs the vendored
bundle of the new version).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import flask

__all__ = ["BUNDLE", "PLOTLY_JS", "bundle_version", "install_plotly_bundle"]

log = logging.getLogger(__name__)

#: the vendored cartesian bundle
BUNDLE = Path(__file__).resolve().parent / "vendor" / "plotly-cartesian.min.js"
#: where Dash's renderer loads plotly.js from (below the app's routes prefix) when it serves
#: its scripts itself
PLOTLY_JS = "_dash-component-suites/plotly/package_data/plotly.min.js"


def bundle_version(path: Path) -> str | None:
    """The plotly.js version in the banner of the bundle ``path`` (None: not a plotly.js
    bundle, or unreadable)."""
    try:
        with open(path, encoding="utf-8") as fh:
            banner = fh.read(300)
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(r"\* plotly\.js (?:\([^)]*\) )?v(\d+\.\d+\.\d+\S*)", banner)
    return found.group(1) if found else None


def _full_bundle() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


def install_plotly_bundle(server: flask.Flask, routes_prefix: str) -> bool:
    """Answer Dash's plotly.js URL on ``server`` with the cartesian bundle; False (and a log
    line) when its version is not the plotly package's, which then keeps serving its own."""
    ours, theirs = bundle_version(BUNDLE), bundle_version(_full_bundle())
    if ours is None or ours != theirs:
        log.warning("serving the full plotly.js: the cartesian bundle in %s is version %s, the "
                    "plotly package's is %s (put the cartesian bundle of that version there)",
                    BUNDLE.parent, ours, theirs)
        return False
    path = routes_prefix.rstrip("/") + "/" + PLOTLY_JS

    @server.before_request
    def cartesian_plotly():
        if flask.request.path == path and flask.request.method in ("GET", "HEAD"):
            # revalidated at each load (an ETag: a 304 without the body while unchanged)
            return flask.send_file(BUNDLE, mimetype="application/javascript", max_age=0,
                                   conditional=True, etag=True)
        return None

    return True
