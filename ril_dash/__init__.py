"""ril_dash: a browser-based tool to annotate medical-imaging datasets for and with deep learning.

The package is layered (see ``README.md``): ``core`` (numpy/nibabel only), ``project``
(project.yaml, series discovery, annotation store), ``workflow``, ``models`` and ``ui`` (the only
package that imports dash).
"""

__version__ = "0.1.0"
