"""Activation maps through the application layer, with a stand-in model worker (no TensorFlow).

The stand-in's "map" of a slice is its model input itself (``resample: none``, ``normalization:
none``), so the map the application must hand back for display slice k is exactly that slice of
the series: that checks the geometry back to the display grid, the other planes and the NIfTI
export (same shape, affine and voxels as the source).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ril_dash.application import explanations as ex
from ril_dash.application import jobs
from ril_dash.core.planes import display_stack
from ril_dash.errors import ModelRunError, PermissionDenied, PluginError
from ril_dash.jobs import DONE, run_job
from ril_dash.models import catalog, worker_client
from ril_dash.models.explain_slices import PREDICTED
from tests.application.conftest import SERIES, SHAPE, actor
from tests.application.test_model_runs import bundles  # noqa: F401 (a fixture)


class MapWorker:
    """``explain`` answers the input's first channel (or zeros with ``zero``)."""

    def __init__(self):
        self.calls, self.targets, self.zero = 0, [], False

    def predict(self, ref, batch):
        return np.tile(np.float32([0.2, 0.8]), (batch.shape[0], 1))

    def explain(self, ref, batch, method, target, **options):
        self.calls += 1
        self.targets.append(target)
        maps = np.zeros(batch.shape[:3], np.float32) if self.zero else batch[..., 0].copy()
        return {"maps": maps, "layer": options.get("layer") or "conv", "seconds": 0.01,
                "regions": ["predicted"] * len(batch), "scores": np.zeros(len(batch))}


@pytest.fixture
def worker(monkeypatch):
    stand_in = MapWorker()
    monkeypatch.setattr(worker_client.ModelWorker, "shared", classmethod(lambda cls: stand_in))
    monkeypatch.setattr(catalog, "examples_root", lambda: None)
    return stand_in


@pytest.fixture
def services(bundles):
    return bundles


def source(services, series=SERIES[0]) -> np.ndarray:
    return services.volume(series).data[..., 0].astype(np.float32)


def test_a_slice_map_lines_up_with_the_image_is_kept_and_writes_no_annotation(services, worker):
    request = ex.map_request(services, "liver-seg", "gradcam", 1, layer="conv")
    before = services.annotations(SERIES[0]).version
    got = ex.slice_map(services, actor("ana"), SERIES[0], request, 2)
    np.testing.assert_array_equal(got, display_stack(source(services), "axial")[2])
    again = ex.slice_map(services, actor("ana"), SERIES[0], request, 2)
    assert worker.calls == 1 and np.array_equal(again, got)
    assert ex.slice_map(services, actor("ana"), SERIES[0], request, 3, compute=False) is None
    assert services.annotations(SERIES[0]).version == before
    ex.map_store(services).flush()  # the click's map is written after its answer
    assert (services.project.dir / ".maps" / request.key(SERIES[0]) / "2.npy").is_file()
    # another layer, target or model version is another map set
    other = ex.map_request(services, "liver-seg", "gradcam", 2, layer="conv")
    assert other.key(SERIES[0]) != request.key(SERIES[0])


def test_a_series_job_reports_progress_and_every_plane_and_the_nifti_line_up(services, worker):
    request = ex.map_request(services, "phase", "saliency", PREDICTED)
    job = ex.start_map_job(services, actor("ana"), SERIES[0], request, None)
    seen = []
    ended = run_job(jobs.job_store(services), job.id, jobs.work_for(job.kind, services),
                    on_progress=seen.append)
    assert ended.state == DONE, ended.error
    assert ended.result == {"series": SERIES[0], "model": "phase@2.0.0", "method": "saliency",
                            "layer": "conv", "computed": SHAPE[2], "total": SHAPE[2],
                            "zero": 0, "cancelled": False}
    assert worker.targets == [1]  # the predicted class of every slice (0.2, 0.8)
    assert list(seen[-1][2]) == [SHAPE[2], SHAPE[2]]
    volume = source(services)
    coronal = ex.shown_maps(services, actor("ana"), SERIES[0], request, "coronal")
    stack = display_stack(volume, "coronal")
    assert sorted(coronal) == [i for i in range(SHAPE[1]) if stack[i].max() > 0]
    for index, map2d in coronal.items():
        np.testing.assert_array_equal(map2d, stack[index])
    data = ex.map_nifti_bytes(services, actor("ana"), SERIES[0], request)
    image = nib.Nifti1Image.from_bytes(data)
    original = nib.load(services.project.series_path(SERIES[0]))
    assert image.shape == original.shape
    assert np.array_equal(image.affine, original.affine)
    np.testing.assert_array_equal(np.asarray(image.dataobj), np.asarray(original.dataobj))


