"""Writing project.yaml: a starter file for ``ril-dash init`` and a dump of a parsed config.

Both outputs parse back with :func:`ril_dash.project.schema.parse_project_yaml`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from ril_dash.project.schema import (  # noqa: F401 (parse_project_yaml: doctests)
    DEFAULT_AUDIT_ROTATE_MB,
    ProjectConfig,
    parse_project_yaml,
)


def _path_text(path: Path, project_dir: Path | None) -> str:
    if project_dir is not None:
        try:
            return path.relative_to(project_dir).as_posix() or "."
        except ValueError:
            pass
    return str(path)


def _scalar_text(value: str) -> str:
    """Return ``value`` as a YAML scalar, plain when that reads back as the same string."""
    if re.fullmatch(r"[A-Za-z0-9_./~-][A-Za-z0-9_ ./~-]*", value) and value == value.strip():
        if yaml.safe_load(value) == value:
            return value
    return json.dumps(value, ensure_ascii=False)


def _node_data(node: yaml.Node) -> Any:
    """The plain data of a composed YAML node (the ``workflow:`` section kept by the parser)."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def dump_project_yaml(config: ProjectConfig, project_dir: str | os.PathLike | None = None) -> str:
    """Write ``config`` back as project.yaml text (comments are not kept; a ``workflow:``
    section is kept as it was).

    Paths inside ``project_dir`` (default: the folder of ``config.source``) are written
    relative to it. ``parse_project_yaml(dump_project_yaml(c), project_dir=d) == c``.

    Examples
    --------
    >>> cfg = parse_project_yaml("name: Demo\\nimages: imgs\\n", project_dir="/p")
    >>> parse_project_yaml(dump_project_yaml(cfg, "/p"), project_dir="/p") == cfg
    True
    >>> cfg = parse_project_yaml("name: D\\nimages: i\\nworkflow: {start_pool: a}\\n",
    ...                          project_dir="/p")
    >>> dump_project_yaml(cfg, "/p").endswith("workflow:\\n  start_pool: a\\n")
    True
    """
    if project_dir is None and config.source is not None:
        project_dir = config.source.parent
    base = Path(project_dir).expanduser().resolve() if project_dir is not None else None
    data: dict[str, Any] = {"name": config.name,
                            "images": _path_text(config.images, base),
                            "annotations": _path_text(config.annotations, base)}
    if config.hierarchy:
        data["hierarchy"] = list(config.hierarchy)
    if config.metadata is not None:
        data["metadata"] = {"file": _path_text(config.metadata.file, base),
                            "path_column": config.metadata.path_column}
    data["settings"] = {"overlap": config.overlap}
    if config.metadata_visible_to != "readers":  # the default stays implicit
        data["settings"]["metadata_visible_to"] = config.metadata_visible_to
    if config.modality != "auto":
        data["settings"]["modality"] = config.modality
    if config.audit_rotate_mb != DEFAULT_AUDIT_ROTATE_MB:
        data["settings"]["audit_rotate_mb"] = config.audit_rotate_mb
    if config.auto_activate_models:
        data["settings"]["auto_activate_models"] = True
    data["rois"] = [{"name": r.name, **({"radlex": r.radlex} if r.radlex else {}),
                     "color": r.color, "value": r.value, "type": r.type, "locked": r.locked}
                    for r in config.rois]
    data["text_fields"] = [{"name": f.name, "type": f.type,
                            **({"values": list(f.values)} if f.values else {}),
                            "required": f.required} for f in config.text_fields]
    if config.workflow_node is not None:
        data["workflow"] = _node_data(config.workflow_node)
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False,
                          width=100)
    return "# ril_dash project\n" + body


def default_project_yaml(name: str, images: str | os.PathLike,
                         annotations: str | os.PathLike = "annotations") -> str:
    """Return a starter project.yaml with one example ROI and one example text field.

    Examples
    --------
    >>> text = default_project_yaml("My study", "images", "annotations")
    >>> cfg = parse_project_yaml(text, project_dir="/p")
    >>> cfg.name, [r.name for r in cfg.rois], [f.name for f in cfg.text_fields], str(cfg.images)
    ('My study', ['Example organ'], ['Image quality'], '/p/images')
    """
    return f"""# ril_dash project
name: {_scalar_text(str(name))}
images: {_scalar_text(os.fspath(images))}            # folder of NIfTI series; never written to
annotations: {_scalar_text(os.fspath(annotations))}  # annotation store; not inside images
# hierarchy: [Patient, Study, Series]   # names of the folder levels under images
# metadata:
#   file: metadata.csv      # relative to this folder or absolute
#   path_column: series     # column with the series path relative to images
settings:
  overlap: one_roi_per_voxel   # or multi_label (then ROI values must be powers of two)
  # audit_rotate_mb: 64        # the audit log starts a new file past this size
  # modality: auto            # CT opens with a CT window; MR, PT, other: automatic window
  # auto_activate_models: false  # true: a model trained here that beats the active one is active
rois:                      # defined once for the whole dataset; rename or add your own
  - name: Example organ
    radlex: RID58            # RadLex ID: 'RID' + digits (RID58 is the liver)
    color: "#a0522d"         # #rrggbb, quoted
    value: 1                 # mask value: unique positive whole number
    type: area               # area (painted voxels) | point (marked positions)
    locked: false            # a locked ROI cannot be changed by any tool
text_fields:
  - name: Image quality
    type: choice             # choice | multi_choice | text | number | yes_no
    values: [good, acceptable, poor]
    required: false
"""
