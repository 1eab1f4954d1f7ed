"""Semi-automatic contouring on synthetic images: snap, auto-contouring stop rules, fill between
slices, parameter checks, and the paint rules (locks, intensity window, one ROI per voxel)."""

from __future__ import annotations

import numpy as np
import pytest

from ril_dash.core.contour_params import PRESETS, SnapParams, snap_params
from ril_dash.core.contour_propagate import SeedModel, StopRules, intensity_range, propagate
from ril_dash.core.contour_snap import snap_mask
from ril_dash.core.paint import Rules, roi_mask, set_slices
from ril_dash.core.planes import display_view
from ril_dash.core.slice_interpolation import interpolate_slices
from ril_dash.errors import EditRefused

N = 96
YY, XX = np.mgrid[:N, :N]


def disc(r, cy=48, cx=48):
    return (YY - cy) ** 2 + (XX - cx) ** 2 <= r * r


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def noisy_disc_image(r=20, seed=0, inside=200.0, outside=40.0, noise=10.0, cy=48, cx=48):
    rng = np.random.default_rng(seed)
    return np.where(disc(r, cy, cx), inside, outside) + rng.normal(0, noise, (N, N))


@pytest.mark.parametrize("method, off", [("watershed", 4), ("geodesic", 2)])
@pytest.mark.parametrize("rough", ["dilated", "eroded", "shifted"])
def test_rough_mask_snaps_to_the_bright_disc(method, off, rough):
    """The watershed finds an edge up to ``band`` pixels away; the geodesic contour (no
    balloon force) refines outlines that are already close."""
    truth = disc(20)
    start = {"dilated": disc(20 + off), "eroded": disc(20 - off),
             "shifted": disc(20, 48 + off, 48 - off)}[rough]
    assert dice(start, truth) < 0.95
    snapped = snap_mask(noisy_disc_image(), start, snap_params("ct", {"method": method}))
    assert dice(snapped, truth) > 0.95


@pytest.mark.parametrize("bad, message", [
    (np.zeros((N, N), bool), "has no voxels on this slice"),
    (YY < 10, "touches the edge of the image"),
])
def test_snap_refuses_empty_and_border_regions(bad, message):
    with pytest.raises(EditRefused, match=message):
        snap_mask(noisy_disc_image(), bad, SnapParams())


def test_snap_refuses_a_region_that_floods_the_slice():
    flat = np.random.default_rng(1).normal(100.0, 1.0, (N, N))  # no edge anywhere
    with pytest.raises(EditRefused, match="floods most of the slice"):
        snap_mask(flat, disc(40), SnapParams())


@pytest.mark.parametrize("overrides, message", [
    ({"iterations": 0}, "'iterations' must be between 1 and 500, not 0"),
    ({"edge_sigma": float("nan")}, "'edge_sigma' must be a finite number"),
    ({"band": 2.5}, "'band' must be a finite whole number"),
    ({"band": 1000}, "'band' must be between 1 and 50"),
    ({"method": "magic"}, "Unknown snap method 'magic'"),
    ({"colour": 3}, "Unknown contouring parameter 'colour'"),
    ({"smoothing": "lots"}, "'smoothing' must be a number"),
])
def test_absurd_parameters_are_refused(overrides, message):
    with pytest.raises(EditRefused, match=message):
        snap_params("ct", overrides)


def test_presets_and_unknown_preset():
    assert snap_params("mr").method == "geodesic" and snap_params("ct") == PRESETS["ct"]
    with pytest.raises(EditRefused, match="Unknown parameter preset 'pet'"):
        snap_params("pet")


# ------------------------------------------------------------------- auto-contouring
def sphere_stack(radii, value=200.0, background=40.0, centres=None):
    images = []
    for k, r in enumerate(radii):
        cy, cx = centres[k] if centres else (48, 48)
        images.append(np.where(disc(r, cy, cx) if r else np.zeros((N, N), bool), value,
                               background))
    return images


def test_propagation_follows_a_sphere_and_stops_where_it_vanishes():
    radii = [0, 0, 8, 14, 18, 20, 18, 14, 8, 0]
    images = sphere_stack(radii)
    out = propagate(lambda i: images[i], len(images), 5, disc(20), SnapParams())
    assert sorted(out.masks) == [2, 3, 4, 6, 7, 8]
    assert all(dice(out.masks[i], disc(radii[i])) > 0.95 for i in out.masks)
    assert out.stops == {-1: (1, "vanished"), 1: (9, "vanished")}
    assert "down: stopped at slice 1 (the region vanished)" in out.describe()


def test_propagation_stops_at_the_user_limit_and_at_the_volume_end():
    images = sphere_stack([20] * 8)
    out = propagate(lambda i: images[i], 8, 5, disc(20), SnapParams(), StopRules(limit=2))
    assert sorted(out.masks) == [3, 4, 6, 7]
    assert out.stops == {-1: (2, "limit"), 1: (7, "end")}


def test_propagation_stops_when_the_region_jumps():
    images = sphere_stack([12, 12, 12, 22])  # slice 3: the region would leak to twice the area
    out = propagate(lambda i: images[i], 4, 0, disc(12), SnapParams(), directions=(1,))
    assert sorted(out.masks) == [1, 2]
    assert out.stops == {1: (3, "jumped")}


