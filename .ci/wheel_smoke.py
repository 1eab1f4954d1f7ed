"""Smoke test of the real wheel: build it, install it in a fresh venv, open the viewer in Chromium.

``python3 .ci/wheel_smoke.py`` (called by ``.ci/run`` after the test suite) checks what the test
suite cannot, since the tests import ``ril_dash`` from the source tree:

1. a wheel built from a clean copy of the tree (``pip wheel --no-deps``) holds every module, the
   browser scripts and styles (``ril_dash/assets/``), plotly.js's cartesian bundle
   (``ril_dash/ui/vendor/``), the MNI152 files, and not the README's screenshots;
2. ``pip install`` of that wheel into a fresh ``python3 -m venv`` (dependencies from the package
   index) gives a ``ril-dash`` console script that imports ``ril_dash`` from the venv;
3. that script serves the demo project (``RIL_DASH_HOME`` in a temporary folder) on a free port;
   a series opens in headless Chromium with the viewer's script running (``window.rilViewer``)
   and its slice painted, and every installed script and style is served unchanged;
4. the venv's ``ril-dash run-model`` drafts both kidneys of a demo series with the example
   bundle shipped in the wheel, through the venv's own model worker (TensorFlow from the index).

It is not a pytest test (``.ci/`` is outside the test paths): it needs minutes and the network's
package index, which the README's test command should not. ``--source DIR`` builds the wheel of
another tree (e.g. an older commit, to see the smoke test fail on its packaging); ``--keep``
keeps the temporary folder. The checks after the install all run; exits 0 when every one passes,
1 (listing those that failed) otherwise.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support import CHROMIUM, CHROMIUM_ARGS, RunningServer  # noqa: E402  (tests/support.py)

SERIES = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
#: what the wheel must hold besides the modules
REQUIRED = ("ril_dash/assets/ril.css", "ril_dash/assets/ril.js", "ril_dash/assets/ril_viewer.js",
            "ril_dash/assets/ril_annotate.js", "ril_dash/assets/ril_lease.js",
            "ril_dash/ui/vendor/plotly-cartesian.min.js",
            "ril_dash/ui/vendor/LICENSE.plotly.js.txt", "ril_dash/data/mni152/NOTICE.md",
            "ril_dash/data/mni152/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
            "ril_dash/data/mni152/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
            "ril_dash/data/mni152/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
            "ril_dash/plugins/kidney-seg/1.0.0/plugin.yaml",
            "ril_dash/plugins/kidney-seg/1.0.0/model.keras",
            "ril_dash/plugins/contrast-phase/1.0.0/plugin.yaml",
            "ril_dash/plugins/contrast-phase/1.0.0/model.keras")
#: build leftovers that must not leak into the copy the wheel is built from
SKIP = shutil.ignore_patterns(".git", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", "*.pyc")
#: the viewer's full-resolution middle slice is painted (state reported by ril_viewer.js)
PAINTED_JS = """() => {
    const v = window.rilViewer, gd = document.querySelector('#viewer-graph .js-plotly-plot');
    if (!v || !gd || !gd.data) { return false; }
    const s = v.state();
    return s.painted === s.index + 'f' && gd.data[0].source.startsWith('data:image/png;base64,');
}"""


class SmokeFailure(Exception):
    """A check of the installed wheel failed."""


def run(cmd: list, **kw) -> None:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if done.returncode:
        raise SmokeFailure(f"{' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}")


def build_wheel(source: Path, work: Path) -> Path:
    tree = work / "source"
    shutil.copytree(source, tree, ignore=SKIP)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", tree])
    (wheel,) = (work / "dist").glob("ril_dash-*.whl")
    return wheel


def check_contents(wheel: Path, source: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(source).as_posix() for p in (source / "ril_dash").rglob("*.py")}
    missing = sorted((set(REQUIRED) | modules) - names)
    if missing:
        raise SmokeFailure(f"{wheel.name} lacks {len(missing)} file(s): {', '.join(missing[:12])}")
    readme = sorted(n for n in names if "/readme/" in n)
    if readme:
        raise SmokeFailure(f"{wheel.name} holds the README's screenshots: {', '.join(readme)}")


def install(wheel: Path, work: Path) -> Path:
    venv = work / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel])
    return venv


def installed_package(venv: Path) -> Path:
    """The ``ril_dash`` folder the venv imports (from outside any checkout)."""
    where = "import ril_dash, pathlib; print(pathlib.Path(ril_dash.__file__).parent)"
    done = subprocess.run([venv / "bin" / "python", "-c", where], capture_output=True, text=True,
                          cwd=venv, env={"PATH": "/usr/bin:/bin"})
    package = Path(done.stdout.strip())
    if done.returncode or not package.is_relative_to(venv):
        raise SmokeFailure(f"the venv does not import its own ril_dash: {done.stdout}{done.stderr}")
    return package


def open_viewer(url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/view?series={urllib.parse.quote(SERIES, safe='')}")
        try:
            page.wait_for_function(PAINTED_JS, timeout=45_000)
        except Exception as exc:  # Playwright's TimeoutError: say what is missing instead
            has_script = page.evaluate("!!window.rilViewer")
            raise SmokeFailure(
                "the viewer did not paint its slice: " + (
                    "its script is missing (no window.rilViewer)" if not has_script
                    else f"window.rilViewer exists but nothing was painted ({exc})")
                + (f"; page errors: {errors}" if errors else "")) from None
        finally:
            browser.close()
    if errors:
        raise SmokeFailure(f"the viewer page raised: {errors}")


def check_served(url: str, package: Path) -> None:
    """Every installed script and style is served unchanged under /assets/."""
    installed = sorted((package / "assets").glob("*.[jc]s*"))
    if not installed:
        raise SmokeFailure(f"no scripts or styles were installed in {package / 'assets'}")
    for path in installed:
        try:
            with urllib.request.urlopen(f"{url}/assets/{path.name}", timeout=30) as reply:
                served = reply.read()
        except OSError as exc:
            raise SmokeFailure(f"/assets/{path.name}: {exc}") from None
        if served != path.read_bytes():
            raise SmokeFailure(f"/assets/{path.name} is not the installed file")


def run_example_model(venv: Path, work: Path) -> None:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "RIL_DASH_HOME": str(work / "home"),
           "RIL_DASH_WORKER_DIR": str(work / "worker"), "RIL_DASH_WORKER_IDLE_S": "30"}
    demo = work / "home" / "demo-project"
    done = subprocess.run([venv / "bin" / "ril-dash", "run-model", demo, "--model", "kidney-seg",
                           "--series", "PHANTOM-001/*/portal-venous.nii.gz"],
                          capture_output=True, text=True, env=env, cwd=work, timeout=600)
    subprocess.run([venv / "bin" / "python", "-c", "from ril_dash.models.worker_client import "
                    "ModelWorker; ModelWorker.shared().shutdown()"], env=env, cwd=work,
                   capture_output=True, timeout=60)
    if done.returncode or "1 series drafted" not in done.stdout:
        raise SmokeFailure(f"run-model failed ({done.returncode}): {done.stdout[-800:]}"
                           f"{done.stderr[-800:]}")


def smoke(source: Path, work: Path, wheel: Path | None) -> list[str]:
    """Run the checks; return what failed (a failure that stops the rest is raised)."""
    failures: list[str] = []

    def step(label: str, fn, *args, fatal=True):
        t0 = time.monotonic()
        try:
            result = fn(*args)
        except SmokeFailure as exc:
            if fatal:
                raise
            failures.append(f"{label}: {exc}")
            print(f"wheel smoke: {label}: FAILED", flush=True)
            return None
        print(f"wheel smoke: {label} ({time.monotonic() - t0:.1f} s)", flush=True)
        return result

    wheel = wheel or step("built the wheel", build_wheel, source, work)
    step(f"checked the contents of {wheel.name}", check_contents, wheel, source, fatal=False)
    venv = step("installed it with its dependencies in a fresh venv", install, wheel, work)
    package = installed_package(venv)
    server = step("started the venv's ril-dash on the demo project", RunningServer, [],
                  {"RIL_DASH_HOME": str(work / "home"), "PYTHONPATH": ""}, 180,
                  [str(venv / "bin" / "ril-dash")])
    try:
        step(f"opened {SERIES} in Chromium", open_viewer, server.url, fatal=False)
        step("compared the served scripts and styles with the installed ones", check_served,
             server.url, package, fatal=False)
    finally:
        server.stop()
    step("drafted a demo series with the shipped kidney-seg bundle (ril-dash run-model)",
         run_example_model, venv, work, fatal=False)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT,
                        help="the tree to build the wheel from (default: this checkout)")
    parser.add_argument("--wheel", type=Path, help="test this wheel instead of building one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="ril-wheel-smoke-"))
    t0 = time.monotonic()
    try:
        failures = smoke(args.source.resolve(), work, args.wheel and args.wheel.resolve())
    except (SmokeFailure, RuntimeError) as exc:  # RuntimeError: the server did not start
        failures = [str(exc)]
    finally:
        if args.keep:
            print(f"wheel smoke: kept {work}")
        else:
            t1 = time.monotonic()
            shutil.rmtree(work, ignore_errors=True)
            print(f"wheel smoke: removed the temporary folder ({time.monotonic() - t1:.1f} s)")
    if failures:
        print("wheel smoke: FAILED:\n" + "\n".join(f"- {f}" for f in failures), file=sys.stderr)
        return 1
    print(f"wheel smoke: passed in {time.monotonic() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
