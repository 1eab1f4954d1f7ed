"""The users file: hashed passwords, strict validation with line numbers, locked atomic writes."""

from __future__ import annotations

import stat
import threading

import pytest

from ril_dash.errors import InvalidUsers, RilDashError
from ril_dash.project import users as users_mod
from ril_dash.project.users import UsersFile, parse_users, users_path

HASH = "pbkdf2:sha256:1000$abcdefgh$" + "0" * 64


@pytest.fixture()
def uf(tmp_path):
    return UsersFile(users_path(tmp_path))


def test_add_stores_only_salted_hashes_and_verifies(uf):
    uf.add("alice", "correct horse", admin=True, display_name="Alice M.")
    uf.add("bob@lab", "another pass")
    text = uf.path.read_text()
    assert "correct horse" not in text and "another pass" not in text
    users = uf.load()
    assert users["alice"].password_hash.split(":")[0] in ("scrypt", "pbkdf2")
    assert users["alice"].password_hash != users["bob@lab"].password_hash
    assert uf.list() == [("alice", True, "Alice M."), ("bob@lab", False, "bob@lab")]
    assert uf.verify("alice", "correct horse")
    assert not uf.verify("alice", "correct horsE")
    assert not uf.verify("alice", "")
    assert uf.verify("bob@lab", "another pass")
    assert not uf.verify("nobody", "correct horse")


def test_same_password_gets_different_salts(uf):
    uf.add("a1", "samepassword")
    uf.add("a2", "samepassword")
    users = uf.load()
    assert users["a1"].password_hash != users["a2"].password_hash


def test_unknown_user_runs_a_dummy_hash_check(uf, monkeypatch):
    uf.add("alice", "correct horse")
    calls = []
    real = users_mod.verify_password
    monkeypatch.setattr(users_mod, "verify_password",
                        lambda h, p: calls.append(h) or real(h, p))
    assert uf.verify("ghost", "whatever1") is False
    assert len(calls) == 1
    assert UsersFile(uf.path.parent / "none.yaml").verify("x", "y") is False


def test_duplicate_refused_and_file_unchanged(uf):
    uf.add("alice", "correct horse")
    before = uf.path.read_bytes()
    with pytest.raises(InvalidUsers, match="already exists"):
        uf.add("alice", "other password")
    assert uf.path.read_bytes() == before
    assert uf.verify("alice", "correct horse")


def test_remove_and_set_password(uf):
    uf.add("alice", "correct horse")
    uf.add("bob", "bob password")
    uf.set_password("alice", "new password!")
    assert uf.verify("alice", "new password!") and not uf.verify("alice", "correct horse")
    uf.remove("bob")
    assert [n for n, _, _ in uf.list()] == ["alice"]
    with pytest.raises(InvalidUsers, match="no user 'bob'"):
        uf.remove("bob")
    with pytest.raises(InvalidUsers, match="no user 'carol'"):
        uf.set_password("carol", "long enough")


@pytest.mark.parametrize("name, password, words", [
    ("alice", "short", "at least 8"),
    ("alice1234", "alice1234", "must not be the user name"),
    ("alice1234", "ALICE1234", "must not be the user name"),
])
def test_password_policy(uf, name, password, words):
    with pytest.raises(InvalidUsers, match=words) as info:
        uf.add(name, password)
    assert password not in str(info.value).replace(name, "")
    assert not uf.path.exists()
    uf.add("carol", "good password")
    with pytest.raises(InvalidUsers, match="at least 8"):
        uf.set_password("carol", "1234567")


@pytest.mark.parametrize("name, words", [
    ("", "1 to 64"),
    ("a" * 65, "at most 64"),
    ("<script>alert(1)</script>", "HTML or script"),
    ("a\"b", "HTML or script"),
    ("john doe", "only letters"),
    ("jösé", "only letters"),
    ("a\nb", "only letters"),
])
def test_bad_names_refused(uf, name, words):
    with pytest.raises(InvalidUsers, match=words):
        uf.add(name, "good password")


