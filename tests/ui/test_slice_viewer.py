"""The slice viewer (``/view?series=…``) in a real browser.

What is on screen is compared pixel for pixel with the slice rendered in the test process
(``load_volume`` + ``apply_window``), so orientation, windowing and slice choice are all checked.
"""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest

pytestmark = pytest.mark.browser

ARTERIAL = "PHANTOM-001/CT-2026-01-14/arterial.nii.gz"
MNI = "MNI152/T1-2009a/t1.nii.gz"
SOFT_TISSUE = (40, 400)
BONE = (400, 1800)


@pytest.fixture(scope="module")
def images(demo_home):
    return demo_home / "demo-project" / "images"


@pytest.fixture
def arterial(page, demo_server, ui):
    """A page showing the arterial phase of PHANTOM-001 (full-res middle slice on screen)."""
    ui.open_viewer(page, demo_server.url, ARTERIAL, index=19)
    return page


def orientation_letters(page) -> tuple[str, ...]:
    return tuple(page.inner_text(f"#ril-orient-{side}")
                 for side in ("left", "right", "top", "bottom"))


def ui_graph() -> str:
    return "document.querySelector('#viewer-graph .js-plotly-plot')"


def slider_value(page, slider="slice-slider") -> str:
    return page.get_attribute(f"#{slider} [role=slider]", "aria-valuenow")


def test_opens_on_the_middle_slice_exactly_as_the_server_renders_it(arterial, images, ui):
    page = arterial
    s = ui.state(page)
    assert (s["index"], s["plane"], s["frame"], s["wc"], s["ww"]) == (19, "axial", 0, *SOFT_TISSUE)
    ui.wait_text(page, "#viewer-position", "Axial  20 / 40")
    assert orientation_letters(page) == ("R", "L", "A", "P")
    assert slider_value(page) == "19"
    assert page.get_attribute("#slice-slider [role=slider]", "aria-valuemax") == "39"
    assert page.inner_text("#window-preset") == "Soft tissue"
    assert (page.input_value("#window-center"), page.input_value("#window-width")) == ("40", "400")

    shown = ui.screen_pixels(page)
    expected = ui.expected_pixels(images / ARTERIAL, "axial", 19, *SOFT_TISSUE)
    assert shown.shape == (256, 256)
    assert np.array_equal(shown, expected)
    assert 0 < expected.mean() < 255  # not a blank slice: the comparison means something
    assert ui.svg_image_href(page) == ui.screen_source(page)  # and plotly really drew it
    # the aspect ratio follows the voxel spacing (1.4 x 1.4 mm in plane)
    assert page.evaluate(f"{ui_graph()}.layout.yaxis.scaleratio") == pytest.approx(1.0)
    assert page.js_errors == []


def test_keyboard_and_wheel_move_through_slices(arterial, images, ui):
    page = arterial

    def at(index: int) -> None:
        ui.wait_full(page, index=index)
        ui.wait_text(page, "#viewer-position", f"Axial  {index + 1} / 40")
        page.wait_for_function(
            "(v) => document.querySelector('#slice-slider [role=slider]')"
            ".getAttribute('aria-valuenow') === v", arg=str(index))

    ui.press(page, "ArrowUp", 3)
    at(22)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / ARTERIAL, "axial", 22, *SOFT_TISSUE))
    ui.press(page, "PageDown")
    at(12)
    ui.press(page, "ArrowRight")
    at(13)
    ui.press(page, "ArrowLeft", 2)
    at(11)
    ui.press(page, "Home")
    at(0)
    ui.press(page, "ArrowDown")  # already at the first slice: stays there
    at(0)
    box = page.locator("#ril-viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -100)  # wheel up: next slice
    at(1)
    page.mouse.wheel(0, 100)
    at(0)
    ui.press(page, "End")
    at(39)
    ui.press(page, "PageUp")  # clamped at the last slice
    at(39)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / ARTERIAL, "axial", 39, *SOFT_TISSUE))
    assert page.js_errors == []


