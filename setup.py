"""Build configuration that pyproject.toml cannot express: the list of packages.

Everything else (metadata, dependencies, package data, the mapping of the top-level
``assets/`` folder onto the package ``ril_dash.assets``) is in pyproject.toml. Its
``packages.find`` only finds packages inside the ``ril_dash/`` folder, so the list is made here:
every ``ril_dash`` package in the tree (folders of data files included, as ``find`` did), plus
``ril_dash.assets``, the browser scripts and styles that the installed app serves.
"""

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages(include=["ril_dash", "ril_dash.*"],
                                         exclude=["*.__pycache__"]),
                "ril_dash.assets"])