def test_good_names(uf):
    for name in ["a", "a" * 64, "j.doe-2_x@lab.org"]:
        uf.add(name, "good password")
    assert len(uf.list()) == 3


def test_display_name_html_refused(uf):
    with pytest.raises(InvalidUsers, match="HTML"):
        uf.add("alice", "good password", display_name="<b>x</b>")


def test_file_mode_is_0600(uf):
    uf.add("alice", "correct horse")
    assert stat.S_IMODE(uf.path.stat().st_mode) == 0o600
    uf.path.chmod(0o644)
    uf.add("bob", "bob password")
    assert stat.S_IMODE(uf.path.stat().st_mode) == 0o600
    assert not [p for p in uf.path.parent.iterdir() if p.name.startswith(".users")]


def test_concurrent_adds_from_threads_all_survive(uf):
    names = [f"user{i}" for i in range(6)]
    errors = []
    barrier = threading.Barrier(len(names))

    def add(name):
        try:
            barrier.wait()
            UsersFile(uf.path).add(name, f"{name}-password")
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [n for n, _, _ in uf.list()] == names
    assert all(uf.verify(n, f"{n}-password") for n in names)


def test_absent_or_empty_file_has_no_users(tmp_path):
    assert UsersFile(tmp_path / "users.yaml").list() == []
    assert parse_users("") == {}
    assert parse_users("users:\n") == {}
    assert parse_users("users: {}\n") == {}


def test_valid_file_parses(tmp_path):
    text = (f"users:\n  alice:\n    password: '{HASH}'\n    admin: true\n"
            f"    display_name: Alice\n  bob:\n    password: '{HASH}'\n")
    users = parse_users(text)
    assert users["alice"].admin and users["alice"].display_name == "Alice"
    assert not users["bob"].admin and users["bob"].display_name == "bob"


@pytest.mark.parametrize("text, words", [
    ("users: [\n", "line 2: not valid YAML"),
    ("- a\n", "line 1: expected a mapping"),
    ("people: {}\n", "line 1: unknown key 'people'"),
    ("users: 3\n", "line 1: users: expected a mapping"),
    ("users:\n  alice: x\n", "line 2: users.alice: expected a mapping"),
    ("users:\n  alice:\n    admin: true\n", "line 3: users.alice.password: missing"),
    ("users:\n  alice:\n    password: hunter22\n",
     "line 3: users.alice.password: password must be a salted hash"),
    (f"users:\n  alice:\n    password: '{HASH}'\n    admin: 'yes'\n",
     "line 4: users.alice.admin: expected true or false"),
    (f"users:\n  alice:\n    password: '{HASH}'\n    role: x\n",
     "line 4: users.alice: unknown field 'role'"),
    (f"users:\n  alice:\n    password: '{HASH}'\n    display_name: 12\n",
     "line 4: users.alice.display_name: expected text"),
    (f"users:\n  alice:\n    password: '{HASH}'\n  alice:\n    password: '{HASH}'\n",
     "line 4: users.alice: this user is listed twice"),
    (f"users:\n  '<img src=x>':\n    password: '{HASH}'\n", "line 2: .*HTML or script"),
    (f"users:\n  alice:\n    password: '{HASH}'\n    password: '{HASH}'\n",
     "line 4: users.alice.password: given twice"),
])
def test_malformed_file_names_file_line_and_field(tmp_path, text, words):
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(InvalidUsers, match=words) as info:
        UsersFile(path).load()
    assert str(path) in str(info.value)
    assert isinstance(info.value, RilDashError)
    assert "hunter22" not in str(info.value)


def test_malformed_file_blocks_changes_and_is_kept(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users: [\n")
    with pytest.raises(InvalidUsers, match="line 2"):
        UsersFile(path).add("alice", "good password")
    assert path.read_text() == "users: [\n"
    assert UsersFile(path).verify("alice", "good password") is False
