"""``ril-dash users`` end to end as a real subprocess, passwords piped with --password-stdin."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ril_dash.project.sessions import SessionStore
from ril_dash.project.users import UsersFile

pytestmark = pytest.mark.slow  # every test runs `python -m ril_dash` as a process


def run_users(project: Path, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "ril_dash", "users", str(project), *args],
                            input=stdin if stdin is not None else "", capture_output=True,
                            text=True, env=dict(os.environ), timeout=60, check=False)
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    return result


def assert_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ril-dash: error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture()
def project(tmp_path):
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "project.yaml").write_text("name: test\n")
    return folder


def test_add_list_passwd_remove(project):
    r = run_users(project, "add", "alice", "--admin", "--display-name", "Alice M.",
                  "--password-stdin", stdin="correct horse\n")
    assert r.returncode == 0, r.stderr
    assert "alice" in r.stdout and "correct horse" not in r.stdout + r.stderr
    r = run_users(project, "add", "bob", "--password-stdin", stdin="bob password")
    assert r.returncode == 0, r.stderr

    path = project / "users.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "correct horse" not in path.read_text()
    uf = UsersFile(path)
    assert uf.verify("alice", "correct horse") and uf.verify("bob", "bob password")

    r = run_users(project, "list")
    assert r.returncode == 0
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[:2] == ["alice", "admin"] and "Alice M." in lines[0]
    assert lines[1].split() == ["bob", "user", "bob"]
    assert "scrypt" not in r.stdout and "pbkdf2" not in r.stdout

    sessions = SessionStore.for_project(project)
    old_token = sessions.create("bob")
    r = run_users(project, "passwd", "bob", "--password-stdin", stdin="new bob pass\n")
    assert r.returncode == 0, r.stderr
    assert "new bob pass" not in r.stdout + r.stderr
    assert uf.verify("bob", "new bob pass") and not uf.verify("bob", "bob password")
    assert sessions.lookup(old_token) is None and "ended 1 session" in r.stdout

    token = sessions.create("bob")
    kept = sessions.create("alice")
    r = run_users(project, "remove", "bob")
    assert r.returncode == 0, r.stderr
    assert [n for n, _, _ in uf.list()] == ["alice"]
    assert sessions.lookup(token) is None and sessions.lookup(kept).user == "alice"

    # every change is audited under the operating-system user, without the password
    import getpass

    from ril_dash.project.audit import AuditLog

    log = list(reversed(AuditLog.for_project(project).read()))
    assert [(e["action"], e["user"], e["detail"]) for e in log] == [
        ("user_add", getpass.getuser(), {"name": "alice", "admin": True}),
        ("user_add", getpass.getuser(), {"name": "bob", "admin": False}),
        ("password_change", getpass.getuser(), {"name": "bob", "sessions_ended": 1}),
        ("user_remove", getpass.getuser(), {"name": "bob", "sessions_ended": 1}),
    ]
    assert "pass" not in (project / "audit.log.jsonl").read_text().replace("password_change", "")


def test_list_without_users(project):
    r = run_users(project, "list")
    assert r.returncode == 0 and "No users" in r.stdout


@pytest.mark.parametrize("args, stdin, words", [
    (("add", "alice", "--password-stdin"), "short\n", ("at least 8",)),
    (("add", "alice", "--password-stdin"), "alice\n", ()),
    (("add", "alice1234", "--password-stdin"), "alice1234\n", ("not be the user name",)),
    (("add", "<script>", "--password-stdin"), "good password\n", ("HTML or script",)),
    (("add", "alice", "--password-stdin"), "", ("stdin is empty",)),
    (("add", "alice"), "", ("--password-stdin",)),
    (("remove", "ghost"), None, ("no user 'ghost'",)),
    (("passwd", "ghost", "--password-stdin"), "good password\n", ("no user 'ghost'",)),
])
def test_errors_exit_2_without_echoing_password(project, args, stdin, words):
    r = run_users(project, *args, stdin=stdin)
    assert_error(r, *words)
    if stdin and stdin.strip() != args[1]:
        assert stdin.strip() not in r.stderr + r.stdout
    assert not (project / "users.yaml").exists()


def test_duplicate_add_refused(project):
    assert run_users(project, "add", "alice", "--password-stdin",
                     stdin="correct horse\n").returncode == 0
    before = (project / "users.yaml").read_bytes()
    r = run_users(project, "add", "alice", "--password-stdin", stdin="other password\n")
    assert_error(r, "alice", "already exists")
    assert (project / "users.yaml").read_bytes() == before


def test_not_a_project(tmp_path):
    assert_error(run_users(tmp_path / "nowhere", "list"), "no project.yaml")


def test_malformed_users_file(project):
    (project / "users.yaml").write_text("users:\n  alice:\n    password: hunter22\n")
    r = run_users(project, "list")
    assert_error(r, "users.yaml", "line 3", "users.alice.password")
    assert "hunter22" not in r.stderr


def test_help_lists_actions():
    r = subprocess.run([sys.executable, "-m", "ril_dash", "users", "--help"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 0
    for action in ("add", "remove", "passwd", "list"):
        assert action in r.stdout


def test_a_user_added_while_the_audit_log_is_unwritable_is_added_with_a_warning(project):
    (project / "audit.log.jsonl").unlink(missing_ok=True)
    (project / "audit.log.jsonl").mkdir()
    r = run_users(project, "add", "carol", "--password-stdin", stdin="carol password")
    assert r.returncode == 0, r.stderr
    assert "ril-dash: warning: saved; the audit log could not be written" in r.stderr
    assert "carol" in run_users(project, "list").stdout
    assert (project / "audit.unwritable.json").is_file()
