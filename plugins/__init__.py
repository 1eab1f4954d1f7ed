"""The example model bundles shipped with ril_dash, installed as the package ``ril_dash.plugins``.

pyproject.toml maps the repository's top-level ``plugins/`` folder onto this package, so a wheel
carries the bundles (``<id>/<version>/plugin.yaml`` + model file) inside ``ril_dash/``;
:func:`ril_dash.models.catalog.examples_root` finds them for a wheel install and a checkout
alike. README.md documents every key of a manifest.
"""
