"""The browser half of ril_dash, installed as the package ``ril_dash.assets``.

Dash serves this folder under ``/assets/`` and loads its scripts and styles in alphabetical
order: ``ril.css``, then ``ril.js`` (shared by the viewer scripts), ``ril_annotate.js``,
``ril_planes.js`` (the three-plane layout), ``ril_viewer.js`` and ``ril_warnings.js`` (shows the warnings a server adds to an answer).
pyproject.toml maps the repository's top-level ``assets/`` folder onto this package, so a wheel carries the files inside ``ril_dash/``; ``ril_dash.ui.app.assets_folder``
finds them for a wheel install and for a checkout alike. ``readme/`` holds the README's
screenshots and is not installed.
"""
