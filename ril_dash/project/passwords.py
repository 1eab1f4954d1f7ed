"""Salted password hashes made and checked with the standard library only.

A stored hash is one line of text in werkzeug's format, so users files written by earlier
versions of ril_dash (which used :mod:`werkzeug.security`) keep working, and either code reads
what the other wrote::

    scrypt:N:r:p$SALT$HEX         hashlib.scrypt(password, salt=SALT, n=N, r=r, p=p), 64 bytes
    pbkdf2:NAME:ITERATIONS$SALT$HEX   hashlib.pbkdf2_hmac(NAME, password, SALT, ITERATIONS)

``SALT`` is a text used as its UTF-8 bytes (it is not decoded from hex or base64), the password
is UTF-8 too, and ``HEX`` is the lower-case hex digest. New hashes are
``scrypt:32768:8:1$<16 random letters and digits from secrets>$<128 hex digits>``, exactly what
werkzeug's ``generate_password_hash`` writes by default. Digests are compared in constant time
(:func:`hmac.compare_digest`).

A malformed hash never raises: :func:`verify_password` returns False. Parameters are bounded
(scrypt at most 1 GiB of work memory, PBKDF2 at most 10 million iterations) so a hand-edited
users file cannot make a login hang.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

__all__ = ["hash_password", "is_valid_hash", "verify_password"]

SCRYPT_PARAMS = (32768, 8, 1)  # n, r, p of new hashes
SALT_LENGTH = 16
SALT_ALPHABET = string.ascii_letters + string.digits
SCRYPT_KEY_BYTES = 64
PBKDF2_HASHES = ("sha1", "sha224", "sha256", "sha384", "sha512")
MAX_SCRYPT_MEMORY = 1 << 30  # 128 * n * r * p bytes
MAX_PBKDF2_ITERATIONS = 10_000_000

_HEX_RE = re.compile(r"[0-9a-f]+")
_INT_RE = re.compile(r"[1-9][0-9]{0,9}")


def _parse(stored: object) -> tuple[str, tuple, str, str] | None:
    """``(method, params, salt, hex digest)`` of a stored hash, or None if it is malformed."""
    if not isinstance(stored, str):
        return None
    parts = stored.split("$")
    if len(parts) != 3 or not parts[1] or not _HEX_RE.fullmatch(parts[2]):
        return None
    method, *args = parts[0].split(":")
    salt, digest = parts[1], parts[2]
    if method == "scrypt" and len(args) == 3 and all(_INT_RE.fullmatch(a) for a in args):
        n, r, p = map(int, args)
        if n > 1 and n & (n - 1) == 0 and 128 * n * r * p <= MAX_SCRYPT_MEMORY:
            return method, (n, r, p), salt, digest
    if (method == "pbkdf2" and len(args) == 2 and args[0] in PBKDF2_HASHES
            and _INT_RE.fullmatch(args[1]) and int(args[1]) <= MAX_PBKDF2_ITERATIONS):
        return method, (args[0], int(args[1])), salt, digest
    return None


def _digest(method: str, params: tuple, salt: str, password: str) -> str:
    secret, salt_bytes = password.encode("utf-8"), salt.encode("utf-8")
    if method == "scrypt":
        n, r, p = params
        return hashlib.scrypt(secret, salt=salt_bytes, n=n, r=r, p=p,
                              maxmem=2 * 128 * n * r * p, dklen=SCRYPT_KEY_BYTES).hex()
    name, iterations = params
    return hashlib.pbkdf2_hmac(name, secret, salt_bytes, iterations).hex()


def is_valid_hash(stored: object) -> bool:
    """Whether ``stored`` is a hash :func:`verify_password` can check (format and bounds).

    Examples
    --------
    >>> is_valid_hash("scrypt:32768:8:1$abcd$" + "0" * 128)
    True
    >>> [is_valid_hash(h) for h in ("hunter22", "scrypt:3:8:1$s$00", "pbkdf2:md4:1000$s$00",
    ...                             "pbkdf2:sha256:1000$$00", "pbkdf2:sha256:1000$s$0G")]
    [False, False, False, False, False]
    """
    return _parse(stored) is not None


def hash_password(password: str) -> str:
    """A new salted scrypt hash of ``password`` (werkzeug's default format).

    Examples
    --------
    >>> stored = hash_password("correct horse")
    >>> stored.startswith("scrypt:32768:8:1$"), len(stored.split("$")[1]), is_valid_hash(stored)
    (True, 16, True)
    >>> verify_password(stored, "correct horse"), verify_password(stored, "Correct horse")
    (True, False)
    """
    salt = "".join(secrets.choice(SALT_ALPHABET) for _ in range(SALT_LENGTH))
    params = SCRYPT_PARAMS
    return f"scrypt:{':'.join(map(str, params))}${salt}${_digest('scrypt', params, salt, password)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` matches the stored hash; False (never an exception) when the hash
    is malformed or the password is not text.

    Examples
    --------
    >>> verify_password("pbkdf2:sha256:1000$salt$" + "ab" * 32, "anything")
    False
    >>> verify_password("not a hash", "anything")
    False
    """
    parsed = _parse(stored)
    if parsed is None or not isinstance(password, str):
        return False
    method, params, salt, digest = parsed
    try:
        computed = _digest(method, params, salt, password)
    except (ValueError, UnicodeError, MemoryError):  # e.g. a lone surrogate in the password
        return False
    return hmac.compare_digest(computed, digest)