def test_the_view_png_has_the_slice_the_map_and_the_colour_bar(services, worker):
    from PIL import Image
    import io

    request = ex.map_request(services, "liver-seg", "saliency", 1)
    ex.slice_map(services, actor("ana"), SERIES[0], request, 1)
    png = ex.view_png(services, actor("ana"), SERIES[0], request, "axial", 1, 0, (128, 256),
                      None, 1.0)
    picture = np.asarray(Image.open(io.BytesIO(png)))
    rows, cols = display_stack(source(services), "axial")[1].shape
    assert picture.shape == (rows, cols + 4 + 16, 3)
    assert tuple(picture[0, -1]) == (255, 0, 0) and tuple(picture[-1, -1]) == (128, 0, 255)
    with pytest.raises(PluginError, match="No map of axial slice 3 is computed"):
        ex.view_png(services, actor("ana"), SERIES[0], request, "axial", 2, 0, (128, 256),
                    None, 1.0)


def test_bad_requests_are_refused_with_what_to_choose(services, worker):
    with pytest.raises(PluginError, match="liver-seg@1.0.0 has no target 0; choose one of "
                                          "1 \\(Liver\\), 2 \\(Spleen\\)"):
        ex.map_request(services, "liver-seg", "gradcam", 0)
    with pytest.raises(PluginError, match="phase@2.0.0 has no target 5; choose one of -1 "
                                          "\\(the predicted class\\), 0 \\(arterial\\)"):
        ex.map_request(services, "phase", "cam", 5)
    with pytest.raises(PluginError, match="unknown map method 'lime'"):
        ex.map_request(services, "phase", "lime", 0)
    request = ex.map_request(services, "liver-seg", "gradcam", 1)
    with pytest.raises(PluginError, match="slice 9 is outside the series \\(1 to 4\\)"):
        ex.slice_map(services, actor("ana"), SERIES[0], request, 8)
    with pytest.raises(PermissionDenied):
        ex.slice_map(services, actor("sam"), SERIES[0], request, 1)
    with pytest.raises(PluginError, match="No map of this series is computed yet"):
        ex.map_nifti_bytes(services, actor("ana"), SERIES[1], request)
    worker.zero = True
    with pytest.raises(ModelRunError, match="The gradcam map of slice 2 is zero everywhere: "
                                            "liver-seg@1.0.0 shows no positive evidence"):
        ex.slice_map(services, actor("ana"), SERIES[1], request, 1)
    assert services.annotations(SERIES[1]).version == 0


def test_a_cancelled_map_job_stops_between_chunks_and_says_so(services, worker):
    request = ex.map_request(services, "liver-seg", "saliency", 2)
    job = ex.start_map_job(services, actor("ana"), SERIES[0], request, (1, 2))
    assert (job.params["first"], job.params["last"]) == (1, 2)
    result = ex.run_map_job(services, job, lambda *a: None, lambda: True)
    assert result["cancelled"] is True and result["computed"] == 0 and worker.calls == 0
    result = ex.run_map_job(services, job, lambda *a: None, lambda: False)
    assert result["computed"] == 2 and result["total"] == 2
    assert ex.map_store(services).indices(request.key(SERIES[0])) == [1, 2]
    with pytest.raises(PluginError, match="The range is outside the series \\(slices 1 to 4\\)"):
        ex.start_map_job(services, actor("ana"), SERIES[0], request, (6, 9))


def test_a_map_put_in_the_background_is_read_at_once_and_a_failed_write_loses_only_time(
        tmp_path, caplog):
    from ril_dash.application.map_store import MapStore

    store, map2d = MapStore(tmp_path), np.arange(12, dtype=np.float32).reshape(3, 4)
    gate = __import__("threading").Event()
    from ril_dash.application import map_store as module

    module._writer().submit(gate.wait, 10)  # hold the writer: the put stays pending
    store.put("k", 5, map2d, background=True)
    assert store.indices("k") == [5] and np.array_equal(store.get("k", 5), map2d)
    assert not (tmp_path / ".maps" / "k" / "5.npy").exists()
    gate.set()
    store.flush()
    assert np.array_equal(np.load(tmp_path / ".maps" / "k" / "5.npy"), map2d)
    assert store.pending == {} and store.indices("k") == [5]

    (tmp_path / ".maps" / "bad").write_bytes(b"")  # a file where the set's folder goes
    store.put("bad", 6, map2d, background=True)
    store.flush()
    assert store.pending == {} and store.get("bad", 6) is None and store.indices("bad") == []
    assert "not kept" in caplog.text
