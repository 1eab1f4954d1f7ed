"""The benchmark's robot annotator (``tests/benchmarks/robot.py``) on a tiny series: it reaches
the slice Dice target through the viewer's edit path (one manual version per stroke), is
reproducible for a seed, and stops when its stroke budget is spent."""

from __future__ import annotations

import numpy as np

from ril_dash.core.planes import display_stack
from tests.application.conftest import SERIES, SHAPE, actor
from tests.application.test_training import paint
from tests.benchmarks.robot import Settings, correct, current_mask, plan_clear, plan_stroke

ROOT = actor("root", admin=True)


def _truth() -> np.ndarray:
    truth = np.zeros(SHAPE, bool)
    truth[1:6, 2:7, 1:3] = True  # 5 x 5 on slices 1 and 2
    return np.ascontiguousarray(display_stack(truth, "axial"))


def test_the_robot_reaches_the_target_with_strokes_saved_as_versions(services):
    truth = _truth()
    result = correct(services, ROOT, SERIES[0], 1, truth, Settings(seed=3))
    assert result.done and result.end_min_slice >= 0.95
    assert result.start_dice == 0.0 and result.end_dice >= 0.95
    assert result.strokes == result.brush + result.eraser > 0
    versions = services.annotations(SERIES[0]).versions()
    assert len(versions) <= result.strokes  # a stroke that changed nothing saves nothing
    assert {(v.user, v.op) for v in versions} <= {("root", "paint"), ("root", "erase")}
    finished = correct(services, ROOT, SERIES[0], 1, truth, Settings(seed=3))
    assert (finished.strokes, finished.done) == (0, True)  # nothing left to correct


def test_the_robot_stops_when_its_budget_is_spent(services):
    result = correct(services, ROOT, SERIES[0], 1, _truth(), Settings(budget=1))
    assert (result.strokes, result.done) == (1, False)
    assert len(services.annotations(SERIES[0]).versions()) == 1


def test_a_stroke_fits_its_brush_to_the_error_and_stays_inside_it():
    component = np.zeros((20, 20), bool)
    component[5:8, 2:18] = True  # a 3-pixel-thick bar along x
    points, diameter = plan_stroke(component, Settings(noise=0.0), np.random.default_rng(0))
    assert diameter == 4.0  # twice its inner distance of 2
    assert np.allclose(points[:, 1], 6.0, atol=0.6)  # along the bar's middle row (jitter 0.25)
    assert points[:, 0].max() - points[:, 0].min() > 10
    same, _ = plan_stroke(component, Settings(noise=0.0), np.random.default_rng(0))
    assert np.array_equal(points, same)  # seeded noise: reproducible


def test_a_mostly_wrong_slice_is_cleared_with_one_lasso_then_drawn_again(services):
    truth = _truth()  # slices 1 and 2
    draft = np.zeros(SHAPE, bool)
    draft[6:8, 0:2, 1] = True  # slice 1: only voxels outside the organ (Dice 0)
    draft[1:6, 2:7, 2] = True  # slice 2: right
    draft[3:7, 3:7, 3] = True  # slice 3: the organ is not there
    paint(services, SERIES[0], draft)
    result = correct(services, ROOT, SERIES[0], 1, truth, Settings(seed=3))
    assert result.done and result.end_min_slice >= 0.95
    assert result.cleared == 2  # slices 1 and 3, one loop each
    steps = sorted(services.annotations(SERIES[0]).versions(), key=lambda v: v.id)
    assert [(v.op, v.tool) for v in steps[1:3]] == [("erase", "lasso_erase")] * 2  # two loops
    mask = np.ascontiguousarray(display_stack(draft, "axial"))
    after_loops = services.state(SERIES[0], steps[2].id)
    cleared = current_mask(after_loops, 1)
    assert not cleared[1].any() and not cleared[3].any()  # each loop emptied its slice
    assert np.array_equal(cleared[2], mask[2])  # and left the others alone
    assert result.strokes == result.brush + result.eraser and result.eraser >= 2


def test_a_clearing_loop_goes_round_every_voxel_of_the_slice():
    mask = np.zeros((20, 20), bool)
    mask[4:9, 5:12] = True
    mask[15, 1] = True
    corners = plan_clear(mask, Settings(noise=0.0), np.random.default_rng(0))
    xs, ys = corners[:, 0], corners[:, 1]
    assert xs.min() < 1 - 2 and xs.max() > 11 + 2 and ys.min() < 4 - 2 and ys.max() > 15 + 2
