"""The wizard's steps as components and the form read back from them (no server)."""

from __future__ import annotations

from dash import Input

from ril_dash.models.wizard import FORM_KEYS
from ril_dash.ui.components import wizard_form as form_ui


def ids_and_values(node, found=None) -> dict:
    """Component id → value of every component with both in a layout tree."""
    found = {} if found is None else found
    if isinstance(node, (list, tuple)):
        for item in node:
            ids_and_values(item, found)
        return found
    if hasattr(node, "to_plotly_json"):
        props = node.to_plotly_json()["props"]
        if "id" in props and "value" in props:
            key = props["id"] if isinstance(props["id"], str) else tuple(
                sorted(props["id"].items()))
            found[key] = props["value"]
        ids_and_values(props.get("children"), found)
    return found


def channel(k: int) -> tuple:
    return (("channel", k), ("type", form_ui.CHANNEL))


def klass(i: int) -> tuple:
    return (("index", i), ("type", form_ui.CLASS))


def test_every_form_key_has_one_field():
    assert set(form_ui.FIELDS) | {"channels", "classes", "cpu_seconds_per_slice"} == set(
        FORM_KEYS)
    assert len({cid for cid, _ in form_ui.FIELDS.values()}) == len(form_ui.FIELDS)
    deps = form_ui.form_dependencies(Input, ["id", "rows"])
    assert [(d.component_id, d.component_property) for d in deps[:2]] == [
        ("wiz-id", "value"), ("wiz-rows", "value")]


def test_the_steps_are_prefilled_and_read_back():
    form = {"id": "m", "version": "1.0.0", "name": "M", "task": "segmentation", "rows": 64,
            "cols": 32, "slices": 3, "norm_method": "window", "window_low": -160,
            "window_high": 240, "activation": "softmax", "memory_mb": 60}
    layout = form_ui.steps(form, rois=["Liver", "Spleen"], outputs=3,
                           choice_fields={"Phase": ["early", "late"]})
    values = ids_and_values(layout)
    # softmax: channel 0 is the background, channel k drafts the k-th ROI
    assert [values[channel(k)] for k in range(3)] == [None, "Liver", "Spleen"]
    assert [values[klass(i)] for i in range(3)] == ["early", "late", None]
    assert (values["wiz-rows"], values["wiz-slices"], values["wiz-text-field"]) == (64, 3,
                                                                                   "Phase")
    keys = list(form_ui.FIELDS)
    plain = [values[form_ui.FIELDS[k][0]] for k in keys]
    read = form_ui.read_form([*plain, [None, "Liver", "Spleen"],
                              [dict(channel(k)) for k in range(3)], ["early", "late", None]])
    assert read["channels"] == {"0": None, "1": "Liver", "2": "Spleen"}
    assert read["classes"] == ["early", "late", None]
    assert (read["transpose"], read["largest_component"], read["flip"]) == (False, True, [])
    assert (read["rows"], read["cols"], read["memory_mb"]) == (64, 32, 60)
    sigmoid = ids_and_values(form_ui.steps({**form, "activation": "sigmoid"}, outputs=2,
                                           rois=["Liver", "Spleen"], choice_fields={}))
    assert [sigmoid[channel(k)] for k in range(2)] == ["Liver", "Spleen"]
