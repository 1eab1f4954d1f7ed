"""The ``ril-dash`` command line, run as a real ``python -m ril_dash`` subprocess.

Every error a user can fix ends with exit status 2 and one clear message on stderr, never a
traceback. No test here starts a server that keeps running: each command fails (or finishes)
before it would serve.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from support import tree_digest  # noqa: E402  (tests/support.py)

import ril_dash
from ril_dash.project.project import Project

SERIES = ["P001/ST1/arterial.nii.gz", "P001/ST1/venous.nii.gz", "P2/ST1/t1.nii"]


def run_cli(*args, home: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if home is not None:
        env["RIL_DASH_HOME"] = str(home)
    result = subprocess.run([sys.executable, "-m", "ril_dash", *map(str, args)],
                            capture_output=True, text=True, env=env, timeout=timeout,
                            check=False)
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    return result


def assert_user_error(result: subprocess.CompletedProcess, *words: str) -> str:
    """Exit status 2 and a one-line ``ril-dash: error: …`` message containing ``words``."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    message = result.stderr.strip()
    assert message.startswith("ril-dash: error: ") or "usage: ril-dash" in message, message
    for word in words:
        assert word in message, (word, message)
    return message


@pytest.fixture
def images(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    for i, rel in enumerate(SERIES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        data = np.full((6, 5, 4), i, np.int16)
        nib.save(nib.Nifti1Image(data, np.diag([1.0, 1.0, 3.0, 1.0])), root / rel)
    return root


@pytest.fixture
def project(tmp_path: Path, images: Path) -> Path:
    result = run_cli("init", tmp_path / "project", "--images", images)
    assert result.returncode == 0, result.stderr
    return tmp_path / "project"


# ---- help ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command, words", [
    ([], ["usage: ril-dash", "serve", "init", "demo", "--host", "--port", "--version",
          "demo project"]),
    (["serve"], ["usage: ril-dash serve", "PROJECT_DIR", "project.yaml", "--host", "--port"]),
    (["init"], ["usage: ril-dash init", "PROJECT_DIR", "--images", "--annotations", "--name",
                "never written"]),
    (["demo"], ["usage: ril-dash demo", "--host", "--port", "demo project"]),
], ids=["main", "serve", "init", "demo"])
def test_help_describes_the_options(command, words):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert result.stderr == ""
    text = " ".join(result.stdout.split())  # argparse wraps lines
    for word in words:
        assert word in text, (word, result.stdout)


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ril_dash {ril_dash.__version__}"


# ---- init ------------------------------------------------------------------------------------
def test_init_writes_a_project_that_opens(tmp_path, images):
    before = tree_digest(images)
    result = run_cli("init", tmp_path / "project", "--images", images, "--name", "Liver study")
    assert result.returncode == 0, result.stderr
    target = tmp_path / "project" / "project.yaml"
    assert f"Created {target} with 3 series" in result.stdout
    assert "ril-dash serve" in result.stdout
    opened = Project.open(tmp_path / "project")
    assert opened.config.name == "Liver study"
    assert sorted(s.id for s in opened.series) == sorted(SERIES)
    assert (tmp_path / "project" / "annotations").is_dir()
    assert tree_digest(images) == before  # nothing was written inside the images folder


def test_init_refuses_to_overwrite_a_project(project, images):
    text = (project / "project.yaml").read_bytes()
    result = run_cli("init", project, "--images", images)
    assert_user_error(result, str(project / "project.yaml"), "already exists")
    assert (project / "project.yaml").read_bytes() == text


def test_init_with_a_missing_images_folder(tmp_path):
    missing = tmp_path / "missing"
    result = run_cli("init", tmp_path / "project", "--images", missing)
    assert_user_error(result, str(missing), "does not exist", "--images")
    assert not (tmp_path / "project").exists()


def test_init_without_images_is_a_usage_error(tmp_path):
    result = run_cli("init", tmp_path / "project")
    assert_user_error(result, "--images")


# ---- serve: errors the user can fix ----------------------------------------------------------
def test_serve_refuses_an_unknown_key_naming_line_and_key(project):
    yaml_path = project / "project.yaml"
    lines = yaml_path.read_text().splitlines()
    lines.insert(3, "windoww: 40")  # becomes line 4
    yaml_path.write_text("\n".join(lines) + "\n")
    message = assert_user_error(run_cli("serve", project), str(yaml_path), "line 4",
                                "'windoww'", "unknown key")
    assert "allowed keys" in message


def test_serve_with_a_missing_images_folder(tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "project.yaml").write_text("name: x\nimages: ../gone\n")
    assert_user_error(run_cli("serve", tmp_path / "project"), str(tmp_path / "gone"),
                      "does not exist", "line 2")


def test_serve_without_a_project(tmp_path):
    assert_user_error(run_cli("serve", tmp_path / "nowhere"), str(tmp_path / "nowhere"),
                      "does not exist", "ril-dash init")
    assert_user_error(run_cli("serve", tmp_path), "no project.yaml", "ril-dash init")


def test_serve_on_a_port_in_use(project):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        message = assert_user_error(run_cli("serve", project, "--port", port), f":{port}",
                                    "port")
    assert "--port" in message  # says what to do


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.org"])
def test_serve_refuses_a_non_loopback_host(project, host):
    message = assert_user_error(run_cli("serve", project, "--host", host), f"serve on {host}")
    assert "127.0.0.1" in message


def test_demo_refuses_a_non_loopback_host(demo_home):
    assert_user_error(run_cli("demo", "--host", "0.0.0.0", home=demo_home), "0.0.0.0")
    assert_user_error(run_cli("--host", "0.0.0.0", home=demo_home), "0.0.0.0")


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_serve_refuses_a_port_out_of_range(project, port):
    assert_user_error(run_cli("serve", project, "--port", port), "--port", "65535")


def test_serve_refuses_a_non_numeric_port(project):
    assert_user_error(run_cli("serve", project, "--port", "http"), "--port", "'http'")


@pytest.mark.parametrize("option, words", [(["--host", "0.0.0.0"], ["serve on 0.0.0.0"]),
                                           (["--port", "0"], ["--port", "65535"])],
                         ids=["host", "port"])
def test_options_before_the_command_are_not_ignored(tmp_path, option, words):
    # tmp_path holds no project: if the option were ignored this fails on the project, fast,
    # instead of starting a server
    assert_user_error(run_cli(*option, "serve", tmp_path), *words)
