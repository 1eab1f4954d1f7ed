"""The neutral strict-YAML reader: message format, line numbers, every reader's refusals."""

from __future__ import annotations

import pytest
import yaml

from ril_dash.strict_yaml import (
    NULL_NODE,
    StrictParser,
    child,
    compose_yaml,
    describe,
    did_you_mean,
    is_null,
    is_scalar,
    line_of,
)


class ManifestError(Exception):
    """Stands for a schema's own error class (InvalidProject, a plugin error...)."""


def parser_and_root(text: str, source: str = "plugin.yaml"):
    parser = StrictParser(source, ManifestError)
    return parser, parser.compose(text)


def message(call) -> str:
    with pytest.raises(ManifestError) as info:
        call()
    return str(info.value)


# ---- composing --------------------------------------------------------------------------


def test_empty_document_is_none_and_comments_count_as_empty():
    assert compose_yaml("", "a.yaml", ManifestError) is None
    assert compose_yaml("# nothing\n\n", "a.yaml", ManifestError) is None


def test_syntax_error_names_file_line_and_what_to_check():
    text = "name: x\nshape: [1, 2\nother: 3\n"
    assert message(lambda: compose_yaml(text, "m/plugin.yaml", ManifestError)) == (
        "m/plugin.yaml line 3: YAML syntax error: while parsing a flow sequence expected ',' "
        "or ']', but got ':'; check the indentation and quoting there")


def test_unmarked_yaml_error_still_names_the_file():
    text = "name: \x00\n"  # the reader refuses the character before any mark exists
    got = message(lambda: compose_yaml(text, "plugin.yaml", ManifestError))
    assert got.startswith("plugin.yaml: YAML syntax error: unacceptable character #x0000")


def test_a_subclass_may_word_syntax_errors_its_own_way():
    class Terse(StrictParser):
        def syntax_error(self, exc):
            return f"{self.source}: broken"

    with pytest.raises(KeyError, match="t.yaml: broken"):
        Terse("t.yaml", KeyError).compose("a: [")


def test_compose_never_builds_python_objects():
    root = compose_yaml("a: !!python/object/apply:os.system [echo hi]\n", "p.yaml", ManifestError)
    parser = StrictParser("p.yaml", ManifestError)
    got = message(lambda: parser.scalar(child(root, "a"), "a", "text"))
    assert got == "p.yaml line 1: a: expected text, got a list"


# ---- node helpers -----------------------------------------------------------------------


def test_node_helpers():
    root = compose_yaml("a: 1\nb:\nc: '7'\nd: [x]\ne: {f: 1}\ng: yes\n", "x", ManifestError)
    nodes = {k.value: v for k, v in root.value}
    assert [line_of(nodes[k]) for k in "abcdeg"] == [1, 2, 3, 4, 5, 6]
    assert is_null(nodes["b"]) and is_null(NULL_NODE) and not is_null(nodes["a"])
    assert is_scalar(nodes["c"], "str") and is_scalar(nodes["a"], "int")
    assert is_scalar(nodes["g"], "bool") and not is_scalar(nodes["d"], "str")
    assert [describe(nodes[k]) for k in "abcde"] == [
        "'1'", "nothing (empty)", "'7'", "a list", "a mapping"]
    assert child(root, "c") is nodes["c"]
    assert did_you_mean("inptus", ("inputs", "outputs")) == " (did you mean 'inputs'?)"
    assert did_you_mean("zzz", ("inputs",)) == ""


# ---- fail -------------------------------------------------------------------------------


def test_fail_uses_the_error_class_source_line_and_path():
    parser, root = parser_and_root("a: 1\nb: 2\n", "models/liver/plugin.yaml")
    node = child(root, "b")
    assert message(lambda: parser.fail(node, "b", "bad; fix it")) == \
        "models/liver/plugin.yaml line 2: b: bad; fix it"
    assert message(lambda: parser.fail(root, "", "bad")) == "models/liver/plugin.yaml line 1: bad"


# ---- mapping ----------------------------------------------------------------------------

KEYS = ("name", "version", "inputs")


def test_mapping_returns_value_nodes_and_records_lines():
    parser, root = parser_and_root("name: a\nversion: 2\n")
    keys = parser.mapping(root, "", KEYS, ("name",))
    assert sorted(keys) == ["name", "version"] and keys["version"].value == "2"
    assert parser.lines == {"": 1}
    sub, sub_root = parser_and_root("x:\n  name: a\n")
    sub.mapping(child(sub_root, "x"), "x", KEYS)
    assert sub.lines == {"x": 2}


@pytest.mark.parametrize("text, path, expected", [
    ("name: a\nverison: 2\n", "",
     "plugin.yaml line 2: verison: unknown key 'verison' in the top level (did you mean "
     "'version'?); allowed keys: name, version, inputs"),
    ("m:\n  name: a\n  zzz: 1\n", "m",
     "plugin.yaml line 3: m.zzz: unknown key 'zzz' in m; allowed keys: name, version, inputs"),
    ("name: a\nname: b\n", "", "plugin.yaml line 2: name: duplicate key 'name'; keep only one"),
    ("version: 2\n", "", "plugin.yaml line 1: missing required key 'name' in the top level; "
                         "add `name: ...`"),
    ("- a\n", "", "plugin.yaml line 1: expected a mapping with keys name, version, inputs, "
                  "got a list"),
    ("? [a]\n: 1\n", "", "plugin.yaml line 1: unknown key None in the top level; allowed keys: "
                         "name, version, inputs"),
])
def test_mapping_refusals(text, path, expected):
    parser, root = parser_and_root(text)
    node = root if not path else child(root, path)
    assert message(lambda: parser.mapping(node, path, KEYS, ("name",))) == expected


