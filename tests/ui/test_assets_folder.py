"""Where the app finds its browser scripts: inside the installed package (a wheel) or beside it
(a checkout), never elsewhere; and a clear refusal to start without them."""

from __future__ import annotations

from pathlib import Path

import pytest

import ril_dash
from ril_dash.ui.app import AssetsMissing, assets_folder

CHECKOUT = Path(__file__).resolve().parents[2]


def layout(root: Path, *folders: str) -> Path:
    """A ``ril_dash`` package folder under ``root``, ``ril_viewer.js`` in each of ``folders``."""
    (root / "ril_dash").mkdir(parents=True)
    for folder in folders:
        (root / folder).mkdir(parents=True)
        (root / folder / "ril_viewer.js").write_text("// the viewer\n")
    return root / "ril_dash"


def test_this_checkout_serves_its_own_assets_folder():
    assert Path(ril_dash.__file__).resolve().parent == CHECKOUT / "ril_dash"
    assert assets_folder() == CHECKOUT / "assets"
    assert (assets_folder() / "ril.js").is_file()


def test_a_wheel_install_has_them_inside_the_package(tmp_path):
    # site-packages may hold an "assets" folder of another distribution: the package's own wins
    package = layout(tmp_path / "site-packages", "ril_dash/assets", "assets")
    assert assets_folder(package) == package / "assets"


def test_a_checkout_has_them_beside_the_package(tmp_path):
    package = layout(tmp_path / "checkout", "assets")
    assert assets_folder(package) == tmp_path / "checkout" / "assets"


def test_without_them_the_app_refuses_to_start_and_says_what_to_do(tmp_path):
    package = layout(tmp_path / "site-packages")
    (package / "assets").mkdir()  # a folder without the scripts does not count
    with pytest.raises(AssetsMissing) as caught:
        assets_folder(package)
    message = str(caught.value)
    assert str(package / "assets") in message
    assert str(tmp_path / "site-packages" / "assets") in message
    assert "Reinstall ril_dash" in message
