"""How bundles and model runs read in the UI (pure helpers: no server, no TensorFlow), and
the bundles grouped per id with the project's settings."""

from __future__ import annotations

from dataclasses import replace

import pytest
from model_bundles import write_bundle

from ril_dash.models.manifest import load_manifest
from ril_dash.ui.components.model_batch import batch_series
from ril_dash.ui.components.model_panel import run_slices
from ril_dash.ui.components.model_text import (estimate_slices, input_summary, model_label,
                                               model_result_lines, output_summary,
                                               runtime_estimate, validation_summary)
from ril_dash.ui.model_catalog import bundle_views


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    root = tmp_path_factory.mktemp("plugins")
    seg = load_manifest(write_bundle(root, "kidney-seg", "1.0.0", name="Kidney segmentation")
                        / "plugin.yaml")
    phase = load_manifest(write_bundle(root, "phase", "0.1.0", task="classification")
                          / "plugin.yaml")
    return seg, phase


def test_input_and_output_summaries(manifests):
    seg, phase = manifests
    assert model_label(seg) == "Kidney segmentation 1.0.0 (segmentation)"
    assert input_summary(seg) == "axial · 32×32 (resized) · window -160…240 → 0…1 · 1 slice"
    assert output_summary(seg) == "Right kidney (channel 1), Left kidney (channel 2) (softmax)"
    assert output_summary(phase) == ("Contrast phase ← non-contrast, arterial, portal-venous, "
                                     "delayed (softmax, mean over all slices)")
    spacing = replace(seg, input=replace(seg.input, resample="spacing", spacing=(0.8, 0.8),
                                         slices=3, flip=("rows",)),
                      normalization=replace(seg.normalization, method="zscore",
                                            scope="volume", clip=(-3.0, 3.0)),
                      output=replace(seg.output, activation="sigmoid", threshold=0.4,
                                     largest_component=True, min_size=20))
    assert input_summary(spacing) == ("axial · 32×32 (at 0.8×0.8 mm) · z-score per volume, "
                                      "clipped to -3…3 · 3 slices (2.5D) · flip rows")
    assert output_summary(spacing) == ("Right kidney (channel 1), Left kidney (channel 2) "
                                       "(sigmoid > 0.4; largest component; min 20 voxels)")


def test_runtime_estimate_and_slices(manifests):
    seg, phase = manifests
    assert runtime_estimate(0.02, 150) == "about 3 s for 150 slices"
    assert runtime_estimate(0.02, 1) == "under 1 s for 1 slice"
    assert runtime_estimate(2.0, 100) == "about 3 min 20 s for 100 slices"
    assert estimate_slices(seg, 90) == 90
    middle = replace(phase, output=replace(phase.output, slices="middle"))
    assert estimate_slices(middle, 90) == 30 and estimate_slices(middle, 2) == 2


def test_validation_summary(manifests):
    seg, _ = manifests
    assert validation_summary(seg) == "—"
    assert validation_summary(replace(seg, validation={
        "date": "2026-12-01", "summary": "Dice 0.93"})) == "Dice 0.93 (2026-12-01)"
    assert validation_summary(replace(seg, validation={
        "metrics": {"dice_right": 0.93, "n": 2}})) == "dice_right 0.93, n 2"


def test_run_slices_by_scope(manifests):
    seg, phase = manifests
    assert run_slices(seg, "series", "coronal", 5, None, None, 80) == (None, 80)
    assert run_slices(seg, "slice", "axial", 12, None, None, 80) == ((12, 12), 1)
    # the range is given 1-based as shown to users, clipped to the series, either order
    assert run_slices(seg, "range", "axial", 0, 70, 5, 60) == ((4, 59), 56)
    with pytest.raises(ValueError, match="switch the viewer to the axial plane"):
        run_slices(seg, "slice", "coronal", 12, None, None, 80)
    with pytest.raises(ValueError, match="first and the last slice"):
        run_slices(seg, "range", "axial", 0, 3, None, 80)
    with pytest.raises(ValueError, match="outside the series"):
        run_slices(seg, "range", "axial", 0, 90, 95, 80)
    with pytest.raises(ValueError, match="whole series only"):
        run_slices(phase, "slice", "axial", 3, None, None, 80)


def test_batch_series_from_grid_rows():
    rows = [{"id": "b"}, {"id": "a"}, {"id": "b"}]
    assert batch_series("selected", rows, [{"id": "z"}]) == ["b", "a"]
    assert batch_series("shown", rows, [{"id": "z"}, {"name": "no id"}]) == ["z"]
    assert batch_series("selected", None, rows) == []


def test_result_lines_of_a_segmentation_run():
    result = {"model": "kidney-seg@1.0.0", "task": "segmentation", "series": 4,
              "drafted": [["P1/a", 3], ["P2/b", 7]], "drafted_total": 2,
              "unchanged": [["P3/c", None]], "unchanged_total": 1,
              "skipped": [["P4/d", "being edited by bob"]], "skipped_total": 3,
              "notes": ["P1/a: Left kidney is locked: left as it was"], "load_seconds": 4.26,
              "cancelled": True}
    assert model_result_lines(result) == [
        ("kidney-seg@1.0.0 drafted 2 of 4 series (1 unchanged: nothing new to write).", "ok"),
        ("Cancelled: the series drafted so far each have a complete new version; the others "
         "were not touched.", "warning"),
        ("P1/a: version 3", "muted"), ("P2/b: version 7", "muted"),
        ("Skipped P4/d: being edited by bob", "warning"),
        ("… and 2 more skipped series.", "muted"),
        ("P1/a: Left kidney is locked: left as it was", "muted"),
        ("Loading the model took 4.3 s.", "muted"),
    ]


def test_result_lines_of_a_classification():
    result = {"model": "phase@0.1.0", "task": "classification", "series": 1,
              "drafted": [["P1/a", 5, "arterial", 0.912]], "unchanged": [], "skipped": [],
              "notes": [], "load_seconds": 0.1, "cancelled": False}
    assert model_result_lines(result) == [
        ("phase@0.1.0 classified 1 of 1 series.", "ok"),
        ("P1/a: arterial (probability 0.91), version 5", "muted")]


def test_bundle_views_newest_first_with_the_active_version(tmp_path):
    from ril_dash.models.catalog import discover
    from ril_dash.models.registry import ModelState

    for version in ("1.0.0", "1.10.0", "1.2.0"):
        write_bundle(tmp_path, "kidney-seg", version, model=version.encode())
    broken = tmp_path / "kidney-seg" / "2.0.0"
    broken.mkdir()
    (broken / "plugin.yaml").write_text("id: kidney-seg\nversion: 2.0.0\nsise: 1\n")
    (tmp_path / "other" / "0.1.0").mkdir(parents=True)
    entries = discover([tmp_path])
    default = bundle_views(entries, ModelState())
    assert [v.id for v in default] == ["kidney-seg", "other"]
    kidney = default[0]
    assert [v.entry.version for v in kidney.versions] == ["2.0.0", "1.10.0", "1.2.0", "1.0.0"]
    assert kidney.enabled and kidney.active == "1.10.0"  # the newest usable one
    assert [v.active for v in kidney.versions] == [False, True, False, False]
    assert default[1].current is None and default[1].name == "other"
    one = kidney.versions[-1].manifest.sha256
    pinned = bundle_views(entries, ModelState({"kidney-seg": False}, {"kidney-seg": "1.0.0"},
                                              {one: {"user": "root"}}))[0]
    assert not pinned.enabled and pinned.current.entry.version == "1.0.0"
    assert pinned.versions[-1].trusted == {"user": "root"} and pinned.versions[1].trusted is None
