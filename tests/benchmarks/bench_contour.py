"""Semi-automatic contouring benchmarks: accuracy on the CT phantom and MNI152, and snap speed.

1. Snap: rough masks made from the ground truth (dilated by 3 pixels, eroded by 3 pixels, and a
   jittered polygon: every 8th outline point moved by a random 2-pixel step) on 5 slices of each
   structure (the phantom's liver, spleen and kidneys in the portal-venous phase, 256 × 256
   slices; the MNI152 white matter, probability > 0.5, 197 × 233 slices); mean Dice before and
   after snap, with each method.
2. Auto-contouring from the structure's largest slice (the exact ground truth) across it: the
   mean Dice over every ground-truth slice (a slice it did not reach counts 0), and the slices it
   produced outside the structure. The white matter spans the whole head, so it is limited to
   20 slices each way and scored on those 40 slices. Then the four organs of all three demo
   patients: the mean and the lowest of the twelve mean slice Dice. Each also without the
   seed's inside/outside intensity model (``StopRules(seed_model=False)``) as the same-run
   baseline.
3. Snap time per 256 × 256 slice end to end: ``POST /ril/api/contour`` → the answer with the
   new overlay PNG (check, snap, one durable version, overlay rendering) on a served project,
   and in headless Chromium from pressing S to the new overlay on screen, against the bare
   :func:`~ril_dash.core.contour_snap.snap_mask` call on the same slice in the same run.

Run: ``python tests/benchmarks/bench_contour.py`` (``--auto``: part 2 only).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import nibabel as nib
import numpy as np
from common import RunningServer, median, percentile, timer, write_results
from scipy import ndimage
from skimage.draw import polygon
from skimage.measure import find_contours

from ril_dash.core.contour_params import snap_params
from ril_dash.core.contour_propagate import StopRules, propagate
from ril_dash.core.contour_snap import snap_mask
from ril_dash.demo.phantom import PROJECT_ROI_LABELS, ct_affine, make_phantom

MNI = Path(__file__).resolve().parents[2] / "ril_dash" / "data" / "mni152"
ORGANS = ("Liver", "Spleen", "Right kidney", "Left kidney")
ROUGH = ("dilated", "eroded", "polygon")
SLICES = 5
TIMED = 15


def dice(a, b) -> float:
    total = np.count_nonzero(a) + np.count_nonzero(b)
    return 1.0 if total == 0 else 2 * np.count_nonzero(a & b) / total


def rough_mask(truth: np.ndarray, kind: str, rng) -> np.ndarray:
    if kind == "dilated":
        return ndimage.binary_dilation(truth, iterations=3)
    if kind == "eroded":
        return ndimage.binary_erosion(truth, iterations=3)
    outline = max(find_contours(truth.astype(float), 0.5), key=len)[::8]
    outline = outline + rng.normal(0, 2.0, outline.shape)
    out = np.zeros(truth.shape, bool)
    rr, cc = polygon(outline[:, 0], outline[:, 1], truth.shape)
    out[rr, cc] = True
    return out


def structures():
    """name → (image (X, Y, Z), truth (X, Y, Z), preset)."""
    ph = make_phantom(101, "portal-venous")
    found = {name: (ph.hu, np.isin(ph.labels, PROJECT_ROI_LABELS[name]), "ct")
             for name in ORGANS}
    t1 = nib.load(MNI / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz").get_fdata()
    wm = nib.load(MNI / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz").get_fdata() > 0.5
    found["White matter (MNI152)"] = (t1.astype(np.float32), wm, "mr")
    return found


def chosen_slices(truth: np.ndarray) -> list[int]:
    zs = np.flatnonzero(truth.any(axis=(0, 1)))
    inner = zs[len(zs) // 5: len(zs) - len(zs) // 5]
    return [int(z) for z in np.linspace(inner[0], inner[-1], SLICES).round()]


def snap_figures(found) -> dict:
    figures = {}
    rng = np.random.default_rng(7)
    for name, (image, truth, preset) in found.items():
        for method in ("watershed", "geodesic"):
            params = snap_params(preset, {"method": method})
            for kind in ROUGH:
                before, after = [], []
                for z in chosen_slices(truth):
                    gt = truth[:, :, z]
                    rough = rough_mask(gt, kind, np.random.default_rng(rng.integers(1 << 30)))
                    before.append(dice(rough, gt))
                    after.append(dice(snap_mask(image[:, :, z], rough, params), gt))
                figures[f"snap {name}, {kind}, {method}: Dice before → after"] = \
                    f"{np.mean(before):.3f} → {np.mean(after):.3f}"
    return figures


def auto_run(image, truth, preset: str, limit: int, seed_model: bool):
    """Auto-contour ``truth`` from its largest slice: (mean slice Dice, the propagation, the
    slices scored, seconds)."""
    zs = np.flatnonzero(truth.any(axis=(0, 1)))
    start = int(zs[np.argmax([truth[:, :, z].sum() for z in zs])])
    t0 = timer()
    run = propagate(lambda i: image[:, :, i], image.shape[2], start, truth[:, :, start],
                    snap_params(preset), StopRules(limit=limit, seed_model=seed_model))
    seconds = timer() - t0
    scored = [int(z) for z in zs if z != start and abs(z - start) <= limit]
    empty = np.zeros(truth.shape[:2], bool)
    score = float(np.mean([dice(run.masks.get(z, empty), truth[:, :, z]) for z in scored]))
    return score, run, scored, seconds


def auto_figures(found) -> dict:
    figures = {}
    for name, (image, truth, preset) in found.items():
        limit = 20 if preset == "mr" else 40
        zs = set(int(z) for z in np.flatnonzero(truth.any(axis=(0, 1))))
        for seed_model, label in ((False, "baseline without the seed model"), (True, "")):
            score, run, scored, seconds = auto_run(image, truth, preset, limit, seed_model)
            extra = sorted(set(run.masks) - zs)
            key = f"auto {name}: mean slice Dice ({len(scored)} slices)"
            figures[f"{key}, {label}" if label else key] = \
                f"{score:.3f}  ({len(run.masks)} produced, {len(extra)} outside, " \
                f"{seconds:.2f} s; {run.describe()})"
    return figures


def auto_patients_figure() -> dict:
    """Auto-contouring of the four organs of the three demo patients (portal-venous), with
    and without the seed model."""
    scores = {False: [], True: []}
    for seed in (101, 202, 303):
        ph = make_phantom(seed, "portal-venous")
        for name in ORGANS:
            truth = np.isin(ph.labels, PROJECT_ROI_LABELS[name])
            for seed_model in scores:
                scores[seed_model].append(auto_run(ph.hu, truth, "ct", 40, seed_model)[0])
    key = "auto, 4 organs x 3 patients: mean / lowest mean slice Dice"
    return {f"{key}, baseline without the seed model":
            f"{np.mean(scores[False]):.3f} / {np.min(scores[False]):.3f}",
            key: f"{np.mean(scores[True]):.3f} / {np.min(scores[True]):.3f}"}


def make_project(root: Path, hu: np.ndarray) -> Path:
    images = root / "images" / "P1"
    images.mkdir(parents=True)
    nib.save(nib.Nifti1Image(hu, ct_affine()), images / "ct.nii.gz")
    (root / "project.yaml").write_text(
        "name: Contour benchmark\nimages: images\nrois:\n"
        "  - {name: Right kidney, color: '#e74c3c', value: 1}\n")
    return root


def timing_figures() -> dict:
    import requests

    from ril_dash.core.planes import display_view
    from ril_dash.core.volume import load_volume

    ph = make_phantom(101, "portal-venous")
    root = Path(tempfile.mkdtemp(prefix="ril-contour-bench-"))
    try:
        project = make_project(root / "project", ph.hu)
        volume = load_volume(project / "images" / "P1" / "ct.nii.gz")
        truth = np.isin(volume.to_canonical(ph.labels), PROJECT_ROI_LABELS["Right kidney"])
        z = int(np.argmax(truth.sum(axis=(0, 1))))
        gt = display_view(truth, "axial", z)
        image = display_view(volume.data[..., 0], "axial", z)
        outline = max(find_contours(ndimage.binary_dilation(gt, iterations=3).astype(float),
                                    0.5), key=len)[::4]
        path = "M" + "L".join(f"{c:.1f},{r:.1f}" for r, c in outline) + "Z"
        rough = np.zeros(gt.shape, bool)
        rr, cc = polygon(outline[:, 0], outline[:, 1], gt.shape)
        rough[rr, cc] = True
        params = snap_params("ct")
        bare = []
        for _ in range(TIMED):
            t0 = timer()
            snap_mask(image, rough, params)
            bare.append((timer() - t0) * 1000)
        server = RunningServer(["serve", str(project)])
        http = requests.Session()
        base = {"series": "P1/ct.nii.gz", "roi": 1, "plane": "axial", "index": z}
        version, e2e = 0, []
        try:
            for _ in range(TIMED):
                r = http.post(f"{server.url}/ril/api/edit", timeout=60, json={
                    **base, "tool": "lasso", "path": path, "parent": version})
                version = r.json()["version"]
                t0 = timer()
                r = http.post(f"{server.url}/ril/api/contour", timeout=60, json={
                    **base, "tool": "snap", "parent": version})
                e2e.append((timer() - t0) * 1000)
                body = r.json()
                assert r.status_code == 200 and body["changed"], body
                assert body["overlay"]["src"].startswith("data:image/png;base64,")
                version = body["version"]
            on_screen = browser_snaps(server, base, path, z)
        finally:
            server.stop()
        snapped = dice(snap_mask(image, rough, params), gt)
        return {"snap slice (256 x 256), right kidney": f"axial {z}, Dice {dice(rough, gt):.3f}"
                                                        f" → {snapped:.3f}",
                "snap end to end (API → overlay PNG), median ms": round(median(e2e), 1),
                "snap end to end, p90 ms": round(percentile(e2e, 90), 1),
                "snap in the browser (S pressed → new overlay on screen), median ms":
                    round(median(on_screen), 1),
                "snap in the browser, p90 ms": round(percentile(on_screen, 90), 1),
                "baseline: bare snap_mask call, median ms": round(median(bare), 1),
                "baseline: bare snap_mask call, p90 ms": round(percentile(bare, 90), 1)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


KEY_JS = """() => {
    window.__t_key = null; window.__t_done = null;
    document.addEventListener('keydown', () => { window.__t_key = performance.now(); },
                              {capture: true, once: true});
}"""
WAIT_OVERLAY = """([before, version]) => {
    const gd = rilViewer.graph(), s = rilAnnotate.state();
    if (window.__t_key !== null && s.version > version && !s.busy &&
            gd.data[rilViewer.trace('roi')].source !== before) {
        if (window.__t_done === null) { window.__t_done = performance.now(); }
        return true;
    }
    return false;
}"""


def browser_snaps(server, base: dict, path: str, z: int) -> list[float]:
    """Milliseconds from pressing S to the snapped overlay on screen, ``TIMED`` times (the
    rough lasso is saved again over HTTP before each, and the page catches up with it)."""
    import requests
    from common import launch_browser
    from playwright.sync_api import sync_playwright

    times = []
    http = requests.Session()
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(f"{server.url}/view?series={quote(base['series'], safe='')}")
        page.wait_for_function("window.rilAnnotate && rilAnnotate.state().summary",
                               timeout=60_000)
        page.wait_for_function("(i) => { if (rilViewer.state().index !== i) { rilViewer.goTo(i); }"
                               " return rilViewer.state().index === i; }", arg=z)
        page.focus("#ril-viewport")
        page.keyboard.press("1")
        for _ in range(TIMED):
            version = page.evaluate("rilAnnotate.state().version")
            r = http.post(f"{server.url}/ril/api/edit", timeout=60, json={
                **base, "tool": "lasso", "path": path, "parent": version})
            version = r.json()["version"]
            page.evaluate("([s, v]) => rilAnnotate.sync({series: s, version: v})",
                          [base["series"], version])
            page.wait_for_function("(v) => rilAnnotate.state().version === v && "
                                   "!rilAnnotate.state().busy", arg=version)
            page.wait_for_timeout(300)  # the re-fetched overlay of the rough outline is shown
            before = page.evaluate("rilViewer.graph().data[rilViewer.trace('roi')].source")
            page.evaluate(KEY_JS)
            page.keyboard.press("s")
            page.wait_for_function(WAIT_OVERLAY, arg=[before, version], polling="raf",
                                   timeout=30_000)
            times.append(page.evaluate("window.__t_done - window.__t_key"))
        browser.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auto", action="store_true",
                        help="run only the auto-contouring figures (part 2)")
    only_auto = parser.parse_args().auto
    found = structures()
    figures = {}
    if not only_auto:
        figures.update(snap_figures(found))
    figures.update(auto_figures(found))
    figures.update(auto_patients_figure())
    if not only_auto:
        figures.update(timing_figures())
    write_results("contour-auto" if only_auto else "contour", figures)


if __name__ == "__main__":
    main()
