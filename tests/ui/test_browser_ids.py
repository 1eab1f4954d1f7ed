"""The browser scripts take every component id from ril_dash/ui/ids.py, through the page.

The slice viewer writes :data:`ids.BROWSER` into its root element (``data-ril-config``); the
scripts look elements up by the names of that table (``page.el("graph")``, ``page.id("slider")``,
``set("tool", …)``). These tests read the scripts' source: no id of ids.py is spelled there, and
every name they ask for is in the table (a name missing from it throws in the browser).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ril_dash.ui import ids
from ril_dash.ui.pages.slice_viewer import browser_config

ASSETS = Path(__file__).resolve().parents[2] / "assets"
SCRIPTS = sorted(ASSETS.glob("*.js"))
#: the string constants of ids.py: ids, and the prefixes of the list editors' ids (*_EDITOR:
#: "roi" stands for "roi-table", "roi-add-name"…, see ids.editor_id)
CONSTANTS = {name: value for name, value in vars(ids).items()
             if name.isupper() and isinstance(value, str)}
PREFIXES = {value for name, value in CONSTANTS.items() if name.endswith("_EDITOR")}
ALL_IDS = set(CONSTANTS.values()) - PREFIXES
#: string literals of a script ("…" or '…', no escapes inside: the scripts use none in ids)
LITERAL = re.compile(r'"([^"\\\n]*)"|\'([^\'\\\n]*)\'')
#: the names the scripts look up: page.el("x"), page.id("x"), rilPage.el("x"), set("x", …)
LOOKUP = re.compile(r'\b(?:el|id|set)\(\s*"(\w+)"')


def code(path: Path) -> str:
    """The script without its comments."""
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", path.read_text(), flags=re.S)


def literals(path: Path) -> list[str]:
    return [a or b for a, b in LITERAL.findall(code(path))]


def test_the_scripts_are_the_ones_the_page_loads():
    assert [p.name for p in SCRIPTS] == ["ril.js", "ril_annotate.js", "ril_heatmap.js",
                                         "ril_lease.js", "ril_planes.js", "ril_viewer.js",
                                         "ril_warnings.js"]


def test_no_script_spells_an_id_of_ids_py():
    found = {}
    for path in SCRIPTS:
        for text in literals(path):
            # a whole literal ("viewer-graph") or an id inside a selector ("#viewer-graph .x")
            words = {text, *re.findall(r"#([\w-]+)", text)}
            hits = (words & ALL_IDS) | {w for w in words for prefix in PREFIXES
                                        if w.startswith(prefix + "-")}
            if hits:
                found.setdefault(path.name, set()).update(hits)
    assert found == {}


def test_every_name_the_scripts_look_up_is_in_the_table_and_every_entry_is_used():
    asked = {name for path in SCRIPTS for name in LOOKUP.findall(code(path))}
    assert asked == set(ids.BROWSER)


def test_the_table_holds_ids_of_ids_py_only():
    assert set(ids.BROWSER.values()) <= ALL_IDS
    assert len(set(ids.BROWSER.values())) == len(ids.BROWSER)  # one name per id


def test_the_page_config_is_the_table():
    assert json.loads(browser_config()) == {"ids": ids.BROWSER}
