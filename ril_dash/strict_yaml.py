"""Strict reading of YAML files whose every mistake names the file, the line and the field.

The files a user writes by hand (``project.yaml``, a workflow file, the users file, a model
plugin's ``plugin.yaml``) are composed into a YAML node tree (``yaml.compose`` with the safe
loader, so line numbers are kept and nothing is executed) and walked by a
:class:`StrictParser`. Each reader checks one node and, when it is wrong, raises the error class
the parser was made with, in one format::

    <source> line <n>: <field path>: <what is wrong; what to do>

e.g. ``project.yaml line 4: settings.overlapp: unknown key 'overlapp' in settings (did you mean
'overlap'?); allowed keys: overlap``. The parser records the line each field was read from in
:attr:`StrictParser.lines`, so later checks can point at the right line too.

File-specific checks (colours, folders, pool references...) live with each file's schema, in a
subclass of :class:`StrictParser` or in functions that call its readers. This module imports
only PyYAML and the standard library.
"""

from __future__ import annotations

import difflib
from typing import Any, NoReturn

import yaml

__all__ = ["NULL_NODE", "TAG", "StrictParser", "child", "compose_yaml", "describe", "did_you_mean",
           "is_null", "is_scalar", "line_of"]

#: prefix of the YAML core tags (``TAG + "str"``, ``TAG + "null"``, ...)
TAG = "tag:yaml.org,2002:"
#: stands for an optional key that is absent: ``keys.get("rois", NULL_NODE)``
NULL_NODE = yaml.ScalarNode(TAG + "null", "")


def line_of(node: yaml.Node) -> int:
    """The 1-based line where ``node`` starts.

    Examples
    --------
    >>> line_of(compose_yaml("a: 1\\nb: 2\\n", "x.yaml", ValueError).value[1][1])
    2
    """
    return node.start_mark.line + 1


def is_null(node: yaml.Node) -> bool:
    """Whether ``node`` is YAML's null (``~``, ``null`` or nothing at all) or :data:`NULL_NODE`.

    Examples
    --------
    >>> [is_null(v) for _, v in compose_yaml("a:\\nb: ~\\nc: ''\\n", "x", ValueError).value]
    [True, True, False]
    """
    return node.tag == TAG + "null"


def is_scalar(node: yaml.Node, kind: str) -> bool:
    """Whether ``node`` is a scalar that YAML resolves to ``kind`` (``"str"``, ``"bool"``, ...).

    Quoted scalars are always ``"str"``.

    Examples
    --------
    >>> [is_scalar(v, "str") for _, v in compose_yaml("a: x\\nb: '1'\\nc: 1\\n", "x",
    ...                                                ValueError).value]
    [True, True, False]
    """
    return isinstance(node, yaml.ScalarNode) and node.tag == TAG + kind


def describe(node: yaml.Node) -> str:
    """How a node is named in a message: ``a mapping``, ``a list``, ``nothing (empty)`` or the
    scalar as written, quoted.

    Examples
    --------
    >>> [describe(v) for _, v in compose_yaml("a: [1]\\nb: {c: 1}\\nc:\\nd: 1.5\\n", "x",
    ...                                         ValueError).value]
    ['a list', 'a mapping', 'nothing (empty)', "'1.5'"]
    """
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if is_null(node):
        return "nothing (empty)"
    return repr(node.value)


