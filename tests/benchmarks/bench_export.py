"""Export benchmark: N series of 256×256×64 with 3 ROIs each (small random blobs).

Measures ``export_project`` writing combined + per-ROI masks + tables (statistics, mapping,
Excel). Baseline in the same run: writing the same mask arrays with bare nibabel
(``nib.save(nib.Nifti1Image(arr, affine), path)``), no reading, no atomic renames, no tables.
Target: export ≤ 1.3× the baseline.

Run: ``python tests/benchmarks/bench_export.py`` (``RIL_DASH_BENCH_EXPORT_SERIES=10`` for a
quick check; default 100).
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
from common import BENCH_DIR as COMMON_BENCH_DIR
from common import median, timer, write_results

N_SERIES = int(os.environ.get("RIL_DASH_BENCH_EXPORT_SERIES", "100"))
SHAPE = (256, 256, 64)
RUNS = int(os.environ.get("RIL_DASH_BENCH_EXPORT_RUNS", "3"))
BENCH_DIR = COMMON_BENCH_DIR / "export"
YAML = """\
name: Export benchmark
images: images
annotations: annotations
rois:
  - {name: Liver, color: "#a0522d", value: 1}
  - {name: Tumour, color: "#ff0000", value: 2}
  - {name: Vessel, color: "#00ff00", value: 4}
"""


def _blob(rng, shape) -> tuple[tuple, np.ndarray]:
    r = int(rng.integers(6, 16))
    c = [int(rng.integers(r, n - r)) if n > 2 * r else n // 2 for n in shape]
    box = tuple((max(0, ci - r), min(n, ci + r + 1)) for ci, n in zip(c, shape))
    grid = np.ogrid[tuple(slice(a - ci, b - ci) for (a, b), ci in zip(box, c))]
    ball = sum(g.astype(float) ** 2 for g in grid) <= r * r
    return box, ball & (rng.random(ball.shape) < 0.9)


def make_project() -> Path:
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project

    root = BENCH_DIR / f"n{N_SERIES}"
    if (root / "project.yaml").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    # a smooth CT-like int16 image (compresses like real data), written once and copied
    z = np.linspace(-1, 1, SHAPE[2])[None, None, :]
    y = np.linspace(-1, 1, SHAPE[1])[None, :, None]
    x = np.linspace(-1, 1, SHAPE[0])[:, None, None]
    image = (1000 * (x * x + y * y + 0.5 * z * z < 0.7) - 1000
             + rng.normal(0, 20, SHAPE)).astype(np.int16)
    first = root / "images" / "P000" / "ct.nii.gz"
    first.parent.mkdir(parents=True)
    nib.save(nib.Nifti1Image(image, np.diag([-0.8, -0.8, 2.5, 1.0])), first)
    for i in range(1, N_SERIES):
        dest = root / "images" / f"P{i:03d}" / "ct.nii.gz"
        dest.parent.mkdir(parents=True)
        shutil.copyfile(first, dest)
    (root / "project.yaml").write_text(YAML)
    project = Project.open(root)
    store = AnnotationStore(project.config.annotations)
    from ril_dash.core.volume import load_volume
    canonical = load_volume(first).data.shape[:3]
    for s in project.series:
        bits = np.zeros(canonical, np.uint8)
        for bit in range(3):
            box, ball = _blob(rng, canonical)
            bits[tuple(slice(a, b) for a, b in box)] |= ball.astype(np.uint8) << bit
        nz = np.argwhere(bits)
        box = tuple((int(lo), int(hi) + 1) for lo, hi in zip(nz.min(0), nz.max(0)))
        sl = tuple(slice(a, b) for a, b in box)
        delta = types.SimpleNamespace(box=box, before=np.zeros_like(bits[sl]), after=bits[sl])
        store.series(s.id, canonical).commit(0, delta, {"user": "bench", "op": "paint"},
                                             slots={1: 0, 2: 1, 4: 2})
    return root


def baseline_arrays(project) -> list[tuple[str, np.ndarray, list[np.ndarray]]]:
    """The arrays the export writes, in file order (computed outside the timed baseline)."""
    from ril_dash.core.volume import load_volume
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.export import _combined

    store = AnnotationStore(project.config.annotations)
    out = []
    for s in project.series:
        path = project.series_path(s.id)
        vol = load_volume(path)
        st = store.series(s.id, vol.data.shape[:3]).refresh()
        per = [vol.to_file_order(((st.bits >> b) & 1).astype(np.uint8)) for b in range(3)]
        out.append((s.id, nib.load(path).affine,
                    [np.ascontiguousarray(a) for a in per]
                    + [np.ascontiguousarray(vol.to_file_order(_combined(st.bits, st.slots)))]))
    return out


def run_baseline(arrays, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    t0 = timer()
    for sid, affine, arrs in arrays:
        folder = out / sid.split("/")[0]
        folder.mkdir(parents=True, exist_ok=True)
        for i, arr in enumerate(arrs):
            nib.save(nib.Nifti1Image(arr, affine), folder / f"m{i}.nii.gz")
    return timer() - t0


def run_export(project, out: Path) -> float:
    from ril_dash.project.export import export_project

    shutil.rmtree(out, ignore_errors=True)
    t0 = timer()
    report = export_project(project, out)
    elapsed = timer() - t0
    assert len(report.exported) == N_SERIES and report.n_masks == 4 * N_SERIES, report.summary()
    return elapsed


def main() -> None:
    from ril_dash.project.project import Project

    t0 = timer()
    project = Project.open(make_project())
    print(f"project ready in {timer() - t0:.1f} s", flush=True)
    arrays = baseline_arrays(project)
    base, ours = [], []
    for _ in range(RUNS):
        base.append(run_baseline(arrays, BENCH_DIR / "out-baseline"))
        ours.append(run_export(project, BENCH_DIR / "out-export"))
        print(f"baseline {base[-1]:.2f} s, export {ours[-1]:.2f} s", flush=True)
    write_results(f"export_{N_SERIES}" if N_SERIES != 100 else "export", {
        "series": N_SERIES, "shape": "x".join(map(str, SHAPE)), "runs": RUNS,
        "baseline_bare_nibabel_s (median)": round(median(base), 3),
        "export_project_s (median)": round(median(ours), 3),
        "export_per_series_ms": round(1000 * median(ours) / N_SERIES, 1),
        "ratio_export_over_baseline": round(median(ours) / median(base), 3),
        "target_ratio": 1.3,
    })


if __name__ == "__main__":
    sys.exit(main())
