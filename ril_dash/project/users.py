"""The users file of a project served to several people (default ``<project>/users.yaml``).

::

    users:
      alice:
        password: "scrypt:32768:8:1$…$…"   # a salted hash, never the password itself
        admin: true
        display_name: Alice Martin

The file is read with the strict reader of :mod:`ril_dash.strict_yaml` (its own wording kept), so
every error names the file, the line and the field. User names are 1–64 characters of ASCII
letters, digits and ``._-@``; passwords are only ever stored as salted hashes (scrypt, or
pbkdf2 in files written by others) in werkzeug's format, made and checked with the standard
library by :mod:`ril_dash.project.passwords`.

Every change (:meth:`UsersFile.add`, :meth:`~UsersFile.remove`, :meth:`~UsersFile.set_password`)
is a read-modify-write under a :class:`filelock.FileLock` (``users.yaml.lock`` beside the file),
and the file is replaced atomically with mode 0600, so concurrent changes from several processes
or threads all survive and a reader never sees half a file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from filelock import FileLock, Timeout

from ril_dash.core.atomic_io import commit_temp, temp_path_for
from ril_dash.errors import InvalidUsers
from ril_dash.project.passwords import hash_password, is_valid_hash, verify_password
from ril_dash.strict_yaml import StrictParser, is_null, is_scalar

USERS_FILE = "users.yaml"
LOCK_TIMEOUT = 30.0
FILE_MODE = 0o600
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_NAME_LENGTH = 64
MAX_DISPLAY_NAME_LENGTH = 128

_NAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}", re.ASCII)
_HTML_CHARS = set("<>&\"'`/\\")
_FIELDS = ("password", "admin", "display_name")


def users_path(project_dir: str | os.PathLike) -> Path:
    """The default users file of ``project_dir``."""
    return Path(project_dir) / USERS_FILE


@dataclass(frozen=True)
class User:
    """One entry of the users file (``password_hash`` is the stored salted hash)."""

    name: str
    password_hash: str
    admin: bool
    display_name: str


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a valid user name, or None when it is."""
    if not isinstance(name, str) or not name:
        return "a user name must be 1 to 64 characters"
    if len(name) > MAX_NAME_LENGTH:
        return f"user name is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed"
    if any(ch in _HTML_CHARS for ch in name):
        return ("user name contains HTML or script characters (< > & quotes / \\), which are "
                "refused; use only letters, digits and . _ - @")
    if not _NAME_RE.fullmatch(name):
        return ("user name may contain only letters A-Z a-z, digits and . _ - @ "
                "(no spaces or other characters)")
    return None


def check_name(name: object) -> str:
    """Return ``name`` or raise :class:`InvalidUsers` saying what is wrong with it."""
    problem = name_problem(name)
    if problem:
        raise InvalidUsers(f"invalid user name {name!r}: {problem}")
    return name  # type: ignore[return-value]


def display_name_problem(display_name: object) -> str | None:
    """Why ``display_name`` is not acceptable, or None."""
    if not isinstance(display_name, str) or not display_name.strip():
        return "display_name must be a non-empty text"
    if len(display_name) > MAX_DISPLAY_NAME_LENGTH:
        return f"display_name is longer than {MAX_DISPLAY_NAME_LENGTH} characters"
    if any(ch in "<>" for ch in display_name):
        return "display_name must not contain HTML (< or >)"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in display_name):
        return "display_name must not contain control characters or line breaks"
    return None


