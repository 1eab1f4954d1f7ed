"""project.yaml: the dataset-level definitions of a project, validated strictly.

The file names the images folder (read-only), the annotation store, the folder hierarchy, an
optional metadata table, the overlap mode, the ROIs and the text fields. Parsing composes the YAML
node tree (``yaml.compose`` with the safe loader) and walks it, so every error names the file, the
line, the field path and what to do, e.g.::

    project.yaml line 14: rois[1].color: 'bluish' is not a colour; use #rrggbb, e.g. "#a0522d"

Unknown keys, wrong types, missing required keys, bad enum values, duplicate names or mask values
are all errors (:class:`~ril_dash.errors.InvalidProject`). Optional sections (``hierarchy``,
``metadata``, ``settings``, ``rois``, ``text_fields``) may be left empty.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping, NoReturn

import yaml

from ril_dash.core.paint import OVERLAP_MODES
from ril_dash.errors import InvalidProject

PROJECT_FILE = "project.yaml"
ROI_TYPES = ("area", "point")
FIELD_TYPES = ("choice", "multi_choice", "text", "number", "yes_no")
MAX_NAME_LENGTH = 64
MAX_MASK_VALUE = 2**31 - 1

_TOP_KEYS = ("name", "images", "annotations", "hierarchy", "metadata", "settings", "rois",
             "text_fields", "workflow")
_METADATA_KEYS = ("file", "path_column")
_SETTINGS_KEYS = ("overlap",)
_ROI_KEYS = ("name", "radlex", "color", "value", "type", "locked")
_FIELD_KEYS = ("name", "type", "values", "required")
_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_RADLEX_RE = re.compile(r"^RID[0-9]+$")
_TAG = "tag:yaml.org,2002:"


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

    def line_of(self, path: str) -> int | None:
        """Return the line a field was read from, or None if unknown."""
        return self.lines.get(path)


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if node.tag == _TAG + "null":
        return "nothing (empty)"
    return repr(node.value)


class _Parser:
    """Walks a composed YAML node tree, collecting values and line numbers."""

    def __init__(self, source: str, project_dir: Path) -> None:
        self.source = source
        self.project_dir = project_dir
        self.lines: dict[str, int] = {}
        self._constructor = yaml.constructor.SafeConstructor()

    def fail(self, node: yaml.Node, path: str, message: str) -> NoReturn:
        prefix = f"{path}: " if path else ""
        raise InvalidProject(f"{self.source} line {node.start_mark.line + 1}: {prefix}{message}")

    def _scalar(self, node: yaml.Node, path: str, what: str) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected {what}, got {_describe(node)}")
        return self._constructor.construct_object(node)

    def mapping(self, node: yaml.Node, path: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, yaml.Node]:
        where = path or "the top level"
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping with keys {', '.join(allowed)}, "
                                  f"got {_describe(node)}")
        self.lines.setdefault(path, node.start_mark.line + 1)
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            key_path = f"{path}.{key}" if path else str(key)
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                self.fail(key_node, key_path if key is not None else path,
                          f"unknown key {key!r} in {where}{hint}; allowed keys: "
                          f"{', '.join(allowed)}")
            if key in out:
                self.fail(key_node, key_path, f"duplicate key {key!r}; keep only one")
            out[key] = value_node
        for key in required:
            if key not in out:
                self.fail(node, path, f"missing required key '{key}' in {where}; "
                                      f"add `{key}: ...`")
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "null":
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {_describe(node)}")
        self.lines[path] = node.start_mark.line + 1
        return list(node.value)

    def string(self, node: yaml.Node, path: str, *, max_len: int | None = None) -> str:
        value = self._scalar(node, path, "text")
        if node.tag in (_TAG + "int", _TAG + "float"):
            value = node.value  # a number written as text: keep it exactly as written
        if value is None or value == "":
            self.fail(node, path, "must not be empty; give a value")
        if not isinstance(value, str):
            self.fail(node, path, f"expected text, got {_describe(node)}; "
                                  f"quote it: \"{node.value}\"")
        if max_len is not None and len(value) > max_len:
            self.fail(node, path, f"{value[:20]!r}… is {len(value)} characters long; "
                                  f"use at most {max_len}")
        return value

    def integer(self, node: yaml.Node, path: str) -> int:
        value = self._scalar(node, path, "a whole number")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, path, f"expected a whole number, got {_describe(node)}")
        return value

    def boolean(self, node: yaml.Node, path: str) -> bool:
        value = self._scalar(node, path, "true or false")
        if not isinstance(value, bool):
            self.fail(node, path, f"expected true or false, got {_describe(node)}")
        return value

    def choice(self, node: yaml.Node, path: str, choices: tuple[str, ...]) -> str:
        value = self._scalar(node, path, f"one of {', '.join(choices)}")
        if value not in choices:
            close = difflib.get_close_matches(str(value), choices, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.fail(node, path, f"{_describe(node)} is not allowed{hint}; "
                                  f"use one of {', '.join(choices)}")
        return value

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
        if "radlex" in keys and keys["radlex"].tag != _TAG + "null":
            radlex = self.string(keys["radlex"], f"{path}.radlex")
            if not _RADLEX_RE.match(radlex):
                self.fail(keys["radlex"], f"{path}.radlex",
                          f"{radlex!r} is not a RadLex ID; use 'RID' followed by digits, "
                          f"e.g. RID58, or leave radlex out")
        colour_node = keys["color"]
        if colour_node.tag == _TAG + "null":
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
                          for i, n in enumerate(self.sequence(keys.get("hierarchy", _NULL),
                                                              "hierarchy")))
        metadata = None
        meta_node = keys.get("metadata", _NULL)
        if meta_node.tag != _TAG + "null":
            meta = self.mapping(meta_node, "metadata", _METADATA_KEYS, ("file",))
            file = self.folder(meta["file"], "metadata.file")
            column = (self.string(meta["path_column"], "metadata.path_column")
                      if "path_column" in meta else "series")
            metadata = MetadataDef(file, column)
        overlap = "one_roi_per_voxel"
        settings_node = keys.get("settings", _NULL)
        if settings_node.tag != _TAG + "null":
            settings = self.mapping(settings_node, "settings", _SETTINGS_KEYS)
            if "overlap" in settings:
                overlap = self.choice(settings["overlap"], "settings.overlap", OVERLAP_MODES)
        rois: list[RoiDef] = []
        by_name: dict[str, int] = {}
        by_value: dict[int, int] = {}
        for i, node in enumerate(self.sequence(keys.get("rois", _NULL), "rois")):
            path = f"rois[{i}]"
            roi = self.roi(node, path, overlap)
            if roi.name.casefold() in by_name:
                j = by_name[roi.name.casefold()]
                self.fail(_child(node, "name"), f"{path}.name",
                          f"{roi.name!r} is already used by rois[{j}] (ROI names ignore "
                          f"case); rename one of them")
            if roi.value in by_value:
                j = by_value[roi.value]
                self.fail(_child(node, "value"), f"{path}.value",
                          f"mask value {roi.value} is already used by rois[{j}] "
                          f"({rois[j].name!r}); give each ROI its own value")
            by_name[roi.name.casefold()] = i
            by_value[roi.value] = i
            rois.append(roi)
        fields: list[TextFieldDef] = []
        seen: dict[str, int] = {}
        for i, node in enumerate(self.sequence(keys.get("text_fields", _NULL), "text_fields")):
            text_field = self.text_field(node, f"text_fields[{i}]")
            if text_field.name.casefold() in seen:
                self.fail(_child(node, "name"), f"text_fields[{i}].name",
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
                             workflow_node)


_NULL = yaml.ScalarNode(_TAG + "null", "")


def _child(node: yaml.MappingNode, key: str) -> yaml.Node:
    return next(v for k, v in node.value if k.value == key)


def compose_yaml(text: str, source_name: str, error: type[Exception]) -> yaml.Node | None:
    """The YAML node tree of ``text`` (line numbers kept), or ``None`` for an empty document;
    a syntax error raises ``error`` naming the file, the line and what to check.

    Examples
    --------
    >>> compose_yaml("a: [1, 2]", "x.yaml", ValueError).value[0][0].value
    'a'
    >>> try:
    ...     compose_yaml("a: [1", "x.yaml", ValueError)
    ... except ValueError as exc:
    ...     print(str(exc).split(":")[0])
    x.yaml line 1
    """
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise error(f"{source_name}{line}: YAML syntax error: {problem}; check the "
                    f"indentation and quoting there") from None
    except yaml.YAMLError as exc:
        raise error(f"{source_name}: YAML syntax error: {exc}") from None


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
    parser = _Parser(source_name, project_dir)
    if not isinstance(root, yaml.MappingNode):
        parser.fail(root, "", f"the top level must be a mapping (name: ..., images: ...), "
                              f"got {_describe(root)}")
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
