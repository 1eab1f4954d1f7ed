"""Workflow descriptions: pools of users, their rights and where they may send series.

A workflow lives under ``workflow:`` in project.yaml, or in a file of its own (given at run time)
whose only top-level key is ``workflow:``::

    workflow:
      start_pool: analysts            # where new series start
      pools:
        analysts:   {users: [ana, bob], rights: [annotate], assign_to: [reviewers]}
        reviewers:  {users: [rita], rights: [review, annotate], assign_to: [analysts, scientists],
                     approve_to: scientists, send_back_to: analysts}
        scientists: {users: [sam], rights: [read, export], assign_to: []}
      admins: [root]                   # may do anything, break locks

Validation is strict, as for project.yaml (both are read with :mod:`ril_dash.strict_yaml`):
unknown keys, wrong types, unknown rights, references to pools that do not exist, duplicate users
or rights and bad names are all errors (:class:`~ril_dash.errors.InvalidWorkflow`) naming the
file, the line and the field, e.g.::

    project.yaml line 12: workflow.pools.reviewers.approve_to: no pool named 'scientist' ...

Pool and user names are 1–64 characters without control characters; they are plain data (never
markup) and are kept exactly as written.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import yaml

from ril_dash.errors import InvalidWorkflow
from ril_dash.strict_yaml import (
    NULL_NODE,
    StrictParser,
    compose_yaml,
    describe,
    did_you_mean,
    is_null,
)

RIGHTS = ("annotate", "review", "read", "export", "models", "train")
MAX_NAME_LENGTH = 64
WORKFLOW_FILE = "workflow.yaml"

_WORKFLOW_KEYS = ("start_pool", "pools", "admins")
_POOL_KEYS = ("users", "rights", "assign_to", "approve_to", "send_back_to")


@dataclass(frozen=True)
class PoolDef:
    """One pool: its members, their rights on the pool's series and where series may go next.

    ``approve_to`` / ``send_back_to`` are None when the pool defines no such destination.
    """

    name: str
    users: tuple[str, ...] = ()
    rights: frozenset[str] = frozenset()
    assign_to: tuple[str, ...] = ()
    approve_to: str | None = None
    send_back_to: str | None = None

    def has(self, right: str) -> bool:
        """Whether members of this pool have ``right`` on its series."""
        return right in self.rights


@dataclass(frozen=True)
class Workflow:
    """A validated workflow. ``pools`` keeps the order of the file.

    ``source`` names the file it was read from and ``lines`` maps field paths
    (``"workflow.pools.analysts.users[0]"``) to 1-based lines; neither takes part in ``==``.
    """

    start_pool: str
    pools: Mapping[str, PoolDef]
    admins: frozenset[str] = frozenset()
    source: str | None = field(default=None, compare=False)
    lines: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}),
                                     compare=False, repr=False)

    def pool(self, name: str) -> PoolDef | None:
        """The pool called ``name``, or None if there is none."""
        return self.pools.get(name)

    def is_admin(self, user: str | None) -> bool:
        """Whether ``user`` is an admin (may do anything, break locks)."""
        return user is not None and user in self.admins

    def pools_of(self, user: str) -> tuple[str, ...]:
        """The names of the pools ``user`` belongs to, in file order."""
        return tuple(name for name, pool in self.pools.items() if user in pool.users)

    @property
    def users(self) -> frozenset[str]:
        """Every user named in the workflow (pool members and admins)."""
        return frozenset(u for p in self.pools.values() for u in p.users) | self.admins


def _bad_character(name: str) -> str | None:
    for ch in name:
        if unicodedata.category(ch) in ("Cc", "Zl", "Zp"):
            return ch
    return None


class _WorkflowParser(StrictParser):
    """The strict YAML walker with the readers of a workflow's names and pools."""

    def __init__(self, source: str) -> None:
        super().__init__(source, InvalidWorkflow)

    def name(self, node: yaml.Node, path: str, what: str) -> str:
        if is_null(node) or (isinstance(node, yaml.ScalarNode) and node.value == ""):
            self.scalar(node, path, "text")
            self.fail(node, path, f"a {what} name must not be empty; give 1 to "
                                  f"{MAX_NAME_LENGTH} characters")
        value = self.string(node, path, max_len=MAX_NAME_LENGTH)
        bad = _bad_character(value)
        if bad is not None:
            self.fail(node, path, f"{what} name {value!r} contains the control character "
                                  f"{bad!r}; use printable characters only")
        return value

    def names(self, node: yaml.Node, path: str, what: str) -> tuple[str, ...]:
        out: list[str] = []
        for i, item in enumerate(self.sequence(node, path)):
            value = self.name(item, f"{path}[{i}]", what)
            if value in out:
                self.fail(item, f"{path}[{i}]", f"{value!r} is listed twice; list each {what} "
                                                f"once")
            out.append(value)
        return tuple(out)

    def pool(self, name: str, node: yaml.Node, path: str) -> PoolDef:
        keys = self.mapping(node, path, _POOL_KEYS, ("users", "rights"))
        users = self.names(keys["users"], f"{path}.users", "user")
        rights: list[str] = []
        for i, item in enumerate(self.sequence(keys["rights"], f"{path}.rights")):
            right = self.choice(item, f"{path}.rights[{i}]", RIGHTS)
            if right in rights:
                self.fail(item, f"{path}.rights[{i}]", f"{right!r} is listed twice; list each "
                                                       f"right once")
            rights.append(right)
        assign_to = self.names(keys.get("assign_to", NULL_NODE), f"{path}.assign_to", "pool")
        ends: dict[str, str | None] = {}
        for key in ("approve_to", "send_back_to"):
            value_node = keys.get(key, NULL_NODE)
            ends[key] = None if is_null(value_node) else self.name(
                value_node, f"{path}.{key}", "pool")
            if ends[key] is not None and "review" not in rights:
                self.fail(value_node, f"{path}.{key}",
                          f"only pools with the 'review' right can approve or send back; add "
                          f"review to {path}.rights or remove `{key}`")
        return PoolDef(name, users, frozenset(rights), assign_to, ends["approve_to"],
                       ends["send_back_to"])

    def check_pool(self, node: yaml.Node, path: str, pools: Mapping[str, PoolDef]) -> None:
        name = node.value
        if name not in pools:
            self.fail(node, path, f"no pool named {name!r}{did_you_mean(name, pools)}; the "
                                  f"pools are {', '.join(pools)}")

    def workflow(self, node: yaml.Node, path: str) -> Workflow:
        keys = self.mapping(node, path, _WORKFLOW_KEYS, ("start_pool", "pools"))
        start_pool = self.name(keys["start_pool"], f"{path}.start_pool", "pool")
        pools_node = keys["pools"]
        if not isinstance(pools_node, yaml.MappingNode) or not pools_node.value:
            self.fail(pools_node, f"{path}.pools", f"expected a mapping of pool names to pools "
                      f"(analysts: {{users: [...], rights: [...]}}), got {describe(pools_node)}")
        self.lines[f"{path}.pools"] = pools_node.start_mark.line + 1
        pools: dict[str, PoolDef] = {}
        for key_node, value_node in pools_node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(key_node, f"{path}.pools", f"a pool name must be text, got "
                                                     f"{describe(key_node)}")
            pool_path = f"{path}.pools.{key_node.value}"
            name = self.name(key_node, pool_path, "pool")
            if name in pools:
                self.fail(key_node, pool_path, f"duplicate pool {name!r}; keep only one")
            pools[name] = self.pool(name, value_node, pool_path)
        admins = self.names(keys.get("admins", NULL_NODE), f"{path}.admins", "admin")
        # references to pools, checked once every pool is known
        self.check_pool(keys["start_pool"], f"{path}.start_pool", pools)
        for (_, pool_node), pool in zip(pools_node.value, pools.values()):
            pool_keys = {k.value: v for k, v in pool_node.value}
            pool_path = f"{path}.pools.{pool.name}"
            for i, item in enumerate(self.sequence(pool_keys.get("assign_to", NULL_NODE),
                                                   f"{pool_path}.assign_to")):
                self.check_pool(item, f"{pool_path}.assign_to[{i}]", pools)
            for key in ("approve_to", "send_back_to"):
                if getattr(pool, key) is not None:
                    self.check_pool(pool_keys[key], f"{pool_path}.{key}", pools)
        return Workflow(start_pool, MappingProxyType(pools), frozenset(admins), self.source,
                        MappingProxyType(dict(self.lines)))


