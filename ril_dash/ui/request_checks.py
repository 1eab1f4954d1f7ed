"""Cheap shape checks of JSON request bodies, so crafted requests get a 400, never a 500.

:func:`install_request_checks` adds a ``before_request`` function (after the login guard) that:

- parses every JSON body once, through Flask's cached :meth:`Request.get_json`, so every route
  (the ``/ril/api`` routes and Dash's own) later reads the checked value; a body that is not
  JSON, or that nests deeper than :data:`MAX_JSON_DEPTH` (a JSON nested 100,000 deep raises
  ``RecursionError`` in the parser), is refused with ``400 {"error": ...}``;
- for Dash's ``POST /_dash-update-component``, checks the callback body: an object whose
  ``output`` names a callback of the app, whose ``inputs`` and ``state`` are lists of
  ``{"id", "property"}`` objects (or lists of them, for pattern-matching callbacks) as many as
  the callback declares, ``outputs`` an object or a list, ``changedPropIds`` a list of strings.

Examples
--------
>>> json_depth({"a": [1, {"b": []}]})  # object, list, object, list
4
>>> json_depth(5)
0
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, jsonify, request
from werkzeug.exceptions import BadRequest

MAX_JSON_DEPTH = 64
CALLBACK_ROUTE = "_dash-update-component"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def json_depth(value: object) -> int:
    """How deeply lists and objects nest in ``value`` (walked without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            deepest = max(deepest, depth)
            continue
        depth += 1
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            return depth
        stack.extend((child, depth) for child in children)
    return deepest


def checked_json() -> object:
    """This request's JSON body (None when it is not JSON); a bad one raises ``BadRequest``."""
    if not request.is_json:
        return None
    try:
        body = request.get_json()
    except RecursionError:
        raise BadRequest(f"the JSON body nests too deeply; at most {MAX_JSON_DEPTH} levels "
                         "are accepted") from None
    except BadRequest:
        raise BadRequest("the body is not valid JSON; send a JSON object with "
                         "Content-Type: application/json") from None
    if json_depth(body) > MAX_JSON_DEPTH:
        raise BadRequest(f"the JSON body nests too deeply; at most {MAX_JSON_DEPTH} levels "
                         "are accepted")
    return body


def _is_prop(item: object) -> bool:
    return isinstance(item, dict) and "id" in item and isinstance(item.get("property"), str)


def _props_ok(items: object, count: int) -> bool:
    if not isinstance(items, list) or len(items) != count:
        return False
    return all(_is_prop(item) or (isinstance(item, list) and all(map(_is_prop, item)))
               for item in items)


def callback_problem(body: object, callback_map: dict) -> str | None:
    """What is wrong with a Dash callback request ``body``, or None when its shape is sound."""
    if not isinstance(body, dict):
        return "a callback request must be a JSON object"
    output = body.get("output")
    if not isinstance(output, str) or not output:
        return "a callback request needs 'output' (a string)"
    callback = callback_map.get(output)
    if callback is None:
        return "the callback request names an unknown output"
    if not _props_ok(body.get("inputs", []), len(callback.get("inputs", ()))):
        return "'inputs' must be a list of {id, property} objects, one per callback input"
    if not _props_ok(body.get("state", []), len(callback.get("state", ()))):
        return "'state' must be a list of {id, property} objects, one per callback state"
    if not isinstance(body.get("outputs", []), (list, dict)):
        return "'outputs' must be an object or a list"
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(p, str) for p in changed):
        return "'changedPropIds' must be a list of strings"
    return None


def install_request_checks(server: Flask, callback_map: Callable[[], dict],
                           routes_prefix: str = "/") -> None:
    """Refuse malformed JSON bodies and Dash callback bodies of ``server`` with a 400.

    ``callback_map`` returns the app's callbacks by output (Dash's ``app.callback_map``);
    ``routes_prefix`` is Dash's ``routes_pathname_prefix``.
    """
    callback_path = routes_prefix.rstrip("/") + "/" + CALLBACK_ROUTE

    def _check():
        if request.method not in BODY_METHODS:
            return None
        try:
            body = checked_json()
        except BadRequest as exc:
            return jsonify(error=exc.description), 400
        if request.path == callback_path:
            problem = callback_problem(body, callback_map())
            if problem:
                return jsonify(error=problem), 400
        return None

    server.before_request(_check)
