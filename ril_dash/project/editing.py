"""Annotation edits of one series: a request from the viewer → a core operation → a new version.

:func:`parse_edit_request` validates what the browser sent (every field, with messages a user
can act on); :class:`SeriesEditor` turns it into a :mod:`ril_dash.core.paint` operation under the
project's rules (overlap mode, locked ROIs, optional intensity window) and commits the change
to the annotation store with its provenance. Nothing here knows about HTTP or Dash.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ril_dash.core.mask_slots import locked_bits, widen_bits, with_slots
from ril_dash.core.paint import (
    Rules,
    erase_all,
    fill_at,
    fill_holes,
    morph,
    paint_region,
)
from ril_dash.core.planes import PLANES, display_shape, display_to_canonical, plane_axes
from ril_dash.core.raster import parse_svg_path, rasterize_brush, rasterize_polygon
from ril_dash.core.volume import Volume
from ril_dash.errors import EditRefused
from ril_dash.project.annotation_store import Guard, SeriesAnnotations
from ril_dash.project.schema import ProjectConfig, RoiDef

#: tool → (operation recorded in the history, needs a path, needs a click)
TOOLS = {
    "brush": ("paint", True, False),
    "eraser": ("erase", True, False),
    "lasso": ("paint", True, False),
    "lasso_erase": ("erase", True, False),
    "fill": ("fill", False, True),
    "fill_holes": ("fill_holes", False, False),
    "dilate": ("dilate", False, False),
    "erode": ("erode", False, False),
    "clear": ("clear", False, False),
    "point": ("points", False, True),
    "point_delete": ("points", False, False),
}
MAX_DEPTH = 50
MAX_RADIUS = 20


@dataclass(frozen=True)
class SliceRequest:
    """What every change asked for from the viewer names: the tool, the ROI (mask value), the
    display slice ``index`` of ``plane``, the version the user sees and the frame."""

    tool: str
    roi: int
    plane: str
    index: int
    parent: int
    frame: int = 0


@dataclass(frozen=True)
class EditRequest(SliceRequest):
    """One edit as the viewer asks for it (display coordinates of one slice)."""

    path: str | None = None
    row: int | None = None
    col: int | None = None
    brush: float = 5.0
    brush_unit: str = "vox"
    threshold: tuple[float, float] | None = None
    depth: int = 0
    scope: str = "slice"
    radius: int = 1
    point: tuple[int, int, int] | None = None


def number_field(payload: dict, key: str, kind, default=None, lo=None, hi=None):
    """``payload[key]`` checked as a finite ``kind`` (int or float) within ``lo``..``hi``."""
    value = payload.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise EditRefused(f"'{key}' must be a number, not {str(value)[:40]!r}")
    if not math.isfinite(value) or (kind is int and value != int(value)):
        raise EditRefused(f"'{key}' must be a finite {'whole ' if kind is int else ''}number")
    value = kind(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if hi is None:
            raise EditRefused(f"'{key}' must be at least {lo}, not {value}")
        if lo is None:
            raise EditRefused(f"'{key}' must be at most {hi}, not {value}")
        raise EditRefused(f"'{key}' must be between {lo} and {hi}, not {value}")
    return value


def parse_threshold(payload: dict) -> tuple[float, float] | None:
    """The optional intensity window ``payload["threshold"]`` = ``[low, high]``."""
    threshold = payload.get("threshold")
    if threshold is None:
        return None
    if not isinstance(threshold, (list, tuple)) or len(threshold) != 2:
        raise EditRefused("'threshold' must be [low, high].")
    return (number_field({"low": threshold[0]}, "low", float),
            number_field({"high": threshold[1]}, "high", float))


def parse_edit_request(payload: dict) -> EditRequest:
    """Validate a JSON edit from the browser.

    Examples
    --------
    >>> parse_edit_request({"tool": "fill", "roi": 1, "plane": "axial", "index": 3,
    ...                     "parent": 0, "row": 4, "col": 5}).tool
    'fill'
    >>> parse_edit_request({"tool": "saw", "roi": 1, "plane": "axial", "index": 3, "parent": 0})
    Traceback (most recent call last):
    ...
    ril_dash.errors.EditRefused: Unknown tool 'saw'; use one of brush, eraser, lasso, ...
    """
    if not isinstance(payload, dict):
        raise EditRefused("An edit must be a JSON object.")
    tool = payload.get("tool")
    if tool not in TOOLS:
        raise EditRefused(f"Unknown tool {str(tool)[:40]!r}; use one of {', '.join(TOOLS)}")
    plane = payload.get("plane")
    if plane not in PLANES:
        raise EditRefused(f"Unknown plane {str(plane)[:40]!r}; use one of {', '.join(PLANES)}")
    _, needs_path, needs_click = TOOLS[tool]
    path = payload.get("path")
    if needs_path and not isinstance(path, str):
        raise EditRefused(f"The {tool} tool needs the drawn path.")
    threshold = parse_threshold(payload)
    point = payload.get("point")
    if point is not None:
        if not isinstance(point, (list, tuple)) or len(point) != 3:
            raise EditRefused("'point' must be three voxel indices.")
        point = tuple(number_field({"point": p}, "point", int, lo=0) for p in point)
    unit = payload.get("brush_unit", "vox")
    if unit not in ("vox", "mm"):
        raise EditRefused("'brush_unit' must be 'vox' or 'mm'.")
    scope = payload.get("scope", "slice")
    if scope not in ("slice", "volume"):
        raise EditRefused("'scope' must be 'slice' or 'volume'.")
    field = number_field
    request = EditRequest(
        tool=tool, plane=plane, path=path if needs_path else None, brush_unit=unit,
        threshold=threshold, scope=scope, point=point,
        roi=field(payload, "roi", int), index=field(payload, "index", int, lo=0),
        parent=field(payload, "parent", int, lo=0), frame=field(payload, "frame", int, 0, 0),
        row=field(payload, "row", int), col=field(payload, "col", int),
        brush=field(payload, "brush", float, 5.0),
        depth=field(payload, "depth", int, 0, 0, MAX_DEPTH),
        radius=field(payload, "radius", int, 1, 1, MAX_RADIUS))
    if request.roi is None or request.index is None or request.parent is None:
        raise EditRefused("An edit needs 'roi', 'index' and 'parent' (the version you see).")
    if needs_click and (request.row is None or request.col is None):
        raise EditRefused(f"The {tool} tool needs the clicked pixel ('row', 'col').")
    return request


def rules_for(config: ProjectConfig, slots: dict[int, int], threshold=None) -> Rules:
    """The edit rules of a series: the project's overlap mode, its locked ROIs as bits of the
    series' slot table ``slots``, and an optional intensity window ``(lo, hi)``.

    Examples
    --------
    >>> from ril_dash.project.schema import parse_project_yaml
    >>> config = parse_project_yaml(
    ...     "name: P\\nimages: i\\nsettings: {overlap: multi_label}\\nrois:\\n"
    ...     "  - {name: A, color: '#000000', value: 1}\\n"
    ...     "  - {name: B, color: '#ffffff', value: 2, locked: true}\\n", project_dir="/p")
    >>> rules_for(config, {1: 0, 2: 3})
    Rules(overlap='multi_label', locked_bits=8, threshold=None)
    """
    locked = locked_bits(slots, (roi.value for roi in config.rois if roi.locked))
    return Rules(config.overlap, locked_bits=locked, threshold=threshold)


class SeriesEditor:
    """Applies :class:`EditRequest` objects to one series for one user.

    ``guard`` (e.g. :func:`ril_dash.project.workflow_state.annotate_guard`) is checked under the
    store lock at every save, so an edit is refused if the user lost the right to annotate.
    """

    def __init__(self, config: ProjectConfig, volume: Volume, annotations: SeriesAnnotations,
                 user: str, *, guard: Guard | None = None) -> None:
        self.config = config
        self.volume = volume
        self.annotations = annotations
        self.user = user
        self.guard = guard

    def roi(self, value: int) -> RoiDef:
        for roi in self.config.rois:
            if roi.value == value:
                return roi
        raise EditRefused(f"No ROI has mask value {value} in this project; reload the page "
                          "if the ROIs were just changed.")

    def check_target(self, req: SliceRequest) -> tuple[RoiDef, object]:
        """The ROI, slice and frame of ``req`` checked (an unlocked ROI, a slice and frame of
        the volume); returns the ROI and the latest annotation state."""
        roi = self.roi(req.roi)
        if roi.locked:
            raise EditRefused(f"{roi.name} is locked: no tool may change it. Unlock it in the "
                              "ROI manager first.")
        state = self.annotations.load()
        if req.parent != state.version:
            state = self.annotations.refresh()
        n = self.volume.n_slices(req.plane)
        if not 0 <= req.index < n:
            raise EditRefused(f"Slice {req.index} is outside 0..{n - 1} of the {req.plane} plane.")
        if not 0 <= req.frame < self.volume.n_frames:
            raise EditRefused(f"Frame {req.frame} is outside 0..{self.volume.n_frames - 1}.")
        return roi, state

    def area_bits(self, roi: RoiDef, state, threshold):
        """``(slots, bits, rules)`` for painting the area ROI ``roi`` on ``state``."""
        if roi.type == "point":
            raise EditRefused(f"{roi.name} is a point ROI: mark it with the point tool.")
        slots = with_slots(state.slots, [roi.value])
        return slots, widen_bits(state.bits, slots), rules_for(self.config, slots, threshold)

    def save(self, parent: int, state, slots, delta, meta: dict) -> int:
        """Commit ``delta`` as one version on top of ``parent`` (with the user and a new slot
        table if the ROI got one)."""
        return self.annotations.commit(parent, delta, {"user": self.user, **meta},
                                       slots=slots if slots != state.slots else None,
                                       guard=self.guard)

    def apply(self, req: EditRequest) -> int | None:
        """Carry out ``req``; return the new version, or ``None`` when nothing changed."""
        roi, state = self.check_target(req)
        if req.tool in ("point", "point_delete"):
            return self._points(req, roi, state)
        slots, bits, rules = self.area_bits(roi, state, req.threshold)
        delta = self._operate(req, bits, slots[roi.value], rules)
        if delta is None:
            return None
        meta = {"op": TOOLS[req.tool][0], "tool": req.tool, "roi": roi.value,
                "provenance": {"kind": "manual", "model": None},
                "slices": self._slices_touched(req, delta.box, roi.value)}
        return self.save(req.parent, state, slots, delta, meta)

    # ------------------------------------------------------------------------ internals
    def _operate(self, req: EditRequest, bits: np.ndarray, bit: int, rules: Rules):
        image = self.volume.data[..., req.frame] if rules.threshold is not None else None
        common = {"rules": rules, "image": image}
        if req.tool in ("brush", "eraser", "lasso", "lasso_erase"):
            region = self._region(req, display_shape(bits.shape, req.plane))
            return paint_region(bits, req.plane, req.index, region, bit, depth=req.depth,
                                erase=req.tool in ("eraser", "lasso_erase"), **common)
        if req.tool == "fill":
            return fill_at(bits, req.plane, req.index, req.row, req.col, bit, **common)
        if req.tool == "fill_holes":
            return fill_holes(bits, req.plane, req.index, bit, **common)
        if req.tool in ("dilate", "erode"):
            where = {} if req.scope == "volume" else {"plane": req.plane, "index": req.index}
            return morph(bits, bit, req.tool, radius=req.radius, **where, **common)
        return erase_all(bits, bit, rules)  # clear

    def _region(self, req: EditRequest, shape: tuple[int, int]) -> np.ndarray:
        region = np.zeros(shape, bool)
        for points in parse_svg_path(req.path):
            if req.tool in ("lasso", "lasso_erase"):
                if len(points) < 3:
                    raise EditRefused("A lasso needs at least three points; draw a closed shape.")
                region |= rasterize_polygon(points, shape)
            else:
                if req.brush_unit == "mm":
                    row_mm, col_mm = self.volume.pixel_spacing(req.plane)
                    d_rows, d_cols = req.brush / row_mm, req.brush / col_mm
                else:
                    d_rows = d_cols = req.brush
                region |= rasterize_brush(points, d_rows, d_cols, shape)
        return region

    def _slices_touched(self, req: EditRequest, box, value: int) -> list[dict]:
        axis = plane_axes(req.plane)[0]
        start, stop = box[axis]
        return [{"plane": req.plane, "index": i, "roi": value} for i in range(start, stop)]

    def _points(self, req: EditRequest, roi: RoiDef, state) -> int | None:
        if roi.type != "point":
            raise EditRefused(f"{roi.name} is an area ROI: paint it; points are for point ROIs.")
        points = {k: [list(p) for p in v] for k, v in state.points.items()}
        mine = points.setdefault(roi.value, [])
        if req.tool == "point":
            rows, cols = self.volume.slice_shape(req.plane)
            if not (0 <= req.row < rows and 0 <= req.col < cols):
                raise EditRefused("The point is outside the image; click inside it.")
            xyz = display_to_canonical(self.volume.data.shape[:3], req.plane, req.index,
                                       req.row, req.col)
            point = [int(np.asarray(c)) for c in xyz]
            if point in mine:
                return None
            mine.append(point)
        else:
            if req.point is None or list(req.point) not in mine:
                raise EditRefused(f"{roi.name} has no point there; reload the page.")
            mine.remove(list(req.point))
        if not mine:
            del points[roi.value]
        meta = {"user": self.user, "op": "points", "tool": req.tool, "roi": roi.value,
                "provenance": {"kind": "manual", "model": None},
                "slices": [{"plane": req.plane, "index": req.index, "roi": roi.value}]}
        return self.annotations.commit(req.parent, None, meta, points=points, guard=self.guard)
