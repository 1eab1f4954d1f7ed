"""project.yaml: the dataset-level definitions of a project, validated strictly.

The file names the images folder (read-only), the annotation store, the folder hierarchy, an
optional metadata table, the overlap mode, the ROIs and the text fields. It is read with the
strict reader of :mod:`ril_dash.strict_yaml` (the YAML node tree, walked field by field), so every
error names the file, the line, the field path and what to do, e.g.::

    project.yaml line 14: rois[1].color: 'bluish' is not a colour; use #rrggbb, e.g. "#a0522d"

Unknown keys, wrong types, missing required keys, bad enum values, duplicate names or mask values
are all errors (:class:`~ril_dash.errors.InvalidProject`). Optional sections (``hierarchy``,
``metadata``, ``settings``, ``rois``, ``text_fields``) may be left empty.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

import yaml

from ril_dash.core.paint import OVERLAP_MODES
from ril_dash.errors import InvalidProject
from ril_dash.strict_yaml import (
    NULL_NODE,
    StrictParser,
    child,
    compose_yaml,
    describe,
    is_null,
)

PROJECT_FILE = "project.yaml"
ROI_TYPES = ("area", "point")
FIELD_TYPES = ("choice", "multi_choice", "text", "number", "yes_no")
MAX_NAME_LENGTH = 64
MAX_MASK_VALUE = 2**31 - 1

_TOP_KEYS = ("name", "images", "annotations", "hierarchy", "metadata", "settings", "rois",
             "text_fields", "workflow")
_METADATA_KEYS = ("file", "path_column")
_SETTINGS_KEYS = ("overlap", "metadata_visible_to", "audit_rotate_mb", "modality",
                  "auto_activate_models")
#: the modality a project may declare for all its series (``auto``: guessed from the values)
MODALITIES = ("auto", "CT", "MR", "PT", "other")
#: who sees a series' metadata columns: those who may open the series, or every user
METADATA_VISIBILITY = ("readers", "everyone")
#: the audit log starts a new file when it would grow past this size (settings.audit_rotate_mb)
DEFAULT_AUDIT_ROTATE_MB = 64
_ROI_KEYS = ("name", "radlex", "color", "value", "type", "locked")
_FIELD_KEYS = ("name", "type", "values", "required")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_RADLEX_RE = re.compile(r"^RID[0-9]+$")


@dataclass(frozen=True)
class RoiDef:
    """One region of interest: its name, RadLex ID, colour, mask value, kind and lock."""

    name: str
    radlex: str | None
    color: str
    value: int
    type: str = "area"
    locked: bool = False


@dataclass(frozen=True)
class TextFieldDef:
    """One per-series text field; ``values`` lists the choices of choice fields (else empty)."""

    name: str
    type: str
    values: tuple[str, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class MetadataDef:
    """The metadata table: an absolute CSV path and the column holding series paths."""

    file: Path
    path_column: str = "series"


@dataclass(frozen=True)
class ProjectConfig:
    """A validated project.yaml; paths are absolute (resolved against the project folder).

    ``lines`` maps field paths (``"images"``, ``"metadata.file"``, ``"rois[0].name"``) to the
    1-based line they were read from, so later checks can point at the right line.
    """

    name: str
    images: Path
    annotations: Path
    hierarchy: tuple[str, ...] = ()
    metadata: MetadataDef | None = None
    overlap: str = "one_roi_per_voxel"
    rois: tuple[RoiDef, ...] = ()
    text_fields: tuple[TextFieldDef, ...] = ()
    source: Path | None = None
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}),
                                     compare=False, repr=False)
    #: the composed YAML node of the optional ``workflow:`` section (None if absent), validated
    #: later by :mod:`ril_dash.workflow.schema` so its errors keep the file's line numbers
    workflow_node: yaml.Node | None = field(default=None, compare=False, repr=False)
    #: ``settings.metadata_visible_to``: ``readers`` (default) shows a series' metadata only to
    #: users who may open it; ``everyone`` to every user of the project
    metadata_visible_to: str = "readers"
    #: the size (MB) at which the audit log is rotated (``settings.audit_rotate_mb``)
    audit_rotate_mb: float = DEFAULT_AUDIT_ROTATE_MB
    #: ``settings.modality``: the series' modality (``CT`` opens with a CT window), or ``auto``
    modality: str = "auto"
    #: ``settings.auto_activate_models``: a version trained in the tool becomes active by itself
    #: when it beats the active one on the same validation series (default: an admin decides)
    auto_activate_models: bool = False

    def line_of(self, path: str) -> int | None:
        """Return the line a field was read from, or None if unknown."""
        return self.lines.get(path)


class _ProjectParser(StrictParser):
    """The strict YAML walker with the readers of project.yaml's own fields."""

    def __init__(self, source: str, project_dir: Path) -> None:
        super().__init__(source, InvalidProject)
        self.project_dir = project_dir

    def folder(self, node: yaml.Node, path: str) -> Path:
        text = os.path.expanduser(self.string(node, path))
        folder = Path(text)
        if not folder.is_absolute():
            folder = self.project_dir / folder
        return folder.resolve()

    # ---- sections -------------------------------------------------------------------------

    def roi(self, node: yaml.Node, path: str, overlap: str) -> RoiDef:
        keys = self.mapping(node, path, _ROI_KEYS, ("name", "color", "value"))
        name = self.string(keys["name"], f"{path}.name", max_len=MAX_NAME_LENGTH)
        radlex = None
        if "radlex" in keys and not is_null(keys["radlex"]):
            radlex = self.string(keys["radlex"], f"{path}.radlex")
            if not _RADLEX_RE.match(radlex):
                self.fail(keys["radlex"], f"{path}.radlex",
                          f"{radlex!r} is not a RadLex ID; use 'RID' followed by digits, "
                          f"e.g. RID58, or leave radlex out")
        colour_node = keys["color"]
        if is_null(colour_node):
            self.fail(colour_node, f"{path}.color", "is empty; quote the colour, e.g. "
                      "color: \"#a0522d\" (an unquoted # starts a YAML comment)")
        color = self.string(colour_node, f"{path}.color")
        if not _COLOUR_RE.match(color):
            self.fail(colour_node, f"{path}.color",
                      f"{color!r} is not a colour; use #rrggbb, e.g. \"#a0522d\"")
        value = self.integer(keys["value"], f"{path}.value")
        if not 1 <= value <= MAX_MASK_VALUE:
            self.fail(keys["value"], f"{path}.value",
                      f"{value} is not a valid mask value; use a whole number from 1 to "
                      f"{MAX_MASK_VALUE} (0 means background)")
        if overlap == "multi_label" and value & (value - 1):
            self.fail(keys["value"], f"{path}.value",
                      f"{value} is not a power of two; multi_label masks keep one bit per "
                      f"ROI, so use 1, 2, 4, 8, …")
        kind = self.choice(keys["type"], f"{path}.type", ROI_TYPES) if "type" in keys else "area"
        locked = self.boolean(keys["locked"], f"{path}.locked") if "locked" in keys else False
        return RoiDef(name, radlex, color.lower(), value, kind, locked)

    def text_field(self, node: yaml.Node, path: str) -> TextFieldDef:
        keys = self.mapping(node, path, _FIELD_KEYS, ("name", "type"))
        name = self.string(keys["name"], f"{path}.name", max_len=MAX_NAME_LENGTH)
        kind = self.choice(keys["type"], f"{path}.type", FIELD_TYPES)
        values: list[str] = []
        if kind in ("choice", "multi_choice"):
            if "values" not in keys:
                self.fail(node, path, f"a {kind} field needs `values: [...]` listing "
                                      f"its choices")
            items = self.sequence(keys["values"], f"{path}.values")
            if not items:
                self.fail(keys["values"], f"{path}.values", "is empty; list at least one choice")
            for i, item in enumerate(items):
                value = self.string(item, f"{path}.values[{i}]")
                if value in values:
                    self.fail(item, f"{path}.values[{i}]",
                              f"{value!r} is listed twice; list each choice once")
                values.append(value)
        elif "values" in keys:
            self.fail(keys["values"], f"{path}.values",
                      f"only choice and multi_choice fields have values; remove `values` "
                      f"or change the type (now {kind!r})")
        required = (self.boolean(keys["required"], f"{path}.required")
                    if "required" in keys else False)
        return TextFieldDef(name, kind, tuple(values), required)

    def project(self, root: yaml.Node) -> ProjectConfig:
        keys = self.mapping(root, "", _TOP_KEYS, ("name", "images"))
        name = self.string(keys["name"], "name", max_len=128)
        images = self.folder(keys["images"], "images")
        ann_node = keys.get("annotations")
        annotations = (self.folder(ann_node, "annotations") if ann_node is not None
                       else (self.project_dir / "annotations").resolve())
        where = ann_node if ann_node is not None else root
        if annotations == images or images in annotations.parents:
            self.fail(where, "annotations", f"{annotations} is inside the images folder "
                      f"{images}; images are read-only, so set `annotations:` to a folder "
                      f"outside it")
        if annotations in images.parents:
            self.fail(where, "annotations", f"the images folder {images} is inside the "
                      f"annotation folder {annotations}; keep the two folders apart")
        hierarchy = tuple(self.string(n, f"hierarchy[{i}]", max_len=MAX_NAME_LENGTH)
                          for i, n in enumerate(self.sequence(keys.get("hierarchy", NULL_NODE),
                                                              "hierarchy")))
        metadata = None
        meta_node = keys.get("metadata", NULL_NODE)
        if not is_null(meta_node):
            meta = self.mapping(meta_node, "metadata", _METADATA_KEYS, ("file",))
            file = self.folder(meta["file"], "metadata.file")
            column = (self.string(meta["path_column"], "metadata.path_column")
                      if "path_column" in meta else "series")
            metadata = MetadataDef(file, column)
        overlap, metadata_visible_to = "one_roi_per_voxel", "readers"
        rotate_mb, modality, auto_activate = DEFAULT_AUDIT_ROTATE_MB, "auto", False
        settings_node = keys.get("settings", NULL_NODE)
        if not is_null(settings_node):
            settings = self.mapping(settings_node, "settings", _SETTINGS_KEYS)
            if "overlap" in settings:
                overlap = self.choice(settings["overlap"], "settings.overlap", OVERLAP_MODES)
            if "metadata_visible_to" in settings:
                metadata_visible_to = self.choice(settings["metadata_visible_to"],
                                                  "settings.metadata_visible_to",
                                                  METADATA_VISIBILITY)
            if "modality" in settings:
                modality = self.choice(settings["modality"], "settings.modality", MODALITIES)
            if "auto_activate_models" in settings:
                auto_activate = self.boolean(settings["auto_activate_models"],
                                             "settings.auto_activate_models")
            if "audit_rotate_mb" in settings:
                rotate_mb = self.number(settings["audit_rotate_mb"], "settings.audit_rotate_mb")
                if not 0.01 <= rotate_mb <= 1_000_000:
                    self.fail(settings["audit_rotate_mb"], "settings.audit_rotate_mb",
                              f"{rotate_mb} is not a size in MB; use a number from 0.01 to "
                              f"1000000, e.g. 64")
        rois: list[RoiDef] = []
        by_name: dict[str, int] = {}
        by_value: dict[int, int] = {}
        for i, node in enumerate(self.sequence(keys.get("rois", NULL_NODE), "rois")):
            path = f"rois[{i}]"
            roi = self.roi(node, path, overlap)
            if roi.name.casefold() in by_name:
                j = by_name[roi.name.casefold()]
                self.fail(child(node, "name"), f"{path}.name",
                          f"{roi.name!r} is already used by rois[{j}] (ROI names ignore "
                          f"case); rename one of them")
            if roi.value in by_value:
                j = by_value[roi.value]
                self.fail(child(node, "value"), f"{path}.value",
                          f"mask value {roi.value} is already used by rois[{j}] "
                          f"({rois[j].name!r}); give each ROI its own value")
            by_name[roi.name.casefold()] = i
            by_value[roi.value] = i
            rois.append(roi)
        fields: list[TextFieldDef] = []
        seen: dict[str, int] = {}
        for i, node in enumerate(self.sequence(keys.get("text_fields", NULL_NODE), "text_fields")):
            text_field = self.text_field(node, f"text_fields[{i}]")
            if text_field.name.casefold() in seen:
                self.fail(child(node, "name"), f"text_fields[{i}].name",
                          f"{text_field.name!r} is already used by "
                          f"text_fields[{seen[text_field.name.casefold()]}] (names ignore "
                          f"case); rename one of them")
            seen[text_field.name.casefold()] = i
            fields.append(text_field)
        workflow_node = keys.get("workflow")
        if workflow_node is not None:
            self.lines["workflow"] = workflow_node.start_mark.line + 1
        return ProjectConfig(name, images, annotations, hierarchy, metadata, overlap,
                             tuple(rois), tuple(fields), None, MappingProxyType(self.lines),
                             workflow_node, metadata_visible_to=metadata_visible_to,
                             audit_rotate_mb=rotate_mb, modality=modality,
                             auto_activate_models=auto_activate)


