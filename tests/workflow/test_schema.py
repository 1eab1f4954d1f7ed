"""Workflow YAML: the example parses, every mistake names file, line and field."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ril_dash.errors import InvalidProject, InvalidWorkflow, RilDashError
from ril_dash.project.schema import load_project_config, parse_project_yaml
from ril_dash.workflow.schema import (
    PoolDef,
    load_workflow_file,
    parse_workflow_yaml,
    workflow_from_project,
)

from .example import EXAMPLE


def test_example_parses():
    wf = parse_workflow_yaml(EXAMPLE)
    assert wf.start_pool == "analysts"
    assert list(wf.pools) == ["analysts", "reviewers", "scientists"]
    assert wf.pools["analysts"] == PoolDef("analysts", ("ana", "bob"), frozenset({"annotate"}),
                                           ("reviewers",))
    assert wf.pools["reviewers"] == PoolDef("reviewers", ("rita",),
                                            frozenset({"review", "annotate"}),
                                            ("analysts", "scientists"), "scientists", "analysts")
    assert wf.pools["scientists"] == PoolDef("scientists", ("sam",),
                                             frozenset({"read", "export"}), ())
    assert wf.admins == frozenset({"root"})
    assert wf.is_admin("root") and not wf.is_admin("ana") and not wf.is_admin(None)
    assert wf.pools_of("ana") == ("analysts",) and wf.pools_of("eve") == ()
    assert wf.users == {"ana", "bob", "rita", "sam", "root"}
    assert wf.lines["workflow.pools.reviewers.approve_to"] == 5
    assert wf.source == "workflow.yaml"


def test_user_in_several_pools_and_minimal_pool():
    wf = parse_workflow_yaml("workflow:\n  start_pool: a\n  pools:\n"
                             "    a: {users: [ana], rights: [annotate], assign_to: [b, a]}\n"
                             "    b: {users: [ana, bob], rights: []}\n")
    assert wf.pools_of("ana") == ("a", "b")
    assert wf.pools["b"].assign_to == () and wf.pools["b"].approve_to is None
    assert wf.admins == frozenset()


def test_embedded_in_project_yaml(tmp_path):
    text = "name: Liver study\nimages: imgs\nrois:\n  - {name: Liver, color: '#a0522d', value: 1}\n"
    text += EXAMPLE
    (tmp_path / "project.yaml").write_text(text)
    config = parse_project_yaml(text, project_dir=tmp_path)
    assert config.name == "Liver study" and config.line_of("workflow") == 6
    wf = workflow_from_project(config)
    assert wf == parse_workflow_yaml(EXAMPLE)
    assert wf.source == "project.yaml"
    # line numbers are those of project.yaml, and the loaded file is named in errors
    bad = text.replace("approve_to: scientists", "approve_to: scientist")
    (tmp_path / "project.yaml").write_text(bad)
    config = load_project_config(tmp_path)
    with pytest.raises(InvalidWorkflow) as err:
        workflow_from_project(config)
    assert str(err.value).startswith(f"{tmp_path.resolve() / 'project.yaml'} line 9: "
                                     "workflow.pools.reviewers.approve_to: no pool named "
                                     "'scientist' (did you mean 'scientists'?)")


def test_project_without_workflow():
    config = parse_project_yaml("name: P\nimages: /data/i\n", project_dir="/p")
    assert config.workflow_node is None and workflow_from_project(config) is None
    config = parse_project_yaml("name: P\nimages: /data/i\nworkflow:\n", project_dir="/p")
    assert workflow_from_project(config) is None


def test_project_still_rejects_other_unknown_keys():
    with pytest.raises(InvalidProject, match="line 3: workflows: unknown key 'workflows'.*"
                                             "did you mean 'workflow'"):
        parse_project_yaml("name: P\nimages: /data/i\nworkflows: {}\n", project_dir="/p")


def test_separate_file(tmp_path):
    path = tmp_path / "flow.yaml"
    path.write_text(EXAMPLE)
    assert load_workflow_file(path) == parse_workflow_yaml(EXAMPLE)
    assert load_workflow_file(path).source == str(path)
    path.write_text(EXAMPLE.replace("rights: [annotate]", "rights: [anotate]"))
    with pytest.raises(InvalidWorkflow, match=f"^{path} line 4: "
                                              r"workflow\.pools\.analysts\.rights\[0\]: "):
        load_workflow_file(path)
    with pytest.raises(InvalidWorkflow, match="no such workflow file"):
        load_workflow_file(tmp_path / "missing.yaml")


_POOLS = "  pools:\n    a: {users: [ana], rights: [annotate]}\n"


@pytest.mark.parametrize(("text", "line", "message"), [
    ("", 1, "the file is empty"),
    ("workflow: [\n", 2, "YAML syntax error"),
    ("start_pool: a\n", 1, "unknown key 'start_pool' in the top level"),
    ("workflow:\n  start_pool: a\n" + _POOLS + "workflow: {}\n", 5, "duplicate key 'workflow'"),
    ("workflow:\n", 1, "workflow: expected a mapping"),
    ("workflow:\n  pools:\n    a: {users: [ana], rights: []}\n", 2,
     "missing required key 'start_pool'"),
    ("workflow:\n  start_pool: a\n", 2, "missing required key 'pools'"),
    ("workflow:\n  start_pool: a\n  pools: {}\n", 3, "workflow.pools: expected a mapping of pool"),
    ("workflow:\n  start_pool: a\n  pools: [a]\n", 3, "workflow.pools: expected a mapping"),
    ("workflow:\n  start_pool: b\n" + _POOLS, 2, "workflow.start_pool: no pool named 'b'"),
    ("workflow:\n  start_pool:\n" + _POOLS, 2, "workflow.start_pool: a pool name must not be empty"),
    ("workflow:\n  start_pool: a\n  admin: [root]\n" + _POOLS, 3,
     "unknown key 'admin' in workflow (did you mean 'admins'?)"),
    ("workflow:\n  start_pool: a\n" + _POOLS + "  admins: root\n", 5,
     "workflow.admins: expected a list"),
    ("workflow:\n  start_pool: a\n" + _POOLS + "  admins: [root, root]\n", 5,
     "workflow.admins[1]: 'root' is listed twice"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana]}\n", 4,
     "workflow.pools.a: missing required key 'rights'"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [annotate], x: 1}\n",
     4, "workflow.pools.a.x: unknown key 'x'"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [write]}\n", 4,
     ("workflow.pools.a.rights[0]: 'write' is not allowed; use one of annotate, review, read, "
     "export")),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [read, read]}\n", 4,
     "workflow.pools.a.rights[1]: 'read' is listed twice"),
    ("workflow:\n  start_pool: a\n  pools:\n    a:\n      users: [ana, ana]\n      rights: []\n",
     5, "workflow.pools.a.users[1]: 'ana' is listed twice"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: ana, rights: []}\n", 4,
     "workflow.pools.a.users: expected a list"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [[ana]], rights: []}\n", 4,
     "workflow.pools.a.users[0]: expected text, got a list"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [''], rights: []}\n", 4,
     "workflow.pools.a.users[0]: a user name must not be empty"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [" + "x" * 65 + "], rights: []}\n", 4,
     "is 65 characters long; use at most 64"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [\"a\\tb\"], rights: []}\n", 4,
     "user name 'a\\tb' contains the control character '\\t'"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: {users: [\"a\\x1bb\"], rights: []}\n", 4,
     "control character"),
    ("workflow:\n  start_pool: a\n  pools:\n    \"a\\nb\": {users: [], rights: []}\n", 4,
     "pool name 'a\\nb' contains the control character"),
    ("workflow:\n  start_pool: a\n  pools:\n    " + "p" * 65 + ": {users: [], rights: []}\n", 4,
     "use at most 64"),
    ("workflow:\n  start_pool: a\n" + _POOLS + "    a: {users: [], rights: []}\n", 5,
     "duplicate pool 'a'"),
    (("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [annotate],"
     " assign_to: [b]}\n"), 4, "workflow.pools.a.assign_to[0]: no pool named 'b'; the pools are a"),
    (("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [review],"
     " approve_to: c}\n"), 4, "workflow.pools.a.approve_to: no pool named 'c'"),
    (("workflow:\n  start_pool: a\n  pools:\n    a:\n      users: [ana]\n      rights: [review]\n"
     "      send_back_to: c\n"), 7, "workflow.pools.a.send_back_to: no pool named 'c'"),
    (("workflow:\n  start_pool: a\n  pools:\n    a:\n      users: [ana]\n      rights: [annotate]\n"
     "      approve_to: a\n"), 7, "only pools with the 'review' right can approve"),
    (("workflow:\n  start_pool: a\n  pools:\n    a: {users: [ana], rights: [annotate],"
     " assign_to: b}\n"), 4, "workflow.pools.a.assign_to: expected a list"),
    ("workflow:\n  start_pool: a\n  pools:\n    a: [ana]\n", 4, ("workflow.pools.a: expected a "
     "mapping with keys users, rights")),
])
def test_schema_errors(text, line, message):
    with pytest.raises(InvalidWorkflow) as err:
        parse_workflow_yaml(text, source_name="flow.yaml")
    assert isinstance(err.value, RilDashError)
    assert str(err.value).startswith(f"flow.yaml line {line}: "), str(err.value)
    assert message in str(err.value)


def test_html_and_script_names_are_plain_data():
    names = ["<script>alert(1)</script>", "<b>bob</b>", "a&amp;b", "{{x}}", "Ünïcødé 名前"]
    text = ("workflow:\n  start_pool: '<img src=x onerror=alert(1)>'\n  pools:\n"
            "    '<img src=x onerror=alert(1)>':\n      users: " +
            "[" + ", ".join(f"'{n}'" for n in names) + "]\n      rights: [annotate]\n"
            "  admins: ['<i>root</i>']\n")
    wf = parse_workflow_yaml(text)
    assert wf.start_pool == "<img src=x onerror=alert(1)>"
    assert wf.pools[wf.start_pool].users == tuple(names)
    assert wf.admins == {"<i>root</i>"}
    with pytest.raises(InvalidWorkflow) as err:
        parse_workflow_yaml(text.replace("start_pool: '<img", "start_pool: '<svg"))
    assert "no pool named '<svg src=x onerror=alert(1)>'" in str(err.value)


def test_numbers_as_names_are_kept_as_written():
    wf = parse_workflow_yaml("workflow:\n  start_pool: 007\n  pools:\n"
                             "    007: {users: [1e3, 42], rights: [read]}\n")
    assert wf.start_pool == "007" and wf.pools["007"].users == ("1e3", "42")


def test_workflow_package_does_not_import_dash():
    code = ("import sys, ril_dash.workflow.schema, ril_dash.workflow.machine; "
            "assert not any(m == 'dash' or m.startswith('dash.') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
