"""The benchmark's robot annotator (``tests/benchmarks/robot.py``) on a tiny series: it reaches
the slice Dice target through the viewer's edit path (one manual version per stroke), is
reproducible for a seed, and stops when its stroke budget is spent."""

from __future__ import annotations

import numpy as np

from ril_dash.core.planes import display_stack
from tests.application.conftest import SERIES, SHAPE, actor
from tests.benchmarks.robot import Settings, correct, plan_stroke

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