def test_propagation_stops_when_the_intensity_leaves_the_seed_range():
    images = sphere_stack([20] * 4)
    images[3][disc(20) & (XX > 44)] = 600.0  # most of the region turns brighter
    out = propagate(lambda i: images[i], 4, 0, disc(20), SnapParams(), directions=(1,))
    assert sorted(out.masks) == [1, 2]
    assert out.stops == {1: (3, "intensity")}


ORGAN_RADII = [0, 0, 0, 8, 12, 16, 19, 20]


def organ_next_to_muscle():
    """An organ (cortex 170, a dark pelvis 25 on its left) tapering off downwards, and beside
    it a muscle (60: inside the range the seed slice spans) that grows into the organ's place
    below its lower pole; fat (-100) around; noise 10."""
    rng = np.random.default_rng(0)
    images = []
    for i, r in enumerate(ORGAN_RADII):
        img = np.full((N, N), -100.0)
        img[disc(12 + 2 * (7 - i), cx=72 - 2 * (7 - i))] = 60.0
        if r:
            img[disc(r)] = 170.0
            img[disc(r) & disc(r * 0.6, cx=48 - int(0.7 * r))] = 25.0
        images.append(img + rng.normal(0, 10, (N, N)))
    return images


def test_seed_model_tells_the_neighbouring_muscle_from_the_organ():
    image = organ_next_to_muscle()[7]
    window = intensity_range(image, disc(20))
    assert window[0] < 60 < window[1]  # the muscle lies inside the seed's range
    model = SeedModel.learn(image, disc(20), window, ring=6)
    assert model.looks_inside(np.array([25.0, 170.0, 60.0])).tolist() == [True, True, False]


def test_propagation_does_not_creep_into_a_neighbour_after_the_organ_ends():
    images = organ_next_to_muscle()
    out = propagate(lambda i: images[i], 8, 7, disc(20), SnapParams(), directions=(-1,))
    assert sorted(out.masks) == [3, 4, 5, 6]
    assert out.stops == {-1: (2, "vanished")}
    assert all(dice(out.masks[i], disc(ORGAN_RADII[i])) > 0.97 for i in out.masks)
    # without the seed's inside/outside model the contour carries on into the muscle
    crept = propagate(lambda i: images[i], 8, 7, disc(20), SnapParams(),
                      StopRules(seed_model=False), directions=(-1,))
    assert sorted(crept.masks) == [2, 3, 4, 5, 6]
    assert np.count_nonzero(crept.masks[2] & (images[2] < 100)) > 150  # muscle, no organ left


def test_absurd_limit_is_refused():
    with pytest.raises(EditRefused, match="slice limit must be a whole number from 1 to 500"):
        StopRules(limit=100000)


# ------------------------------------------------------------------- fill between slices
def test_interpolation_between_two_discs_grows_the_radius_linearly():
    out = interpolate_slices({0: disc(10), 4: disc(20)})
    assert sorted(out) == [1, 2, 3]
    for i in (1, 2, 3):
        assert dice(out[i], disc(10 + 2.5 * i)) > 0.97


def test_interpolation_of_chosen_slices_only_and_refusals():
    assert sorted(interpolate_slices({0: disc(10), 4: disc(20), 9: disc(5)}, [2, 7])) == [2, 7]
    with pytest.raises(EditRefused, match="at least two slices"):
        interpolate_slices({3: disc(10), 4: np.zeros((N, N), bool)})
    with pytest.raises(EditRefused, match="Slice 4 is not an empty slice between"):
        interpolate_slices({0: disc(10), 4: disc(20)}, [4])
    with pytest.raises(EditRefused, match="nothing to fill"):
        interpolate_slices({0: disc(10), 1: disc(20)})


# ------------------------------------------------------------------- the paint rules
def test_set_slices_obeys_locks_window_and_one_roi_per_voxel():
    bits = np.zeros((N, N, 3), np.uint8)
    view = display_view(bits, "axial", 1)
    view[disc(8)] = 0b100                    # a locked ROI (bit 2) in the middle
    view[disc(20) & (XX > 60)] = 0b010       # another, unlocked ROI (bit 1) on the right
    view[disc(3, 10, 10)] = 0b001            # the ROI itself, away from the new mask
    image = np.zeros((N, N, 3))
    display_view(image, "axial", 1)[:] = np.where(YY < 48, 10.0, 500.0)  # window: top only
    rules = Rules("one_roi_per_voxel", locked_bits=0b100, threshold=(0.0, 100.0))
    delta = set_slices(bits, "axial", {1: disc(20)}, 0, rules, image)
    after = delta.apply(bits.copy())
    roi = display_view(roi_mask(after, 0), "axial", 1)
    assert np.array_equal(roi, disc(20) & ~disc(8) & (YY < 48))        # locked + window kept out
    assert display_view(after, "axial", 1)[48, 48] == 0b100             # the locked ROI intact
    assert display_view(after, "axial", 1)[52, 62] == 0b010             # outside window: kept
    assert display_view(after, "axial", 1)[40, 66] == 0b001             # replaced (one per voxel)
    assert not roi[10, 10]                                              # old part erased
    with pytest.raises(EditRefused, match="locked"):
        set_slices(bits, "axial", {1: disc(20)}, 2, rules, image)
