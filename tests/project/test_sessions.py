"""Login sessions on disk (:mod:`ril_dash.project.sessions`), with an injected clock."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ril_dash.project.sessions import (
    DEFAULT_IDLE,
    DEFAULT_LIFETIME,
    SessionStore,
    token_id,
)


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    return SessionStore.for_project(tmp_path, clock=clock)


def test_create_and_lookup(store, clock, tmp_path):
    token = store.create("alice")
    assert len(token) >= 40
    session = store.lookup(token)
    assert (session.user, session.created, session.last_seen) == ("alice", clock.t, clock.t)
    other = store.create("alice")
    assert other != token and store.lookup(other).user == "alice"


def test_files_hold_no_token_and_are_private(store, tmp_path):
    token = store.create("alice")
    folder = tmp_path / ".sessions"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = sorted(os.listdir(folder))
    assert files == [token_id(token) + ".json"]
    path = folder / files[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert token not in text
    assert json.loads(text)["user"] == "alice"


def test_a_world_readable_folder_is_tightened(tmp_path, clock):
    folder = tmp_path / ".sessions"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    SessionStore(folder, clock=clock).create("alice")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize("token", [None, "", 42, "x" * 1000, "unknown-token", ["a"]])
def test_unknown_or_odd_tokens_are_no_session(store, token):
    store.create("alice")
    assert store.lookup(token) is None
    store.delete(token)  # harmless


def test_idle_expiry_and_touch(store, clock):
    token = store.create("alice")
    clock.t += DEFAULT_IDLE - 10
    assert store.lookup(token) is not None  # used: last_seen moves forward
    clock.t += DEFAULT_IDLE - 10
    assert store.lookup(token).last_seen == clock.t
    clock.t += DEFAULT_IDLE
    assert store.lookup(token) is None
    assert list((store.folder).iterdir()) == []  # the expired file is removed


def test_touch_at_most_once_a_minute(store, clock):
    token = store.create("alice")
    path = store.folder / (token_id(token) + ".json")
    clock.t += 30
    assert store.lookup(token).last_seen == clock.t - 30
    assert path.stat().st_mtime == clock.t - 30  # not written
    clock.t += 31
    assert store.lookup(token).last_seen == clock.t
    assert path.stat().st_mtime == clock.t


def test_absolute_lifetime(store, clock):
    token = store.create("alice")
    while clock.t < 1_700_000_000.0 + DEFAULT_LIFETIME - 3600:
        clock.t += 3600
        assert store.lookup(token) is not None
    clock.t += 3600
    assert store.lookup(token) is None


def test_custom_limits(tmp_path, clock):
    store = SessionStore(tmp_path / "s", lifetime=100, idle=50, touch_interval=10,
                         clock=clock)
    token = store.create("bob")
    clock.t += 49
    assert store.lookup(token)
    clock.t += 49
    assert store.lookup(token)
    clock.t += 3
    assert store.lookup(token) is None


def test_delete(store):
    a, b = store.create("alice"), store.create("alice")
    store.delete(a)
    assert store.lookup(a) is None
    assert store.lookup(b) is not None


def test_delete_user(store):
    a1, a2, b = store.create("alice"), store.create("alice"), store.create("bob")
    assert store.delete_user("alice") == 2
    assert store.lookup(a1) is None and store.lookup(a2) is None
    assert store.lookup(b).user == "bob"
    assert store.delete_user("nobody") == 0


def test_a_deleted_session_is_not_brought_back_by_a_touch(store, clock):
    token = store.create("alice")
    session_path = store.folder / (token_id(token) + ".json")
    clock.t += 120
    session_path.unlink()  # another process logged out
    assert store.lookup(token) is None
    assert not session_path.exists()


def test_purge_expired(store, clock):
    old = store.create("alice")
    clock.t += DEFAULT_IDLE - 60
    fresh = store.create("bob")
    (store.folder / ("0" * 64 + ".json")).write_text("not json")
    (store.folder / "README.txt").write_text("foreign, left alone")
    stale_temp = store.folder / ".abc.123.json"
    stale_temp.write_text("{}")
    os.utime(stale_temp, (clock.t - 7200, clock.t - 7200))
    clock.t += 120
    assert store.purge_expired() == 3  # expired, malformed, stale temp
    assert store.lookup(old) is None
    assert store.lookup(fresh).user == "bob"
    assert (store.folder / "README.txt").exists()
    assert store.users() == {"bob": 1}


@pytest.mark.parametrize("content", [
    "", "[]", "null", '{"format": 1, "user": "", "created": 1}',
    '{"format": 2, "user": "alice", "created": 1}',
    '{"format": 1, "user": 7, "created": 1}',
    '{"format": 1, "user": "alice", "created": "yesterday"}',
    '{"format": 1, "user": "alice", "created": true}',
    '{"format": 1, "user": "alice", "created": NaN}',
    '{"format": 1, "user": "alice", "created": 1, "stamp": 3}',
    "\xff\xfe garbage",
], ids=range(11))
def test_malformed_files_are_no_session(store, clock, content):
    token = store.create("alice")
    path = store.folder / (token_id(token) + ".json")
    path.write_text(content, encoding="latin-1")
    os.utime(path, (clock.t, clock.t))
    assert store.lookup(token) is None


def test_a_symlinked_session_file_is_refused(store, tmp_path, clock):
    token = store.create("alice")
    path = store.folder / (token_id(token) + ".json")
    target = tmp_path / "elsewhere.json"
    os.replace(path, target)
    path.symlink_to(target)
    assert store.lookup(token) is None


def test_an_oversized_file_is_refused(store, clock):
    token = store.create("alice")
    path = store.folder / (token_id(token) + ".json")
    data = json.loads(path.read_text())
    data["stamp"] = "x" * 10_000
    path.write_text(json.dumps(data))
    os.utime(path, (clock.t, clock.t))
    assert store.lookup(token) is None


def test_stamp_round_trip(store):
    token = store.create("alice", stamp="abc123")
    assert store.lookup(token).stamp == "abc123"


def test_two_stores_share_the_folder(tmp_path, clock):
    one = SessionStore.for_project(tmp_path, clock=clock)
    two = SessionStore.for_project(tmp_path, clock=clock)
    token = one.create("alice")
    assert two.lookup(token).user == "alice"
    two.delete(token)
    assert one.lookup(token) is None


def test_create_refuses_an_empty_user(store):
    with pytest.raises(ValueError):
        store.create("")