# ---- sequence ---------------------------------------------------------------------------


def test_sequence_items_absent_list_and_refusal():
    parser, root = parser_and_root("inputs:\n  - ct\n  - mr\nnone:\nword: ct\n")
    assert [n.value for n in parser.sequence(child(root, "inputs"), "inputs")] == ["ct", "mr"]
    assert parser.lines == {"inputs": 2}
    assert parser.sequence(child(root, "none"), "none") == []
    assert parser.sequence(NULL_NODE, "absent") == []
    assert message(lambda: parser.sequence(child(root, "word"), "word")) == \
        "plugin.yaml line 5: word: expected a list, got 'ct'"


# ---- scalars ----------------------------------------------------------------------------


def read(reader: str, value: str, *args, **kwargs):
    parser, root = parser_and_root(f"v: {value}\n")
    return getattr(parser, reader)(child(root, "v"), "v", *args, **kwargs)


def refusal(reader: str, value: str, *args, **kwargs) -> str:
    return message(lambda: read(reader, value, *args, **kwargs))


def test_string_keeps_numbers_as_written_and_refuses_empty_bool_long():
    assert read("string", "liver model") == "liver model"
    assert read("string", "1.10") == "1.10" and read("string", "007") == "007"
    assert refusal("string", "''") == "plugin.yaml line 1: v: must not be empty; give a value"
    assert refusal("string", "") == "plugin.yaml line 1: v: must not be empty; give a value"
    assert refusal("string", "yes") == \
        "plugin.yaml line 1: v: expected text, got 'yes'; quote it: \"yes\""
    assert refusal("string", "[a]") == "plugin.yaml line 1: v: expected text, got a list"
    assert read("string", "abcd", max_len=4) == "abcd"
    assert refusal("string", "abcde", max_len=4) == \
        "plugin.yaml line 1: v: 'abcde'… is 5 characters long; use at most 4"


def test_integer():
    assert read("integer", "42") == 42 and read("integer", "-3") == -3
    assert refusal("integer", "1.5") == "plugin.yaml line 1: v: expected a whole number, got '1.5'"
    assert refusal("integer", "true") == \
        "plugin.yaml line 1: v: expected a whole number, got 'true'"
    assert refusal("integer", "'4'") == "plugin.yaml line 1: v: expected a whole number, got '4'"


def test_number():
    assert read("number", "0.25") == 0.25 and read("number", "3") == 3.0
    assert isinstance(read("number", "3"), float)
    for bad in (".nan", ".inf", "-.inf", "false", "three"):
        assert refusal("number", bad) == \
            f"plugin.yaml line 1: v: expected a finite number, got '{bad}'"


def test_boolean():
    assert read("boolean", "true") is True and read("boolean", "no") is False
    assert refusal("boolean", "maybe") == \
        "plugin.yaml line 1: v: expected true or false, got 'maybe'"
    assert refusal("boolean", "{a: 1}") == \
        "plugin.yaml line 1: v: expected true or false, got a mapping"


def test_choice():
    assert read("choice", "ct", ("ct", "mr")) == "ct"
    assert refusal("choice", "mri", ("ct", "mr")) == \
        "plugin.yaml line 1: v: 'mri' is not allowed (did you mean 'mr'?); use one of ct, mr"
    assert refusal("choice", "pet", ("ct", "mr")) == \
        "plugin.yaml line 1: v: 'pet' is not allowed; use one of ct, mr"
    assert refusal("choice", "[ct]", ("ct", "mr")) == \
        "plugin.yaml line 1: v: expected one of ct, mr, got a list"


@pytest.mark.parametrize("value, tag", [("!!int ten", "!!int"), ("!!bool maybe", "!!bool"),
                                        ("!!float x", "!!float"), ("!custom x", "!custom")])
def test_a_tag_the_value_does_not_fit_is_a_clear_error(value, tag):
    written = value.split()[1]
    assert refusal("scalar", value, "text") == (
        f"plugin.yaml line 1: v: '{written}' cannot be read as {tag}; fix the value or remove "
        f"the {tag} tag")


def test_readers_record_the_line_of_each_field():
    parser, root = parser_and_root("a: x\n\nb: 2\nc: [1]\n")
    parser.string(child(root, "a"), "a")
    parser.integer(child(root, "b"), "b")
    parser.sequence(child(root, "c"), "c")
    assert parser.lines == {"a": 1, "b": 3, "c": 4}


def test_nodes_from_pyyaml_directly_are_accepted():
    node = yaml.compose("v: 5\n", Loader=yaml.SafeLoader)
    parser = StrictParser("direct.yaml", ManifestError)
    assert parser.integer(child(node, "v"), "v") == 5
