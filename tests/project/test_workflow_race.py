"""16 processes race on 4 series with workflow transitions and guarded saves.

Each process is a different user (a member of both pools of the workflow). It repeatedly picks
a series and acquires it, or, when it believes it holds it, saves a paint stroke (with the
annotate guard), releases it or assigns it to the other pool (sometimes to one user of it); now
and then it also tries an action it should not be allowed (a "rogue" save, release or assign).
Each process logs what succeeded. The version log of every series is then checked: contiguous
ids, every logged success present with its user (no lost update) and nothing unexplained,
transitions chained on the true previous state and allowed by the rules, and every paint made
by the holder of the series at that point of the log.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import random
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ril_dash.errors import PermissionDenied, TransitionNotAllowed, VersionConflict
from ril_dash.project.annotation_store import AnnotationStore
from ril_dash.project.history import list_versions, read_version, version_name
from ril_dash.project.workflow_state import (
    annotate_guard,
    board_states,
    current_state,
    state_of,
    transition,
)
from ril_dash.workflow.machine import (
    Target,
    apply,
    can,
    initial_state,
    transition_label,
)
from ril_dash.workflow.schema import parse_workflow_yaml

pytestmark = pytest.mark.slow  # 16 processes race for ~30 s

N_PROCS, N_OPS = 16, 250
USERS = [f"u{i:02d}" for i in range(N_PROCS)]
SERIES = [f"P{i}/ST1/s{i}.nii.gz" for i in range(4)]
SHAPE = (16, 16, 8)
POOLS = ("analysts", "reviewers")
WORKFLOW_TEXT = f"""\
workflow:
  start_pool: analysts
  pools:
    analysts:  {{users: [{", ".join(USERS)}], rights: [annotate], assign_to: [reviewers]}}
    reviewers: {{users: [{", ".join(USERS)}], rights: [annotate], assign_to: [analysts]}}
"""


def _worker(root: str, index: int, logs: str, barrier) -> None:
    user, rng = USERS[index], random.Random(index)
    workflow = parse_workflow_yaml(WORKFLOW_TEXT)
    guard = annotate_guard(workflow, user)
    store = AnnotationStore(root, checkpoint_every=40)
    done, refused = [], {"transition": 0, "permission": 0, "conflict": 0}
    barrier.wait(120)
    series = {sid: store.series(sid, SHAPE) for sid in SERIES}
    for step in range(N_OPS):
        # what this process believes now (other processes may change it any moment)
        states = {sid: current_state(s, workflow) for sid, s in series.items()}
        mine = [sid for sid, st in states.items() if st.owner == user]
        free = [sid for sid, st in states.items() if st.owner is None]
        roll = rng.random()
        if mine and roll < 0.9:
            series_id = rng.choice(mine)
            kind = rng.choices(("save", "release", "assign"), (5, 3, 2))[0]
        elif free and roll < 0.95:
            series_id, kind = rng.choice(free), "acquire"
        else:  # rogue: whatever the state, the store and the rules must sort it out
            series_id = rng.choice(SERIES)
            kind = rng.choice(("acquire", "save", "release", "assign"))
        s, state = series[series_id], states[series_id]
        try:
            if kind == "save":
                st = s.load()
                x, y, z = rng.randrange(14), rng.randrange(14), rng.randrange(7)
                box = ((x, x + 2), (y, y + 2), (z, z + 1))
                before = st.bits[x:x + 2, y:y + 2, z:z + 1].copy()
                delta = SimpleNamespace(box=box, before=before, after=before ^ np.uint8(1))
                version = s.commit(st.version, delta, {"user": user, "op": "paint", "roi": 1,
                                                       "step": step}, slots={1: 0}, guard=guard)
            elif kind == "assign":
                pool = POOLS[1 - POOLS.index(state.pool)]
                target = Target(pool, rng.choice((None, rng.choice(USERS))))
                version = transition(s, workflow, user, "assign", target).version
            else:
                version = transition(s, workflow, user, kind).version
            done.append([series_id, kind, version, step])
        except TransitionNotAllowed:
            refused["transition"] += 1
        except PermissionDenied:
            refused["permission"] += 1
        except VersionConflict:  # assigned to us between our read and our save
            refused["conflict"] += 1
    Path(logs, f"{user}.json").write_text(json.dumps({"done": done, "refused": refused}))


def _replay(folder: Path, workflow) -> tuple[list[dict], object, np.ndarray]:
    """Check one series' version log; return its metas, final workflow state and bits."""
    vdir = folder / "v"
    ids = list_versions(vdir)
    assert ids == list(range(1, len(ids) + 1)), "version ids have gaps or duplicates"
    assert sorted(p.name for p in vdir.iterdir()) == [version_name(i) for i in ids]
    state, bits, metas = initial_state(workflow), np.zeros(SHAPE, np.uint8), []
    for i in ids:
        rec = read_version(vdir / version_name(i))
        meta = rec.meta
        assert (meta["id"], meta["parent"]) == (i, i - 1)
        user = meta["user"]
        if meta["op"] == "transition":
            assert state_of(meta["from"], workflow) == state, f"v{i} did not start from the " \
                                                              "previous transition's state"
            after = state_of(meta["workflow"], workflow)
            target = Target(after.pool, after.owner) if meta["action"] == "assign" else None
            assert apply(workflow, state, user, meta["action"], target) == after
            assert meta["label"] == transition_label(state, after, user, meta["action"])
            assert rec.box is None
            state = after
        else:
            assert meta["op"] == "paint"
            assert state.owner == user and can(workflow, state, user, "annotate"), \
                f"v{i}: {user} painted while {state} held the series"
            (x0, x1), (y0, y1), (z0, z1) = rec.box
            assert np.array_equal(rec.before, bits[x0:x1, y0:y1, z0:z1])
            bits[x0:x1, y0:y1, z0:z1] ^= 1
        metas.append(meta)
    return metas, state, bits


