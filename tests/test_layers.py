"""The layer contracts of pyproject.toml ([tool.importlinter]) hold for this checkout.

``lint-imports`` runs in a subprocess from the repository root, so it analyses the ``ril_dash``
of this checkout (the current directory comes first on its path), not an installed copy.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = ("import sys\n"
        "from importlinter.cli import lint_imports\n"
        "sys.exit(lint_imports(no_cache=True, no_logo=True))\n")


def test_import_contracts_are_kept():
    result = subprocess.run([sys.executable, "-c", LINT], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    report = result.stdout + result.stderr
    assert "No module named 'importlinter'" not in report, \
        "import-linter is missing: pip install -e '.[test]'"
    assert result.returncode == 0, f"lint-imports found broken layer contracts:\n{report}"
    assert "0 broken" in report and "BROKEN" not in report, report


def test_no_module_imports_another_modules_private_names():
    """``from ril_dash.x import _name`` couples to internals; make the name public instead."""
    found = []
    for path in sorted((ROOT / "ril_dash").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ril_dash"):
                found += [f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}"
                          for alias in node.names
                          if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert found == [], "private names imported across modules:\n" + "\n".join(found)
