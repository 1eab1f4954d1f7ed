"""A change saved while the audit log cannot be written is answered as saved, with a warning.

A real server edits a series while its project's ``audit.log.jsonl`` is a folder (so every
append fails, as on a full disk): the edit must answer 200 with the warning "saved; the audit
log could not be written", the exact voxels must be in the store, and the administrators' page
header must show the notice until an audit line is written again.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_annotation_api import (  # noqa: F401  (server: the module's fixture)
    PATH1,
    PATH2,
    brush_mask,
    edit_body,
    post,
    saved,
    server,
)

from ril_dash.project.audit import AuditLog
from ril_dash.project.audit_trouble import NOTICE_FILE, WARNING

pytestmark = pytest.mark.browser


def _layout(server) -> str:
    r = server.http.get(f"{server.url}/_dash-layout", timeout=60)
    assert r.status_code == 200
    return r.text


def test_edit_is_saved_and_answered_with_a_warning_when_the_audit_log_is_unwritable(server):
    project = server.store.root.parent
    log_path = project / "audit.log.jsonl"
    log_path.unlink(missing_ok=True)
    log_path.mkdir()  # every append now fails (IsADirectoryError), as on a full disk
    assert "audit log" not in _layout(server)

    r = server.http.post(f"{server.url}/ril/api/edit", json=edit_body(0, path=PATH1),
                         timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["changed"] is True and body["version"] == 1
    assert body["warning"] == WARNING
    assert r.headers["X-Ril-Warning"] == WARNING
    state, got = saved(server)
    _region, expected = brush_mask(PATH1, 3, "axial", 4)
    assert state.version == 1 and np.array_equal(got, expected)
    notice = project / NOTICE_FILE
    assert notice.is_file() and "Is a directory" in notice.read_text()
    assert oct(notice.stat().st_mode & 0o777) == "0o600"
    layout = _layout(server)
    assert "The audit log (audit.log.jsonl in the project folder) could not be written" \
        in layout and "Changes are saved but not audited" in layout

    # a read is not a change: no warning
    r = server.http.get(f"{server.url}/ril/api/versions", params={"series": "P1/ct.nii.gz"},
                        timeout=60)
    assert r.status_code == 200 and "X-Ril-Warning" not in r.headers

    log_path.rmdir()  # writable again: the next change is audited, the notice goes away
    status, body = post(server, "edit", edit_body(1, path=PATH2, brush=2))
    assert status == 200 and body["version"] == 2 and "warning" not in body
    assert not notice.exists()
    assert "could not be written" not in _layout(server)
    entries = AuditLog(log_path).read(action="save")
    assert [e["detail"]["version"] for e in entries] == [2]

