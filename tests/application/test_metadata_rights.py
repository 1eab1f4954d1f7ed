"""Metadata columns (patient, study date, description) of series a user may not open are not
shown to them (:func:`ril_dash.application.rights.series_view`), unless project.yaml's
``settings.metadata_visible_to: everyone`` says so."""

from __future__ import annotations

import pytest

from ril_dash.application import moves, rights
from ril_dash.application.services import Services
from ril_dash.errors import InvalidProject
from ril_dash.project.project import Project
from ril_dash.project.schema import parse_project_yaml
from ril_dash.project.project_yaml_writer import dump_project_yaml
from ril_dash.workflow.machine import Target
from tests.application.conftest import SERIES, YAML, actor

S1, S2 = SERIES
CSV = f"series,patient,description\n{S1},Jane Doe,liver CT\n{S2},John Roe,spleen CT\n"


def with_metadata(services: Services, setting: str | None = None) -> Services:
    root = services.project.dir
    (root / "metadata.csv").write_text(CSV)
    settings = "" if setting is None else f"settings: {{metadata_visible_to: {setting}}}\n"
    (root / "project.yaml").write_text(
        YAML.replace("rois:", f"metadata: {{file: metadata.csv}}\n{settings}rois:", 1))
    return Services(Project.open(root), background_checkpoints=False)


def shown(services: Services, user: str, admin: bool = False) -> dict[str, bool]:
    view = rights.series_view(services, actor(user, admin), SERIES)
    return {s: view.shows_metadata(s) for s in SERIES}


def test_metadata_only_of_series_the_user_may_open(services):
    services = with_metadata(services)
    assert services.project.config.metadata_visible_to == "readers"
    moves.move_series(services, actor("root"), S2, "assign", Target("scientists"))
    assert shown(services, "nina") == {S1: False, S2: False}  # in no pool
    assert shown(services, "sam") == {S1: False, S2: True}  # scientists read S2 only
    assert shown(services, "ana") == {S1: True, S2: False}  # analysts hold S1's pool
    assert shown(services, "root") == {S1: True, S2: True}  # the workflow's admin
    assert shown(services, "ada", admin=True) == {S1: True, S2: True}  # users-file admin
    view = rights.series_view(services, actor("nina"), SERIES)
    assert [view.readable(s) for s in SERIES] == [False, False]
    assert view.states[S2].pool == "scientists"


def test_a_project_setting_shows_metadata_to_everyone(services):
    services = with_metadata(services, "everyone")
    assert services.project.config.metadata_visible_to == "everyone"
    assert shown(services, "nina") == {S1: True, S2: True}
    view = rights.series_view(services, actor("nina"), SERIES)
    assert [view.readable(s) for s in SERIES] == [False, False]  # annotations stay closed
    text = dump_project_yaml(services.project.config, services.project.dir)
    assert "metadata_visible_to: everyone" in text
    again = parse_project_yaml(text, project_dir=services.project.dir)
    assert again.metadata_visible_to == "everyone"


def test_without_a_workflow_everyone_reads_everything(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    (root / "project.yaml").write_text("name: X\nimages: images\n")
    (root / "images").mkdir()
    services = Services(Project.open(root), background_checkpoints=False)
    view = rights.series_view(services, actor("nina"), [])
    assert view.states is None and view.readable("any") and view.shows_metadata("any")


def test_the_setting_is_checked():
    with pytest.raises(InvalidProject, match="settings.metadata_visible_to") as bad:
        parse_project_yaml("name: X\nimages: i\nsettings: {metadata_visible_to: all}\n",
                           project_dir="/p")
    assert "readers, everyone" in str(bad.value)
