"""Password hashes with the standard library: werkzeug's hashes still verify, bad ones never raise."""

from __future__ import annotations

import pytest
from werkzeug.security import check_password_hash, generate_password_hash  # test-only

from ril_dash.project.passwords import hash_password, is_valid_hash, verify_password
from ril_dash.project.users import UsersFile, users_path

PASSWORD = "Grüne Äpfel 🍏 $:"  # non-ASCII and the format's separators


@pytest.mark.parametrize("method", ["scrypt", "scrypt:16384:8:2", "pbkdf2:sha256:1000",
                                    "pbkdf2:sha512:2000"])
def test_hashes_written_by_werkzeug_verify(method):
    stored = generate_password_hash(PASSWORD, method=method)
    assert is_valid_hash(stored)
    assert verify_password(stored, PASSWORD) is True
    assert verify_password(stored, PASSWORD[:-1]) is False
    assert verify_password(stored, "") is False


def test_werkzeug_default_pbkdf2_verifies():
    stored = generate_password_hash("correct horse", method="pbkdf2")  # 1,000,000 iterations
    assert stored.startswith("pbkdf2:sha256:")
    assert verify_password(stored, "correct horse") and not verify_password(stored, "wrong")


def test_new_hashes_keep_werkzeugs_default_format_and_verify_both_ways():
    stored = hash_password(PASSWORD)
    method, salt, digest = stored.split("$")
    assert method == "scrypt:32768:8:1" and len(salt) == 16 and salt.isalnum()
    assert len(digest) == 128 and int(digest, 16) >= 0
    assert verify_password(stored, PASSWORD) and not verify_password(stored, PASSWORD.upper())
    assert check_password_hash(stored, PASSWORD) and not check_password_hash(stored, "x")
    assert hash_password(PASSWORD) != stored  # a new salt each time


def test_the_rfc_7914_scrypt_vector():
    # RFC 7914 section 12: scrypt("password", "NaCl", N=1024, r=8, p=16, dkLen=64)
    stored = ("scrypt:1024:8:16$NaCl$fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b"
              "3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640")
    assert verify_password(stored, "password") and not verify_password(stored, "password ")


GOOD = "pbkdf2:sha256:1000$abcdefgh$" + "0" * 64


@pytest.mark.parametrize("stored", [
    "", "hunter22", "$$", "scrypt", "scrypt$salt$00", "scrypt:32768:8$salt$00",
    "scrypt:32768:8:1:9$salt$00", "scrypt:3:8:1$salt$00", "scrypt:0:8:1$salt$00",
    "scrypt:32768:x:1$salt$00", "scrypt:-32768:8:1$salt$00", "scrypt:1048576:64:16$salt$00",
    "pbkdf2$salt$00", "pbkdf2:sha256$salt$00", "pbkdf2:md5:1000$salt$00",
    "pbkdf2:sha256:0$salt$00", "pbkdf2:sha256:99999999999$salt$00", "pbkdf2:sha256:1000$$00",
    "pbkdf2:sha256:1000$salt$", "pbkdf2:sha256:1000$salt$0G", "pbkdf2:sha256:1000$salt$AB",
    "pbkdf2:sha256:1000$salt$00$00", "bcrypt:12$salt$00", "sha1$salt$00",
    "pbkdf2:sha256:1000$salt$ü0", None, 42, b"pbkdf2:sha256:1000$salt$00",
])
def test_malformed_hashes_return_false_and_never_raise(stored):
    assert is_valid_hash(stored) is False
    assert verify_password(stored, "password") is False


def test_odd_passwords_return_false_and_never_raise():
    assert verify_password(GOOD, "\ud800") is False  # cannot be UTF-8 encoded
    assert verify_password(GOOD, None) is False
    assert verify_password(GOOD, b"bytes") is False


def test_a_users_file_written_with_werkzeug_hashes_still_logs_in(tmp_path):
    path = users_path(tmp_path)
    path.write_text(
        f"users:\n  ana:\n    password: '{generate_password_hash('ana password 1')}'\n"
        f"    admin: true\n  bob:\n    password: "
        f"'{generate_password_hash('bob password 2', method='pbkdf2:sha256:5000')}'\n")
    users = UsersFile(path)
    assert users.verify("ana", "ana password 1") and users.verify("bob", "bob password 2")
    assert not users.verify("ana", "bob password 2") and not users.verify("bob", "ana password 1")
    users.set_password("bob", "bob password 3")
    assert users.get("bob").password_hash.startswith("scrypt:32768:8:1$")
    assert users.verify("bob", "bob password 3") and not users.verify("bob", "bob password 2")
    assert check_password_hash(users.get("bob").password_hash, "bob password 3")
