"""Benchmark: simulated users (25 by default) on one multi-user server (logins, workflow, leases).

Each simulated user has its own HTTP connection and cookies: it logs in, holds its own
series in the workflow, opens it (the viewer takes the lease) and then works like an annotator:
after a warm-up of 8 slice reads (not measured: each server process decodes the volume once), it
reads the slice it is on and its two neighbours, draws a brush stroke (``POST
/ril/api/edit``), waits a think time of 1.0–2.0 s, moves one slice and repeats. Users start at
random moments within one think time (people do not work in step; a synchronised start would
measure 25 simultaneous clicks instead). The paint
commit latency is the round trip of the edit request (rasterise, rules, durable save, new
overlay). The same script with one user gives the single-user figure, in the same run, against
a server started the same way.

Afterwards every series is read back from the store: each acknowledged stroke must be there (one
version per stroke, by its user; nothing lost) and every response must have been 200.

The users run as coroutines on the event loops of a few load generator processes
(``--clients``, 2 by default, users shared among them) with a small HTTP/1.1 client
(``async_http.py``, one kept-alive connection per user, as ``requests`` keeps one): an earlier
version ran every user as its own process with ``requests``, which on the 2-core test machine
put 100 Python processes and about a millisecond of client CPU per request next to the server
being measured. What is measured is unchanged: each latency runs from before the request is
encoded until its whole reply is read. The CPU seconds the load generator used are reported
with the figures.

Both runs use the same server: ``ril-dash serve --login --workflow … --threads T --workers W``
(W = 2 by default: one process per core of the 2-core test machine; with W > 1 on Linux and
macOS that is gunicorn's pre-fork server, else one waitress process). The machine's load
average (1 minute) before and after each run and its core count go with the figures: the
simulated users run on the same machine as the server.

Usage: ``python tests/benchmarks/bench_multiuser.py [--users 25] [--seconds 40] [--workers 2]
[--threads 32] [--clients 2]``; a busy department: ``--users 100 --workers 4``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from async_http import AsyncHttp  # noqa: E402
from common import BENCH_DIR, RunningServer, median, percentile, write_results  # noqa: E402

PASSWORD = "bench-password-1"
SHAPE = (256, 256, 48)


def make_project(n_users: int) -> Path:
    """A project with one 256×256×48 CT per user, a users file and a one-pool workflow."""
    import nibabel as nib
    import numpy as np

    from ril_dash.demo.phantom import make_phantom
    from ril_dash.project.project import init_project
    from ril_dash.project.users import UsersFile

    root = BENCH_DIR / f"multiuser-{n_users}"
    if root.exists():
        shutil.rmtree(root)
    images = root / "images"
    phantom = make_phantom(3, "portal-venous", shape=SHAPE, spacing=(1.4, 1.4, 4.0))
    image = nib.Nifti1Image(phantom.hu.astype(np.int16), phantom.affine)
    image.set_data_dtype(np.int16)
    for i in range(n_users):
        path = images / f"user{i:02d}" / "ct.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, path)
    init_project(root, images, name=f"bench {n_users} users")
    users = UsersFile.for_project(root)
    for i in range(n_users):
        users.add(f"user{i:02d}", PASSWORD)
    names = ", ".join(f"user{i:02d}" for i in range(n_users))
    (root / "workflow.yaml").write_text(
        "workflow:\n  start_pool: analysts\n  pools:\n"
        f"    analysts: {{users: [{names}], rights: [annotate]}}\n")
    return root


def hold_series(root: Path, n_users: int) -> None:
    """Each user acquires their own series (as they would on the workflow board)."""
    from ril_dash.core.volume import canonical_shape
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project
    from ril_dash.project.workflow_state import transition
    from ril_dash.workflow.schema import load_workflow_file

    project = Project.open(root)
    workflow = load_workflow_file(root / "workflow.yaml")
    store = AnnotationStore(project.config.annotations)
    for i in range(n_users):
        series = f"user{i:02d}/ct.nii.gz"
        shape = canonical_shape(project.series_path(series))
        transition(store.series(series, shape), workflow, f"user{i:02d}", "acquire")


async def simulated_user(host: str, port: int, index: int, seconds: float,
                         start_at: float) -> tuple:
    """One annotator's loop; returns (index, commit latencies, slice latencies, errors,
    strokes)."""
    user, series = f"user{index:02d}", f"user{index:02d}/ct.nii.gz"
    rng = random.Random(index)
    http = AsyncHttp(host, port)
    commits, slices, errors, strokes = [], [], [], 0

    def slice_params(z: int) -> dict:
        return {"series": series, "plane": "axial", "index": z, "frame": 0, "wc": 40,
                "ww": 400}

    try:
        status, _, _ = await http.request("POST", "/login", form={
            "user": user, "password": PASSWORD, "next": "/"})
        if status not in (302, 303):
            raise RuntimeError(f"login failed for {user}: {status}")
        await http.request("GET", "/view", params={"series": series})  # page + lease
        _, _, body = await http.request("POST", "/ril/api/lease",
                                        json_body={"series": series, "action": "renew"})
        if not json.loads(body).get("editable"):
            raise RuntimeError(f"{user} cannot edit: {body[:200]!r}")
        _, _, body = await http.request("GET", "/ril/api/annotations",
                                        params={"series": series, "plane": "axial"})
        version = json.loads(body)["version"]
        index_z = SHAPE[2] // 2
        for z in range(8):  # warm-up, not measured: every server process decodes the volume
            await http.request("GET", "/ril/api/slice", params=slice_params(z))
        end = start_at + seconds
        start_at += rng.uniform(0.0, 2.0)  # people do not start in step: one think time apart
        await asyncio.sleep(max(0.0, start_at - time.time()))
        while time.time() < end:
            for z in (index_z, index_z + 1, index_z - 1):
                t0 = time.perf_counter()
                status, _, _ = await http.request("GET", "/ril/api/slice",
                                                  params=slice_params(z))
                slices.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(f"slice {status}")
            x0, y0 = rng.randint(40, 200), rng.randint(40, 200)
            path = "M{},{}L{},{}L{},{}".format(x0, y0, x0 + 12, y0 + 3, x0 + 20, y0 + 10)
            edit = {"series": series, "roi": 1, "plane": "axial", "index": index_z,
                    "frame": 0, "tool": "brush", "path": path, "brush": 5,
                    "brush_unit": "vox", "depth": 0, "parent": version}
            t0 = time.perf_counter()
            status, _, body = await http.request("POST", "/ril/api/edit", json_body=edit)
            commits.append(time.perf_counter() - t0)
            if status != 200:
                errors.append(f"edit {status}: {body[:200]!r}")
            else:
                reply = json.loads(body)
                version = reply["version"]
                strokes += 1 if reply["changed"] else 0
            index_z = max(1, min(SHAPE[2] - 2, index_z + rng.choice((-1, 1))))
            await asyncio.sleep(rng.uniform(1.0, 2.0))
    except Exception as exc:  # noqa: BLE001 - reported as an error of this user
        errors.append(repr(exc))
    finally:
        await http.close()
    return index, commits, slices, errors, strokes


def client_process(url: str, indices: list[int], seconds: float, start_at: float, out) -> None:
    """Run the users ``indices`` on one event loop; put their results and this process's CPU
    seconds on ``out``."""
    host, port = url.rsplit("//", 1)[1].rsplit(":", 1)

    async def everyone() -> list:
        return await asyncio.gather(*(simulated_user(host, int(port), i, seconds, start_at)
                                      for i in indices))

    results = asyncio.run(everyone())
    out.put((results, time.process_time()))


def run(n_users: int, seconds: float, workers: int, threads: int, clients: int) -> dict:
    root = make_project(n_users)
    hold_series(root, n_users)
    server = RunningServer(["serve", str(root), "--login", "--workflow",
                            str(root / "workflow.yaml"), "--threads", str(threads),
                            "--workers", str(workers)])
    load_before = os.getloadavg()[0]
    try:
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 10 + 0.5 * n_users  # all logged in and warmed up by then
        clients = max(1, min(clients, n_users))
        procs = [ctx.Process(target=client_process, args=(
            server.url, list(range(c, n_users, clients)), seconds, start_at, out))
            for c in range(clients)]
        for p in procs:
            p.start()
        replies = [out.get(timeout=seconds + 300) for _ in procs]
        for p in procs:
            p.join(30)
        load_after = os.getloadavg()[0]
    finally:
        server.stop()
    results = [r for reply in replies for r in reply[0]]
    client_cpu = sum(reply[1] for reply in replies)
    return {"root": root, "results": sorted(results), "load": (load_before, load_after),
            "client_cpu": client_cpu, "wall": time.time() - (start_at - 10 - 0.5 * n_users)}


def check_saved(root: Path, results) -> tuple[int, int]:
    """(strokes acknowledged, strokes found in the store by their users)."""
    from ril_dash.core.volume import canonical_shape
    from ril_dash.project.annotation_store import AnnotationStore
    from ril_dash.project.project import Project

    project = Project.open(root)
    store = AnnotationStore(project.config.annotations)
    acked = found = 0
    for index, _commits, _slices, _errors, strokes in results:
        series = f"user{index:02d}/ct.nii.gz"
        annotations = store.series(series, canonical_shape(project.series_path(series)))
        mine = [v for v in annotations.versions() if v.op == "paint" and
                v.user == f"user{index:02d}"]
        acked += strokes
        found += len(mine)
    return acked, found


def summarise(label: str, run_: dict) -> dict:
    results = run_["results"]
    commits = [c for r in results for c in r[1]]
    slices = [s for r in results for s in r[2]]
    errors = [e for r in results for e in r[3]]
    acked, found = check_saved(run_["root"], results)
    for e in errors[:10]:
        print(f"  {label} error: {e}")
    return {"commits": len(commits), "commit_p50_ms": round(median(commits) * 1000, 1),
            "commit_p95_ms": round(percentile(commits, 95) * 1000, 1),
            "slice_p50_ms": round(median(slices) * 1000, 1),
            "slice_p95_ms": round(percentile(slices, 95) * 1000, 1),
            "errors": len(errors), "strokes_acknowledged": acked, "strokes_in_store": found,
            "load average before / after": "{:.1f} / {:.1f}".format(*run_["load"]),
            "load generator CPU (s, whole run with set-up)": round(run_["client_cpu"], 1),
            "wall time of the run (s)": round(run_["wall"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--threads", type=int, default=32, help="threads per server process")
    parser.add_argument("--clients", type=int, default=2,
                        help="load generator processes (the users are shared among them)")
    args = parser.parse_args()
    if args.users > 100:
        parser.error("--users: at most 100 (the users are named user00 to user99)")
    single = summarise("1 user", run(1, args.seconds, args.workers, args.threads, args.clients))
    many = summarise(f"{args.users} users",
                     run(args.users, args.seconds, args.workers, args.threads, args.clients))
    figures = {"server processes": args.workers, "threads per process": args.threads,
               "load generator processes": args.clients, "cores": os.cpu_count()}
    figures.update({f"single user: {k}": v for k, v in single.items()})
    figures.update({f"{args.users} users: {k}": v for k, v in many.items()})
    figures["p95 commit ratio (many / single)"] = round(
        many["commit_p95_ms"] / single["commit_p95_ms"], 2)
    figures["lost strokes"] = many["strokes_acknowledged"] - many["strokes_in_store"] + \
        single["strokes_acknowledged"] - single["strokes_in_store"]
    write_results(f"multiuser-{args.users}users-{args.workers}proc", figures)


if __name__ == "__main__":
    main()
