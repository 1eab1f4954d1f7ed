"""Annotation benchmarks on a 512×512×300 CT with 10 ROIs (the issue's figures, with baselines).

1. Brush stroke in headless Chromium: mouse-up → the new overlay painted on screen; baseline:
   a bare ``fetch`` round trip from the same page.
2. Durable save of one operation (rasterise + paint + append-only version with fsync) against a
   bare ``np.savez_compressed`` + ``os.replace`` of the same changed arrays, in the same run,
   and the size of each version file on disk.
3. Undo and redo with the keyboard: key press → the slice's overlay changed on screen.
4. Statistics of an ROI of about 10^6 voxels; baseline: numpy boolean indexing + the same
   summary over the whole volume.

Run: ``python tests/benchmarks/bench_annotation.py``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote

import numpy as np
from common import (
    BENCH_DIR,
    CT_SERIES,
    RunningServer,
    launch_browser,
    make_ct_volume,
    median,
    percentile,
    timer,
    write_results,
)

SERIES = CT_SERIES
N_ROIS = 10
SAVES = 40
STROKES = 15
UNDOS = 15
COLORS = ["#e6194b", "#3cb44b", "#ffe119", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
          "#f032e6", "#bcf60c", "#fabebe"]


def make_project() -> Path:
    """A project over the CT with 10 ROIs, 9 of them already annotated as spheres."""
    from ril_dash.core.paint import Delta
    from ril_dash.core.volume import load_volume
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project

    make_ct_volume(BENCH_DIR)
    project = BENCH_DIR / "project_annot"
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    rois = "\n".join(f"  - {{name: ROI {i + 1}, radlex: RID{100 + i}, color: \"{COLORS[i]}\", "
                     f"value: {i + 1}, type: area}}" for i in range(N_ROIS))
    (project / "project.yaml").write_text(
        f"name: annotation benchmark\nimages: {BENCH_DIR / 'images'}\nannotations: annotations\n"
        f"settings: {{overlap: one_roi_per_voxel}}\nrois:\n{rois}\n")
    proj = Project.open(project)
    shape = load_volume(BENCH_DIR / "images" / SERIES).data.shape[:3]
    bits = np.zeros(shape, np.uint16)
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    for i in range(N_ROIS - 1):
        cx, cy, cz = 100 + 35 * i, 140 + 25 * (i % 3), 60 + 20 * i
        sphere = (zz - cx) ** 2 + (yy - cy) ** 2 + (xx - cz) ** 2 < 30 ** 2
        bits[sphere] = 1 << i
    ann = AnnotationStore(proj.config.annotations).series(SERIES, shape)
    ann.commit(0, Delta(((0, shape[0]), (0, shape[1]), (0, shape[2])), np.zeros_like(bits), bits),
               {"user": "bench", "op": "import"}, slots={i + 1: i for i in range(N_ROIS)})
    return project


def durable_saves(project: Path):
    """Times of SeriesEditor.apply (one brush stroke each) and of the bare baseline."""
    from ril_dash.core.volume import load_volume
    from ril_dash.project.editing import EditRequest, SeriesEditor
    from ril_dash.project.project import Project

    proj = Project.open(project)
    volume = load_volume(BENCH_DIR / "images" / SERIES)
    from ril_dash.project.annotation_store import AnnotationStore

    ann = AnnotationStore(proj.config.annotations).series(SERIES, volume.data.shape[:3])
    editor = SeriesEditor(proj.config, volume, ann, "bench")
    commits: list[float] = []
    commit = ann.commit

    def timed_commit(*args, **kwargs):
        start = timer()
        try:
            return commit(*args, **kwargs)
        finally:
            commits.append(timer() - start)

    ann.commit = timed_commit
    ours, bare, durable, nbytes, file_sizes = [], [], [], 0, []
    tmp = Path(tempfile.mkdtemp(dir=project))
    rng = np.random.default_rng(3)
    for k in range(SAVES):
        pts = np.cumsum(rng.normal(0, 3, (60, 2)), axis=0) + 256
        path = "M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in pts)
        req = EditRequest(tool="brush", roi=10, plane="axial", index=100 + k,
                          parent=ann.version, path=path, brush=12)
        start = timer()
        version = editor.apply(req)
        ours.append(timer() - start)
        version_file = ann.folder / "v" / f"{version:08d}.npz"
        file_sizes.append(version_file.stat().st_size)
        record = np.load(version_file)
        before, after, box = record["before"], record["after"], record["box"]
        nbytes = before.nbytes + after.nbytes
        start = timer()
        target = tmp / "delta.npz"
        np.savez_compressed(tmp / "delta.tmp.npz", box=box, before=before, after=after)
        os.replace(tmp / "delta.tmp.npz", target)
        bare.append(timer() - start)
        start = timer()  # the same, made durable: fsync the file and the folder
        np.savez_compressed(tmp / "delta.tmp.npz", box=box, before=before, after=after)
        with open(tmp / "delta.tmp.npz", "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp / "delta.tmp.npz", target)
        fd = os.open(tmp, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        durable.append(timer() - start)
    shutil.rmtree(tmp)
    return ours, commits, bare, durable, nbytes, file_sizes


def statistics_times(project: Path) -> tuple[list[float], list[float], int]:
    from ril_dash.core.volume import load_volume
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.annotation_views import roi_stats
    from ril_dash.project.project import Project

    proj = Project.open(project)
    volume = load_volume(BENCH_DIR / "images" / SERIES)
    shape = volume.data.shape[:3]
    ann = AnnotationStore(proj.config.annotations).series(SERIES, shape)
    from ril_dash.core.paint import Delta

    state = ann.refresh()
    big = np.zeros(shape, bool)
    zz, yy, xx = np.ogrid[:shape[0], :shape[1], :shape[2]]
    big[(zz - 256) ** 2 + (yy - 256) ** 2 + ((xx - 150) * 1.0) ** 2 < 62 ** 2] = True
    box = ((194, 319), (194, 319), (88, 213))
    sl = tuple(slice(a, b) for a, b in box)
    before = state.bits[sl].copy()
    after = np.where(big[sl], np.uint16(1 << 9), before).astype(before.dtype)
    ann.commit(state.version, Delta(box, before, after), {"user": "bench", "op": "import"})
    state = ann.refresh()
    count = int(((state.bits >> 9) & 1).sum())  # the sphere plus the benchmark's strokes
    ours, base = [], []
    image = volume.data[..., 0]
    for _ in range(7):
        start = timer()
        result = roi_stats(proj.config, state, volume, 10)
        ours.append(timer() - start)
        start = timer()
        mask = (state.bits & (1 << 9)) != 0
        values = image[mask].astype(np.float64)
        _ = (values.size, values.mean(), values.std(), values.min(), values.max(),
             np.percentile(values, [5, 25, 50, 75, 95]), np.histogram(values, 64))
        base.append(timer() - start)
    assert result["stats"]["count"] == count, (result["stats"]["count"], count)
    return ours, base, count


STROKE_JS = """() => {
    window.__t_up = null; window.__t_done = null;
    document.addEventListener('mouseup', () => { window.__t_up = performance.now(); }, {capture: true, once: true});
}"""
WAIT_OVERLAY = """([before]) => {
    const gd = rilViewer.graph();
    if (window.__t_up !== null && gd.data[1].source !== before && !rilAnnotate.state().busy) {
        if (window.__t_done === null) { window.__t_done = performance.now(); }
        return true;
    }
    return false;
}"""


def browser_strokes(server) -> tuple[list[float], list[float], list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    strokes, fetches, undos, redos = [], [], [], []
    with sync_playwright() as pw:
        browser = launch_browser(pw)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        page.goto(f"{server.url}/view?series={quote(SERIES, safe='')}")
        page.wait_for_function("window.rilViewer && rilViewer.state().painted === '149f'",
                               timeout=60_000)
        page.wait_for_function("rilAnnotate.state().summary !== null")
        page.keyboard.press("9")  # ROI 9 (empty before the benchmark's strokes)
        page.keyboard.press("b")
        page.wait_for_timeout(300)
        box = page.locator("#ril-viewport").bounding_box()
        for k in range(STROKES):
            before = page.evaluate("rilViewer.graph().data[1].source")
            page.evaluate(STROKE_JS)
            x0 = box["x"] + box["width"] * (0.35 + 0.02 * k)
            y0 = box["y"] + box["height"] * 0.45
            page.mouse.move(x0, y0)
            page.mouse.down()
            for s in range(12):
                page.mouse.move(x0 + 6 * s, y0 + 4 * ((s % 4) - 2))
            page.mouse.up()
            page.wait_for_function(WAIT_OVERLAY, arg=[before], polling="raf", timeout=30_000)
            strokes.append(page.evaluate("window.__t_done - window.__t_up") / 1e3)
            fetches.append(page.evaluate("""async () => { const t = performance.now();
                await (await fetch('/ril/api/versions?series=x&limit=1')).text();
                return performance.now() - t; }""") / 1e3)
        # undo / redo with the keyboard: key press -> the overlay of the slice changes on screen
        for _ in range(UNDOS):
            for key, out in (("Control+z", undos), ("Control+Shift+z", redos)):
                before = page.evaluate("rilViewer.graph().data[1].source")
                version = page.evaluate("rilAnnotate.state().version")
                start = timer()
                page.keyboard.press(key)
                page.wait_for_function(
                    """([before, version]) => rilAnnotate.state().version > version &&
                           !rilAnnotate.state().busy && rilViewer.graph().data[1].source !== before""",
                    arg=[before, version], polling="raf", timeout=30_000)
                out.append(timer() - start)
        browser.close()
    return strokes, fetches, undos, redos


def main() -> None:
    project = make_project()
    figures: dict = {"volume": "512x512x300 int16 CT, 10 ROIs (9 annotated spheres), one ROI per voxel"}
    ours, commits, bare, durable, nbytes, file_sizes = durable_saves(project)
    figures["brush stroke applied and durably saved, p50 (ms)"] = round(median(ours) * 1e3, 1)
    figures["  of which the durable save (commit), p50 (ms)"] = round(median(commits) * 1e3, 1)
    figures["  commit p95 (ms)"] = round(percentile(commits, 95) * 1e3, 1)
    figures["baseline bare np.savez_compressed + os.replace, p50 (ms)"] = \
        round(median(bare) * 1e3, 1)
    figures["baseline the same + fsync of file and folder, p50 (ms)"] = \
        round(median(durable) * 1e3, 1)
    figures["ratio commit / bare baseline (p50)"] = round(median(commits) / median(bare), 2)
    figures["ratio commit / durable baseline (p50)"] = round(median(commits) / median(durable), 2)
    figures["changed data per stroke (bytes, before + after)"] = nbytes
    figures["version file on disk per stroke, p50 (bytes)"] = int(median(file_sizes))
    st_ours, st_base, count = statistics_times(project)
    figures[f"ROI statistics + histogram, {count:,} voxels, p50 (ms)"] = round(median(st_ours) * 1e3, 1)
    figures["baseline numpy boolean indexing + summary, p50 (ms)"] = round(median(st_base) * 1e3, 1)
    server = RunningServer(["serve", str(project)])
    try:
        strokes, fetches, undos, redos = browser_strokes(server)
    finally:
        server.stop()
    figures["stroke mouse-up -> overlay on screen, p50 (ms)"] = round(median(strokes) * 1e3, 1)
    figures["stroke mouse-up -> overlay on screen, p95 (ms)"] = round(percentile(strokes, 95) * 1e3, 1)
    figures["baseline bare fetch round trip from the page, p50 (ms)"] = round(median(fetches) * 1e3, 1)
    figures["undo (Ctrl+Z -> overlay on screen), p50 (ms)"] = round(median(undos) * 1e3, 1)
    figures["redo (Ctrl+Shift+Z -> overlay on screen), p50 (ms)"] = round(median(redos) * 1e3, 1)
    write_results("annotation", figures)


if __name__ == "__main__":
    main()
