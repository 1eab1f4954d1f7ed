"""Build configuration that pyproject.toml cannot express: the list of packages.

Everything else (metadata, dependencies, package data, the mapping of the top-level
``assets/`` and ``plugins/`` folders onto the packages ``ril_dash.assets`` and
``ril_dash.plugins``) is in pyproject.toml. Its ``packages.find`` only finds packages inside the
``ril_dash/`` folder, so the list is made here: every ``ril_dash`` package in the tree (folders
of data files included, as ``find`` did), plus ``ril_dash.assets``, the browser scripts and
styles that the installed app serves, and ``ril_dash.plugins``, the example model bundles.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["ril_dash", "ril_dash.*"],
                                         exclude=["*.__pycache__"]),
                "ril_dash.assets", "ril_dash.plugins"])