def did_you_mean(value: object, choices) -> str:
    """``" (did you mean 'x'?)"`` naming the choice closest to ``value``, or ``""`` if none is
    close.

    Examples
    --------
    >>> did_you_mean("colour", ("name", "color")), did_you_mean("zzz", ("name", "color"))
    (" (did you mean 'color'?)", '')
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def child(node: yaml.MappingNode, key: str) -> yaml.Node:
    """The value node of ``key`` in a mapping node that has it.

    Examples
    --------
    >>> child(compose_yaml("a: 1\\nb: 2\\n", "x", ValueError), "b").value
    '2'
    """
    return next(v for k, v in node.value if k.value == key)


class StrictParser:
    """Reads the nodes of one file, raising ``error`` for the first problem found.

    Parameters
    ----------
    source : str
        How the file is named in messages (a path, or ``project.yaml``).
    error : type of Exception
        The exception raised, with the message as its only argument.

    Every reader takes the node and its field path (``"rois[1].color"``; ``""`` for the top
    level), records the line of the field in :attr:`lines` and returns the checked value.

    Examples
    --------
    >>> p = StrictParser("plugin.yaml", ValueError)
    >>> root = p.compose("name: liver\\nversion: 3\\ninputs: [ct]\\n")
    >>> keys = p.mapping(root, "", ("name", "version", "inputs"), ("name",))
    >>> p.string(keys["name"], "name"), p.integer(keys["version"], "version")
    ('liver', 3)
    >>> [p.choice(n, f"inputs[{i}]", ("ct", "mr")) for i, n in enumerate(
    ...     p.sequence(keys["inputs"], "inputs"))]
    ['ct']
    >>> p.lines
    {'': 1, 'name': 1, 'version': 2, 'inputs': 3, 'inputs[0]': 3}
    >>> p.integer(keys["name"], "name")
    Traceback (most recent call last):
    ...
    ValueError: plugin.yaml line 1: name: expected a whole number, got 'liver'
    """

    def __init__(self, source: str, error: type[Exception]) -> None:
        self.source = source
        self.error = error
        #: field path → the 1-based line it was read from
        self.lines: dict[str, int] = {}
        self._constructor = yaml.constructor.SafeConstructor()

    # ---- failing and composing ----------------------------------------------------------

    def fail(self, node: yaml.Node, path: str, message: str) -> NoReturn:
        """Raise the parser's error: ``<source> line <n>: <path>: <message>``."""
        prefix = f"{path}: " if path else ""
        raise self.error(f"{self.source} line {line_of(node)}: {prefix}{message}")

    def compose(self, text: str) -> yaml.Node | None:
        """The node tree of ``text``, or ``None`` for an empty document; malformed YAML raises
        the parser's error with the message of :meth:`syntax_error`."""
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            raise self.error(self.syntax_error(exc)) from None

    def syntax_error(self, exc: yaml.YAMLError) -> str:
        """The message for malformed YAML: the file, the line, PyYAML's words and what to check.

        A subclass may word it otherwise.
        """
        if not isinstance(exc, yaml.MarkedYAMLError):
            return f"{self.source}: YAML syntax error: {exc}"
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        return (f"{self.source}{line}: YAML syntax error: {problem}; check the indentation "
                f"and quoting there")

    # ---- readers --------------------------------------------------------------------------

    def scalar(self, node: yaml.Node, path: str, what: str) -> Any:
        """The Python value of a scalar node (as the safe loader makes it); ``what`` names the
        expected value when ``node`` is a mapping or a list."""
        self.lines[path] = line_of(node)
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, path, f"expected {what}, got {describe(node)}")
        try:
            return self._constructor.construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, KeyError, OverflowError):
            # an explicit tag the value does not fit, e.g. ``!!int ten`` or ``!!bool maybe``
            tag = "!!" + node.tag[len(TAG):] if node.tag.startswith(TAG) else node.tag
            self.fail(node, path, f"{describe(node)} cannot be read as {tag}; fix the value or "
                                  f"remove the {tag} tag")

    def mapping(self, node: yaml.Node, path: str, allowed: tuple[str, ...],
                required: tuple[str, ...] = ()) -> dict[str, yaml.Node]:
        """The value nodes of a mapping by key; refuses unknown, duplicate and missing keys."""
        where = path or "the top level"
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping with keys {', '.join(allowed)}, "
                                  f"got {describe(node)}")
        self.lines.setdefault(path, line_of(node))
        out: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            key_path = f"{path}.{key}" if path else str(key)
            if key not in allowed:
                self.fail(key_node, key_path if key is not None else path,
                          f"unknown key {key!r} in {where}{did_you_mean(key, allowed)}; "
                          f"allowed keys: {', '.join(allowed)}")
            if key in out:
                self.fail(key_node, key_path, f"duplicate key {key!r}; keep only one")
            out[key] = value_node
        for key in required:
            if key not in out:
                self.fail(node, path, f"missing required key '{key}' in {where}; "
                                      f"add `{key}: ...`")
        return out

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        """The item nodes of a list; null (an absent optional list) is an empty list."""
        if isinstance(node, yaml.ScalarNode) and is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {describe(node)}")
        self.lines[path] = line_of(node)
        return list(node.value)

    def string(self, node: yaml.Node, path: str, *, max_len: int | None = None) -> str:
        """Non-empty text; a number is kept exactly as written (``1.10`` stays ``"1.10"``)."""
        value = self.scalar(node, path, "text")
        if node.tag in (TAG + "int", TAG + "float"):
            value = node.value  # a number written as text: keep it exactly as written
        if value is None or value == "":
            self.fail(node, path, "must not be empty; give a value")
        if not isinstance(value, str):
            self.fail(node, path, f"expected text, got {describe(node)}; "
                                  f"quote it: \"{node.value}\"")
        if max_len is not None and len(value) > max_len:
            self.fail(node, path, f"{value[:20]!r}… is {len(value)} characters long; "
                                  f"use at most {max_len}")
        return value

    def integer(self, node: yaml.Node, path: str) -> int:
        """A whole number (``true`` is not one)."""
        value = self.scalar(node, path, "a whole number")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(node, path, f"expected a whole number, got {describe(node)}")
        return value

    def number(self, node: yaml.Node, path: str) -> float:
        """A finite number, whole or not (``true``, ``.nan`` and ``.inf`` are not)."""
        value = self.scalar(node, path, "a number")
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or value != value or value in (float("inf"), float("-inf"))):
            self.fail(node, path, f"expected a finite number, got {describe(node)}")
        return float(value)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        """``true`` or ``false`` (YAML's unquoted yes/no/on/off count too)."""
        value = self.scalar(node, path, "true or false")
        if not isinstance(value, bool):
            self.fail(node, path, f"expected true or false, got {describe(node)}")
        return value

    def choice(self, node: yaml.Node, path: str, choices: tuple[str, ...]) -> str:
        """One of ``choices``, with a "did you mean" hint for a near miss."""
        value = self.scalar(node, path, f"one of {', '.join(choices)}")
        if value not in choices:
            self.fail(node, path, f"{describe(node)} is not allowed"
                                  f"{did_you_mean(value, choices)}; "
                                  f"use one of {', '.join(choices)}")
        return value


def compose_yaml(text: str, source_name: str, error: type[Exception]) -> yaml.Node | None:
    """The YAML node tree of ``text`` (line numbers kept), or ``None`` for an empty document;
    a syntax error raises ``error`` naming the file, the line and what to check.

    Examples
    --------
    >>> compose_yaml("a: [1, 2]", "x.yaml", ValueError).value[0][0].value
    'a'
    >>> compose_yaml("# only a comment\\n", "x.yaml", ValueError) is None
    True
    >>> compose_yaml("a: [1", "x.yaml", ValueError)
    Traceback (most recent call last):
    ...
    ValueError: x.yaml line 1: YAML syntax error: while parsing a flow sequence expected ...
    """
    return StrictParser(source_name, error).compose(text)