def parse_workflow_node(node: yaml.Node, *, source_name: str,
                        path: str = "workflow") -> Workflow:
    """Validate an already composed ``workflow:`` node (line numbers are those of its file).

    Raises
    ------
    InvalidWorkflow
        On any problem; the message names ``source_name``, the line, the field and the fix.
    """
    return _WorkflowParser(source_name).workflow(node, path)


def parse_workflow_yaml(text: str, *, source_name: str = WORKFLOW_FILE) -> Workflow:
    """Parse the text of a workflow file, whose only top-level key is ``workflow:``.

    Examples
    --------
    >>> wf = parse_workflow_yaml(
    ...     "workflow:\\n  start_pool: a\\n  pools:\\n    a: {users: [ana], rights: [annotate]}\\n")
    >>> wf.start_pool, wf.pools["a"].users, wf.admins
    ('a', ('ana',), frozenset())
    >>> parse_workflow_yaml("workflow:\\n  start_pool: b\\n  pools:\\n"
    ...                     "    a: {users: [ana], rights: [annotate]}\\n")
    Traceback (most recent call last):
    ...
    ril_dash.errors.InvalidWorkflow: workflow.yaml line 2: workflow.start_pool: no pool named 'b'...
    """
    root = compose_yaml(text, source_name, InvalidWorkflow)
    if root is None:
        raise InvalidWorkflow(f"{source_name} line 1: the file is empty; it needs "
                              f"`workflow:` with `start_pool:` and `pools:`")
    parser = _WorkflowParser(source_name)
    keys = parser.mapping(root, "", ("workflow",), ("workflow",))
    return parser.workflow(keys["workflow"], "workflow")


def load_workflow_file(path: str | os.PathLike) -> Workflow:
    """Read and validate a workflow file given at run time."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidWorkflow(f"{path}: no such workflow file; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidWorkflow(f"{path}: cannot be read ({exc}); check the file") from None
    return parse_workflow_yaml(text, source_name=str(path))


class _ProjectLike(Protocol):
    """What :func:`workflow_from_project` reads of a project's configuration (duck-typed, so
    this package does not depend on :mod:`ril_dash.project`)."""

    workflow_node: yaml.Node | None
    source: os.PathLike | None


def workflow_from_project(config: _ProjectLike, *,
                          source_name: str | None = None) -> Workflow | None:
    """Validate the ``workflow:`` section kept by the project parser; None if there is none.

    ``config`` is a :class:`ril_dash.project.schema.ProjectConfig` (or anything with its
    ``workflow_node`` and ``source``).

    ``source_name`` defaults to the project file (``config.source``, else ``project.yaml``).
    """
    node = getattr(config, "workflow_node", None)
    if node is None or is_null(node):
        return None
    if source_name is None:
        source_name = str(config.source) if config.source is not None else "project.yaml"
    return parse_workflow_node(node, source_name=source_name)