def test_sixteen_processes_race_on_workflow_and_saves(tmp_path):
    root, logs = tmp_path / "annotations", tmp_path / "logs"
    logs.mkdir()
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(N_PROCS + 1)
    procs = [ctx.Process(target=_worker, args=(str(root), i, str(logs), barrier))
             for i in range(N_PROCS)]
    for p in procs:
        p.start()
    barrier.wait(120)  # every process imported and ready
    t0 = time.perf_counter()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    race_s = time.perf_counter() - t0

    workflow = parse_workflow_yaml(WORKFLOW_TEXT)
    replayed = {sid: _replay(root / (sid + ".ril"), workflow) for sid in SERIES}
    results = {u: json.loads((logs / f"{u}.json").read_text()) for u in USERS}
    logged = [(sid, kind, v, step, u) for u, r in results.items()
              for sid, kind, v, step in r["done"]]
    # every logged success is in the log, made by that user; nothing in the log is unexplained
    assert len({(sid, v) for sid, _, v, _, _ in logged}) == len(logged)
    assert {(sid, v) for sid, _, v, _, _ in logged} == {
        (sid, m["id"]) for sid, (metas, _, _) in replayed.items() for m in metas}
    for sid, kind, v, step, user in logged:
        meta = replayed[sid][0][v - 1]
        assert meta["user"] == user
        if kind == "save":
            assert meta["op"] == "paint" and meta["step"] == step
        else:
            assert meta["op"] == "transition" and meta["action"] == kind
    # the stores agree with the replay (loading through checkpoints), and so does the board
    fresh = AnnotationStore(root, checkpoint_every=40)
    for sid, (metas, state, bits) in replayed.items():
        s = fresh.series(sid, SHAPE)
        assert current_state(s, workflow) == state and np.array_equal(s.load().bits, bits)
        assert (s.folder / "c" / version_name(40)).exists() or len(metas) < 40
    assert board_states(root, SERIES, workflow) == {sid: r[1] for sid, r in replayed.items()}

    kinds = [kind for _, kind, _, _, _ in logged]
    refused = {k: sum(r["refused"][k] for r in results.values()) for k in
               ("transition", "permission", "conflict")}
    print(f"\n{N_PROCS}×{N_OPS} operations on {len(SERIES)} series: {race_s:.1f} s, "
          f"{len(logged)} versions ({', '.join(f'{k} {kinds.count(k)}' for k in sorted(set(kinds)))}"
          f"), refused {refused}")
    # the race really exercised every path
    assert all(kinds.count(k) > 0 for k in ("acquire", "release", "assign", "save"))
    assert refused["transition"] > 0 and refused["permission"] > 0
    assert len(logged) + sum(refused.values()) == N_PROCS * N_OPS
