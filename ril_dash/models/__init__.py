"""Keras model plugins: manifests, discovery, versions, pre- and post-processing (numpy only).

- :mod:`~ril_dash.models.manifest` — a bundle's ``plugin.yaml`` (read strictly by
  :mod:`~ril_dash.models.manifest_parser`, written back by ``manifest_yaml``);
- :mod:`~ril_dash.models.catalog` — the plugins roots and every bundle version in them;
- :mod:`~ril_dash.models.registry` — a project's model settings (enabled, active, trusted);
- :mod:`~ril_dash.models.bundle_zip` — safe import and export of bundle ``.zip`` files.

Only the worker side (``ril_dash.models.worker``, run in worker processes) may import tensorflow
or keras, and none of it imports dash, flask or plotly; the import-linter contracts in
``pyproject.toml`` check both.
"""