def parse_project_yaml(text: str, *, project_dir: str | os.PathLike,
                       source_name: str = PROJECT_FILE) -> ProjectConfig:
    """Parse and validate the text of a project.yaml.

    Parameters
    ----------
    text : str
        The YAML text.
    project_dir : path-like
        The folder relative paths (images, annotations, metadata file) are resolved against.
    source_name : str
        How the file is named in error messages.

    Returns
    -------
    ProjectConfig
        With absolute paths and ``source=None``.

    Raises
    ------
    InvalidProject
        On any problem; the message names ``source_name``, the line, the field and the fix.

    Examples
    --------
    >>> cfg = parse_project_yaml("name: Demo\\nimages: imgs\\n", project_dir="/data/p")
    >>> cfg.name, str(cfg.images), str(cfg.annotations), cfg.overlap
    ('Demo', '/data/p/imgs', '/data/p/annotations', 'one_roi_per_voxel')
    >>> parse_project_yaml("name: Demo\\nimages: imgs\\ncolour: red\\n", project_dir="/p")
    Traceback (most recent call last):
    ...
    ril_dash.errors.InvalidProject: project.yaml line 3: colour: unknown key 'colour' ...
    """
    project_dir = Path(project_dir).expanduser().resolve()
    root = compose_yaml(text, source_name, InvalidProject)
    if root is None:
        raise InvalidProject(f"{source_name} line 1: the file is empty; it needs at least "
                             f"`name:` and `images:`")
    parser = _ProjectParser(source_name, project_dir)
    if not isinstance(root, yaml.MappingNode):
        parser.fail(root, "", f"the top level must be a mapping (name: ..., images: ...), "
                              f"got {describe(root)}")
    return parser.project(root)


def load_project_config(project_dir: str | os.PathLike) -> ProjectConfig:
    """Read and validate ``<project_dir>/project.yaml``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "project.yaml").write_text("name: P\\nimages: /data/images\\n")
    >>> load_project_config(d).source == d.resolve() / "project.yaml"
    True
    """
    path = Path(project_dir).expanduser().resolve() / PROJECT_FILE
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidProject(f"no {PROJECT_FILE} in {path.parent}; create one with "
                             f"`ril-dash init {path.parent} --images DIR`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidProject(f"{path}: cannot be read ({exc}); check the file") from None
    config = parse_project_yaml(text, project_dir=path.parent, source_name=str(path))
    return replace(config, source=path)
