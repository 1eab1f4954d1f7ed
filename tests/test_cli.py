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
from ril_dash.project.users import UsersFile

pytestmark = pytest.mark.slow  # every test runs `python -m ril_dash` as a process

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
    (["serve"], ["usage: ril-dash serve", "PROJECT_DIR", "project.yaml", "--host", "--port",
                 "--login", "--workflow", "--threads", "--secure-cookies", "--lease-seconds"]),
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
def test_serve_beyond_this_computer_needs_a_user(project, host):
    message = assert_user_error(run_cli("serve", project, "--host", host), f"serving on {host}",
                                str(project / "users.yaml"), "holds no users")
    assert f"ril-dash users {project} add NAME --admin" in message


def test_login_needs_a_user_too(project):
    message = assert_user_error(run_cli("serve", project, "--login"), "--login",
                                "holds no users")
    assert f"ril-dash users {project} add NAME --admin" in message


def test_the_users_check_comes_before_binding(project):
    with socket.socket() as sock:  # the port is taken: binding first would complain of it
        sock.bind(("0.0.0.0", 0))
        sock.listen(1)
        port = sock.getsockname()[1]
        message = assert_user_error(run_cli("serve", project, "--host", "0.0.0.0",
                                            "--port", port), "ril-dash users")
    assert "port" not in message


def test_demo_beyond_this_computer_needs_a_user(demo_home):
    for args in (["demo", "--host", "0.0.0.0"], ["--host", "0.0.0.0"]):
        message = assert_user_error(run_cli(*args, home=demo_home), "serving on 0.0.0.0",
                                    "ril-dash users")
        assert str(demo_home / "demo-project") in message


def test_serve_refuses_a_malformed_users_file(project):
    (project / "users.yaml").write_text(
        "users:\n  alice:\n    password: plain-text-password\n")
    assert_user_error(run_cli("serve", project, "--login"), "users.yaml line 3",
                      "users.alice.password", "salted hash")
    (project / "users.yaml").write_text("users:\n  bob:\n    pasword: x\n")
    assert_user_error(run_cli("serve", project, "--host", "0.0.0.0"), "line 3", "'pasword'")


BAD_WORKFLOW = """\
workflow:
  start_pool: analysts
  pools:
    analysts: {users: [ana], rights: [annotate, fly]}
"""


@pytest.mark.parametrize("extra", [[], ["--login"]], ids=["single-user", "logins"])
def test_serve_refuses_a_malformed_workflow(project, tmp_path, extra):
    if extra:
        UsersFile.for_project(project).add("alice", "alice-secret-1", admin=True)
    workflow = tmp_path / "workflow.yaml"
    workflow.write_text(BAD_WORKFLOW)
    assert_user_error(run_cli("serve", project, "--workflow", workflow, *extra),
                      str(workflow), "line 4", "fly")
    assert_user_error(run_cli("serve", project, "--workflow", tmp_path / "missing.yaml"),
                      "missing.yaml", "no such workflow file")


@pytest.mark.parametrize("option, words", [
    (["--threads", "0"], ["--threads", "between 1 and"]),
    (["--lease-seconds", "1"], ["--lease-seconds", "between"]),
    (["--host", ""], ["--host"]),
], ids=["threads", "lease", "host"])
def test_serve_refuses_bad_server_options(project, option, words):
    assert_user_error(run_cli("serve", project, *option), *words)


def test_startup_checks_refuse_a_folder_without_working_locks(project, monkeypatch):
    from ril_dash.cli import CliError, startup_checks
    from ril_dash.project import series_locks
    from ril_dash.settings import Settings

    UsersFile.for_project(project).add("alice", "alice-secret-1", admin=True)
    UsersFile.for_project(project).add("bob", "bob-secret-22")
    opened = Project.open(project)
    settings = Settings(project_dir=project, host="0.0.0.0", login_required=True)
    assert [u.name for u in startup_checks(opened, settings)] == ["alice", "bob"]
    checked = []

    def broken(folder):
        checked.append(Path(folder))
        return f"file locks do not work in {folder}: another process took a lock"

    monkeypatch.setattr(series_locks, "check_locking_works", broken)
    with pytest.raises(CliError) as info:
        startup_checks(opened, settings)
    message = str(info.value)
    assert "file locks do not work" in message and "cannot share this project" in message
    assert "network mounts" in message
    assert checked == [Path(opened.config.annotations)]
    # single-user mode does not need shared locks
    assert startup_checks(opened, Settings(project_dir=project)) == []


def test_wsgi_needs_a_project_and_a_user(project):
    from ril_dash.cli import CliError
    from ril_dash.wsgi import WsgiConfigError, create_wsgi_app, settings_from_env

    with pytest.raises(WsgiConfigError, match="RIL_DASH_PROJECT"):
        create_wsgi_app({})
    with pytest.raises(WsgiConfigError, match="RIL_DASH_SECURE_COOKIES"):
        settings_from_env({"RIL_DASH_PROJECT": str(project), "RIL_DASH_SECURE_COOKIES": "si"})
    settings = settings_from_env({"RIL_DASH_PROJECT": str(project),
                                  "RIL_DASH_WORKFLOW": "/w.yaml",
                                  "RIL_DASH_SECURE_COOKIES": "TRUE",
                                  "RIL_DASH_ALLOWED_HOSTS": " lab.example.org, ,b.example"})
    assert settings.login_required and settings.secure_cookies
    assert settings.allowed_hosts == ("lab.example.org", "b.example")
    assert settings.workflow_file == Path("/w.yaml") and settings.project_dir == project
    with pytest.raises(CliError, match="holds no users"):
        create_wsgi_app({"RIL_DASH_PROJECT": str(project)})


@pytest.mark.parametrize("port", ["0", "65536", "-1"])
def test_serve_refuses_a_port_out_of_range(project, port):
    assert_user_error(run_cli("serve", project, "--port", port), "--port", "65535")


def test_serve_refuses_a_non_numeric_port(project):
    assert_user_error(run_cli("serve", project, "--port", "http"), "--port", "'http'")


@pytest.mark.parametrize("option, words", [(["--threads", "0"], ["--threads"]),
                                           (["--port", "0"], ["--port", "65535"])],
                         ids=["threads", "port"])
def test_options_before_the_command_are_not_ignored(tmp_path, option, words):
    # tmp_path holds no project: if the option were ignored this fails on the project, fast,
    # instead of starting a server
    assert_user_error(run_cli(*option, "serve", tmp_path), *words)


def test_check_port_free_refuses_a_listening_port_not_a_closed_connection():
    import socket

    from ril_dash.cli import CliError, check_port_free

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as waitress listens
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    with pytest.raises(CliError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
        check_port_free("127.0.0.1", port)
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    listener.close()
    accepted.close()  # the server side closes first: its end waits in FIN_WAIT/TIME_WAIT
    client.close()
    check_port_free("127.0.0.1", port)  # a restarted server may listen at once