def test_plane_switch_shows_coronal_and_sagittal(arterial, images, ui):
    page = arterial
    page.click("#plane-select label:has-text('Coronal')")
    s = ui.wait_full(page, plane="coronal")
    assert s["index"] == 127
    ui.wait_text(page, "#viewer-position", "Coronal  128 / 256")
    assert orientation_letters(page) == ("R", "L", "S", "I")
    assert slider_value(page) == "127"
    shown = ui.screen_pixels(page)
    assert shown.shape == (40, 256)
    assert np.array_equal(shown, ui.expected_pixels(images / ARTERIAL, "coronal", 127,
                                                    *SOFT_TISSUE))
    # 4 mm slices shown 1.4 mm wide pixels: the rows are stretched accordingly
    assert page.evaluate(f"{ui_graph()}.layout.yaxis.scaleratio") == pytest.approx(4.0 / 1.4)
    # the S and I letters sit just above and below the wide image, not at the far edges of
    # the black area around it
    top_y = ui.client_point(page, -0.5, 128)[1]
    bottom_y = ui.client_point(page, 39.5, 128)[1]
    letter = "(sel) => { const r = document.querySelector(sel).getBoundingClientRect(); " \
             "return r.top + r.height / 2; }"
    page.wait_for_function(f"() => Math.abs(({letter})('#ril-orient-top') - {top_y}) < 30")
    assert 0 < top_y - page.evaluate(letter, "#ril-orient-top") < 30
    assert 0 < page.evaluate(letter, "#ril-orient-bottom") - bottom_y < 30

    page.click("#plane-select label:has-text('Sagittal')")
    s = ui.wait_full(page, plane="sagittal")
    ui.wait_text(page, "#viewer-position", f"Sagittal  {s['index'] + 1} / 256")
    assert orientation_letters(page) == ("A", "P", "S", "I")
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / ARTERIAL, "sagittal", s["index"],
                                             *SOFT_TISSUE))

    page.click("#plane-select label:has-text('Axial')")
    ui.wait_full(page, plane="axial", index=19)
    ui.wait_text(page, "#viewer-position", "Axial  20 / 40")
    assert orientation_letters(page) == ("R", "L", "A", "P")
    assert page.js_errors == []


def test_window_preset_and_typed_level_change_the_image(arterial, images, ui):
    page = arterial
    before = ui.screen_source(page)
    page.click("#window-preset")
    page.click("[role=option]:has-text('Bone')")
    ui.wait_full(page, wc=BONE[0], ww=BONE[1])
    assert (page.input_value("#window-center"), page.input_value("#window-width")) == ("400", "1800")
    assert page.inner_text("#window-preset") == "Bone"
    after = ui.screen_source(page)
    assert after != before
    assert np.array_equal(ui.decode_data_url(after),
                          ui.expected_pixels(images / ARTERIAL, "axial", 19, *BONE))

    page.fill("#window-center", "100")
    page.press("#window-center", "Enter")
    ui.wait_full(page, wc=100, ww=BONE[1])
    page.fill("#window-width", "250")
    page.press("#window-width", "Tab")
    ui.wait_full(page, wc=100, ww=250)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / ARTERIAL, "axial", 19, 100, 250))
    # the chosen window survives scrolling
    ui.press(page, "ArrowUp")
    ui.wait_full(page, index=20, wc=100, ww=250)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(images / ARTERIAL, "axial", 20, 100, 250))
    assert page.js_errors == []


def test_hover_reads_out_the_voxel_under_the_cursor(arterial, images, ui):
    page = arterial
    console: list[str] = []
    page.on("console", lambda msg: console.append(msg.text))
    row, col = 100, 60
    x, y = ui.client_point(page, row, col)
    page.mouse.move(x + 1, y)  # a pointer arriving over the image, as a hand moves it
    page.mouse.move(x, y)
    page.wait_for_function(
        "document.querySelector('#viewer-readout').textContent.startsWith('voxel (')")
    text = page.text_content("#viewer-readout")
    match = re.match(r"voxel \((\d+), (\d+), (\d+)\)  value (-?[\d.]+)\n"
                     r"world \((-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\) mm$", text)
    assert match, text
    voxel = tuple(int(v) for v in match.group(1, 2, 3))

    from ril_dash.core.volume import load_volume

    volume = load_volume(images / ARTERIAL)
    assert voxel == volume.voxel_index("axial", 19, row, col)
    img = nib.load(images / ARTERIAL)
    assert float(match.group(4)) == img.get_fdata()[voxel]
    world = img.affine @ np.array([*voxel, 1.0])
    assert [float(v) for v in match.group(5, 6, 7)] == pytest.approx(world[:3], abs=0.051)

    page.mouse.move(2, 2)  # off the graph
    page.wait_for_function("document.querySelector('#viewer-readout').textContent === '–'")
    assert page.js_errors == []
    # plotly's hover label of an image trace logged "Invalid color specifier" on every move
    assert [m for m in console if "color" in m.lower()] == []