def check_password_policy(name: str, password: object) -> str:
    """Return ``password`` if it is acceptable, else raise :class:`InvalidUsers`.

    The message never contains the password.
    """
    if not isinstance(password, str):
        raise InvalidUsers("the password must be text")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUsers(f"password refused: it must be at least {MIN_PASSWORD_LENGTH} "
                           f"characters long")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidUsers(f"password refused: at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().casefold() == name.casefold():
        raise InvalidUsers("password refused: it must not be the user name")
    return password


def hash_problem(value: str) -> str | None:
    """Why ``value`` is not a salted hash that :func:`verify_password` can check, or None."""
    if not is_valid_hash(value):
        return ("password must be a salted hash (scrypt:… or pbkdf2:…) written by "
                "'ril-dash users PROJECT_DIR passwd NAME', never a plain password")
    return None


_dummy_hash: str | None = None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("ril-dash dummy password for timing")
    return _dummy_hash


# -- parsing -------------------------------------------------------------------------------


class _UsersParser(StrictParser):
    """The strict YAML walker with the users file's own checks and wording."""

    def __init__(self, source: str) -> None:
        super().__init__(source, InvalidUsers)

    def syntax_error(self, exc: yaml.YAMLError) -> str:
        mark = getattr(exc, "problem_mark", None)
        where = f"{self.source} line {mark.line + 1}" if mark is not None else self.source
        problem = getattr(exc, "problem", None) or str(exc)
        return f"{where}: not valid YAML ({problem})"

    def users(self, root: yaml.Node | None) -> dict[str, User]:
        if root is None:
            return {}
        if not isinstance(root, yaml.MappingNode):
            self.fail(root, "", "expected a mapping with one key 'users'")
        users_node = None
        for key, value in root.value:
            if not isinstance(key, yaml.ScalarNode) or key.value != "users":
                self.fail(key, "", f"unknown key {getattr(key, 'value', '?')!r} "
                                   f"(only 'users' is allowed)")
            if users_node is not None:
                self.fail(key, "users", "given twice")
            users_node = value
        if users_node is None or (isinstance(users_node, yaml.ScalarNode)
                                  and is_null(users_node)):
            return {}
        if not isinstance(users_node, yaml.MappingNode):
            self.fail(users_node, "users", "expected a mapping of user name → settings")
        users: dict[str, User] = {}
        for key, entry in users_node.value:
            if not is_scalar(key, "str"):
                self.fail(key, "users", "each user name must be plain text")
            name = key.value
            problem = name_problem(name)
            if problem:
                self.fail(key, f"users.{name!r}", problem)
            if name in users:
                self.fail(key, f"users.{name}", "this user is listed twice")
            users[name] = self.user(name, entry, f"users.{name}")
        return users

    def user(self, name: str, entry: yaml.Node, prefix: str) -> User:
        if not isinstance(entry, yaml.MappingNode):
            self.fail(entry, prefix, "expected a mapping with password, admin, display_name")
        fields: dict[str, yaml.Node] = {}
        for fkey, fvalue in entry.value:
            fname = getattr(fkey, "value", "?")
            if fname not in _FIELDS:
                self.fail(fkey, prefix, f"unknown field {fname!r} "
                                        f"(allowed: {', '.join(_FIELDS)})")
            if fname in fields:
                self.fail(fkey, f"{prefix}.{fname}", "given twice")
            fields[fname] = fvalue
        if "password" not in fields:
            self.fail(entry, f"{prefix}.password", "missing")
        pw = fields["password"]
        if not is_scalar(pw, "str"):
            self.fail(pw, f"{prefix}.password", "expected text (a salted hash)")
        problem = hash_problem(pw.value)
        if problem:
            self.fail(pw, f"{prefix}.password", problem)
        admin = False
        if "admin" in fields:
            node = fields["admin"]
            if not is_scalar(node, "bool"):
                self.fail(node, f"{prefix}.admin", "expected true or false")
            admin = self.scalar(node, f"{prefix}.admin", "true or false")
        display_name = name
        if "display_name" in fields:
            node = fields["display_name"]
            if not is_scalar(node, "str"):
                self.fail(node, f"{prefix}.display_name", "expected text")
            problem = display_name_problem(node.value)
            if problem:
                self.fail(node, f"{prefix}.display_name", problem)
            display_name = node.value
        return User(name, pw.value, admin, display_name)


def parse_users(text: str, source: str = USERS_FILE) -> dict[str, User]:
    """Parse and strictly validate a users file; errors name ``source``, the line and the field.

    Examples
    --------
    >>> parse_users("users:\\n  ana:\\n    password: 'pbkdf2:sha256:1000$s$00'\\n")["ana"].admin
    False
    >>> parse_users("users:\\n  ana:\\n    password: x\\n    role: admin\\n", "users.yaml")
    Traceback (most recent call last):
    ...
    ril_dash.errors.InvalidUsers: users.yaml line 4: users.ana: unknown field 'role' ...
    """
    parser = _UsersParser(source)
    return parser.users(parser.compose(text))


def dump_users(users: dict[str, User]) -> str:
    """The YAML text of ``users`` (sorted by name)."""
    data = {"users": {
        u.name: {"password": u.password_hash, "admin": u.admin, "display_name": u.display_name}
        for u in sorted(users.values(), key=lambda u: u.name)}}
    header = ("# ril_dash users: edit with 'ril-dash users PROJECT_DIR add|remove|passwd|list'.\n"
              "# Passwords are stored as salted hashes only.\n")
    return header + yaml.safe_dump(data, sort_keys=True, allow_unicode=True,
                                   default_flow_style=False)


# -- the file ------------------------------------------------------------------------------


class UsersFile:
    """A users file on disk; every change is locked, validated and written atomically (0600)."""

    def __init__(self, path: str | os.PathLike, lock_timeout: float = LOCK_TIMEOUT):
        self.path = Path(path)
        self.lock_timeout = lock_timeout

    @classmethod
    def for_project(cls, project_dir: str | os.PathLike) -> UsersFile:
        return cls(users_path(project_dir))

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> dict[str, User]:
        """All users by name; an absent file has none. Raises :class:`InvalidUsers`."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except UnicodeDecodeError:
            raise InvalidUsers(f"{self.path}: not a UTF-8 text file") from None
        except OSError as exc:
            raise InvalidUsers(f"cannot read {self.path}: {exc.strerror or exc}") from None
        return parse_users(text, str(self.path))

    def list(self) -> list[tuple[str, bool, str]]:
        """``[(name, admin, display_name)]`` sorted by name."""
        return [(u.name, u.admin, u.display_name)
                for u in sorted(self.load().values(), key=lambda u: u.name)]

    def get(self, name: str) -> User | None:
        return self.load().get(name)

    def verify(self, name: str, password: str) -> bool:
        """True when ``password`` is ``name``'s password (constant-time; unknown user → False).

        An unknown user still costs one hash check, so timing does not reveal who exists.
        """
        try:
            user = self.load().get(name) if isinstance(name, str) else None
        except InvalidUsers:
            user = None
        if not isinstance(password, str):
            password = ""
        if user is None:
            verify_password(_dummy(), password)
            return False
        return verify_password(user.password_hash, password)

    # -- changes --

    def add(self, name: str, password: str, admin: bool = False,
            display_name: str | None = None) -> User:
        """Add a new user; refuses an existing name, a bad name or a weak password."""
        check_name(name)
        check_password_policy(name, password)
        display_name = name if display_name is None else display_name
        problem = display_name_problem(display_name)
        if problem:
            raise InvalidUsers(f"user {name}: {problem}")
        password_hash = hash_password(password)  # outside the lock: it is slow
        user = User(name, password_hash, bool(admin), display_name)

        def change(users: dict[str, User]) -> None:
            if name in users:
                raise InvalidUsers(f"user {name} already exists in {self.path}; use "
                                   f"'passwd' to change its password or 'remove' it first")
            users[name] = user

        self._update(change)
        return user

    def remove(self, name: str) -> None:
        """Remove a user; refuses an unknown name."""

        def change(users: dict[str, User]) -> None:
            if name not in users:
                raise InvalidUsers(f"no user {name!r} in {self.path}")
            del users[name]

        self._update(change)

    def set_password(self, name: str, password: str) -> None:
        """Replace ``name``'s password (policy checked, stored hashed)."""
        if not isinstance(name, str):
            raise InvalidUsers("invalid user name")
        check_password_policy(name, password)
        password_hash = hash_password(password)

        def change(users: dict[str, User]) -> None:
            if name not in users:
                raise InvalidUsers(f"no user {name!r} in {self.path}")
            old = users[name]
            users[name] = User(old.name, password_hash, old.admin, old.display_name)

        self._update(change)

    def _update(self, change) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidUsers(f"cannot create {self.path.parent}: "
                               f"{exc.strerror or exc}") from None
        try:
            with FileLock(str(self.lock_path), timeout=self.lock_timeout):
                users = self.load()
                change(users)
                self._write(dump_users(users))
        except Timeout:
            raise InvalidUsers(f"{self.path} is locked by another change (lock file "
                               f"{self.lock_path}); try again") from None

    def _write(self, text: str) -> None:
        try:
            temp = temp_path_for(self.path)
        except OSError as exc:
            raise InvalidUsers(f"cannot write {self.path}: {exc.strerror or exc}") from None
        try:
            os.chmod(temp, FILE_MODE)
            with open(temp, "w", encoding="utf-8") as fh:
                fh.write(text)
            commit_temp(temp, self.path)
        except OSError as exc:
            Path(temp).unlink(missing_ok=True)
            raise InvalidUsers(f"cannot write {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


# -- command line (``ril-dash users``) ------------------------------------------------------


def read_password(name: str, from_stdin: bool, confirm: bool = True) -> str:
    """Read a password from stdin (one line) or, interactively, twice with ``getpass``.

    Nothing read is ever echoed or included in a message.
    """
    import getpass
    import sys

    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InvalidUsers("--password-stdin was given but stdin is empty; pipe the "
                               "password as one line")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InvalidUsers("no terminal to ask the password on; pipe it and add "
                           "--password-stdin")
    try:
        password = getpass.getpass(f"Password for {name}: ")
        if confirm and getpass.getpass(f"Repeat the password for {name}: ") != password:
            raise InvalidUsers("the two passwords differ; nothing was changed")
    except (EOFError, KeyboardInterrupt):
        raise InvalidUsers("no password given; nothing was changed") from None
    return password
