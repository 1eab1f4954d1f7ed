"""ril_dash: a browser-based tool to annotate medical-imaging datasets for and with deep learning.

The package is layered (see ``README.md``; the import-linter contracts in ``pyproject.toml``
enforce it): ``core`` (numpy/scipy/nibabel only), ``workflow`` (workflow YAML and its pure state
machine), ``project`` (project.yaml, series discovery, annotation store, users), ``models``,
``application`` (request-free commands) and ``ui`` (the only package that imports dash and flask).
The top-level ``errors`` and ``strict_yaml`` modules are shared by every layer.
"""

__version__ = "0.1.0"