def test_mr_brain_opens_with_the_automatic_window(page, demo_server, images, ui):
    from ril_dash.core.render import viewer_geometry
    from ril_dash.core.volume import load_volume

    geometry = viewer_geometry(load_volume(images / MNI))
    assert not geometry["is_ct"]
    s = ui.open_viewer(page, demo_server.url, MNI, index=94)
    assert s["plane"] == "axial"
    ui.wait_text(page, "#viewer-position", "Axial  95 / 189")
    assert page.inner_text("#window-preset") == "Automatic"
    center, width = geometry["auto_window"]
    assert s["wc"] == pytest.approx(center, abs=0.01)
    assert s["ww"] == pytest.approx(width, abs=0.01)
    assert float(page.input_value("#window-center")) == s["wc"]
    assert float(page.input_value("#window-width")) == s["ww"]
    assert orientation_letters(page) == ("R", "L", "A", "P")
    shown = ui.screen_pixels(page)
    assert shown.shape == (233, 197)
    assert np.array_equal(shown, ui.expected_pixels(images / MNI, "axial", 94, s["wc"], s["ww"]))
    assert page.js_errors == []


# ---- a 4D series, served from its own small project ----------------------------------------
FRAMES = 3


@pytest.fixture(scope="module")
def dynamic_server(tmp_path_factory):
    from support import RunningServer  # tests/support.py

    from ril_dash.project.project import init_project

    root = tmp_path_factory.mktemp("dynamic")
    images = root / "images"
    (images / "P1").mkdir(parents=True)
    data = np.random.default_rng(4).integers(0, 1000, (24, 20, 6, FRAMES)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 5.0, 1.0])), images / "P1" / "dyn.nii.gz")
    init_project(root / "project", images)
    server = RunningServer(["serve", str(root / "project")])
    server.images = images
    yield server
    server.stop()


def test_4d_series_has_a_frame_slider(page, dynamic_server, ui):
    series = "P1/dyn.nii.gz"
    path = dynamic_server.images / series
    s = ui.open_viewer(page, dynamic_server.url, series, index=2, frame=0)
    assert page.is_visible("#frame-box")
    assert "Frame (of 3)" in page.text_content("#frame-box")
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(path, "axial", 2, s["wc"], s["ww"], frame=0))
    frame0 = ui.screen_source(page)
    # drag the frame slider's thumb to its right end: the last frame, same slice
    ui.drag_slider_to_end(page, "frame-slider")
    s = ui.wait_full(page, frame=FRAMES - 1, index=2)
    assert ui.screen_source(page) != frame0
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(path, "axial", 2, s["wc"], s["ww"], frame=FRAMES - 1))
    # scrolling stays on the chosen frame
    ui.press(page, "ArrowUp")
    s = ui.wait_full(page, frame=FRAMES - 1, index=3)
    assert np.array_equal(ui.screen_pixels(page),
                          ui.expected_pixels(path, "axial", 3, s["wc"], s["ww"], frame=FRAMES - 1))
    assert page.js_errors == []


def test_arrow_keys_on_the_frame_slider_change_the_frame(page, dynamic_server, ui):
    ui.open_viewer(page, dynamic_server.url, "P1/dyn.nii.gz", index=2, frame=0)
    page.focus("#frame-slider [role=slider]")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "(() => { const s = window.rilViewer.state(); return s.frame !== 0 || s.index !== 2; })")
    s = ui.state(page)
    assert (s["frame"], s["index"]) == (1, 2)


def test_3d_series_hides_the_frame_slider(arterial):
    assert not arterial.is_visible("#frame-box")
