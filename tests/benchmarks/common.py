"""Shared pieces of the benchmarks: data generation, statistics, result files.

Benchmarks print their figures and write them to ``tests/benchmarks/results/NAME.json``; they
compare every figure with a baseline measured in the same run. They are not part of the normal
test run (``python -m pytest`` ignores this folder); run them with
``python tests/benchmarks/bench_NAME.py``.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/support.py

from support import CHROMIUM, CHROMIUM_ARGS, RunningServer  # noqa: E402,F401

RESULTS = HERE / "results"
#: where generated benchmark data is kept between runs
BENCH_DIR = Path(os.environ.get("RIL_DASH_BENCH_DIR", "/tmp/ril-dash-bench"))
#: the 512×512×300 CT made by :func:`make_ct_volume`, relative to ``BENCH_DIR / "images"``
CT_SERIES = "CT512/ct.nii.gz"


def percentile(values, q: float) -> float:
    """The q-th percentile (0–100) of ``values`` by linear interpolation."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values) -> float:
    return statistics.median(values)


def timer():
    return time.perf_counter()


def write_results(name: str, figures: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2))
    print(f"\n== {name} ==")
    for key, value in figures.items():
        print(f"  {key:<52} {value}")


def make_ct_volume(folder: Path, shape=(512, 512, 300), spacing=(0.7, 0.7, 1.0)) -> Path:
    """A 512×512×300 int16 CT of the demo phantom (made once, reused by later runs)."""
    import nibabel as nib
    import numpy as np

    from ril_dash.demo.phantom import make_phantom

    path = folder / "images" / "CT512" / "ct.nii.gz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    phantom = make_phantom(7, "portal-venous", shape=shape, spacing=spacing)
    image = nib.Nifti1Image(phantom.hu.astype(np.int16), phantom.affine)
    image.set_data_dtype(np.int16)
    tmp = path.with_name("tmp-ct.nii.gz")
    nib.save(image, tmp)
    tmp.replace(path)
    return path


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
