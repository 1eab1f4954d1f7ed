"""Keras model plugins: manifests, discovery, versions, pre- and post-processing (numpy only).

Not built yet: this package holds no module so far. When it does, only its worker side
(``ril_dash.models.worker``, run in worker processes) may import tensorflow or keras, and none of
it imports dash, flask or plotly; the import-linter contracts in ``pyproject.toml`` check both.
"""
