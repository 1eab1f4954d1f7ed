"""Domain errors shared by every layer.

Each error carries a message meant for the user: it says what is wrong, where, and what to do.
The UI turns any :class:`RilDashError` into a visible message; the CLI prints it and exits with
status 2. Nothing here imports anything beyond the standard library.
"""


class RilDashError(Exception):
    """Base class of every error that is shown to a user."""


class InvalidProject(RilDashError):
    """project.yaml (or a file it names) is missing, malformed or inconsistent."""


class InvalidImage(RilDashError):
    """An image file cannot be shown: corrupt, truncated, not NIfTI, unsupported dimensions."""


class SeriesNotFound(RilDashError):
    """A series id that is not part of the project (unknown, or trying to escape it)."""


class VersionConflict(RilDashError):
    """A write was based on an annotation version that is no longer the latest one."""


class EditRefused(RilDashError):
    """An edit that the rules forbid: a locked ROI, a region that is not enclosed, a bad shape."""


class StorageError(RilDashError):
    """The annotation store could not be written (disk full, permissions); nothing was changed."""


class DamagedAnnotations(StorageError):
    """A version file of a series' annotations cannot be read (a disk fault, a truncated copy):
    the series is shown read-only as of its last readable version until an admin repairs it.
    ``file`` names the damaged file (relative to the annotation folder), ``version`` its number."""

    def __init__(self, message: str, *, file: str = "", version: int = 0) -> None:
        super().__init__(message)
        self.file, self.version = file, version


class ExportError(RilDashError):
    """An export that cannot be carried out (an unsafe or unwritable output folder)."""


class ImportRefused(RilDashError):
    """Masks that cannot be imported: wrong geometry, unknown values or ROIs, unreadable files."""


class LockHeld(RilDashError):
    """A series is being edited by someone else (another user, host or server process)."""


class InvalidWorkflow(RilDashError):
    """A workflow description (``workflow:`` in project.yaml or its own file) is malformed."""


class TransitionNotAllowed(RilDashError):
    """A workflow action that this user may not take on this series now (says what they may do)."""


class InvalidUsers(RilDashError):
    """The users file is malformed, or a user change is refused (duplicate, weak password)."""


class PermissionDenied(RilDashError):
    """The logged-in user has no right to do this (to this series); says who may."""


class NotLoggedIn(RilDashError):
    """A request without a valid session on a server that requires logins."""


class PluginError(RilDashError):
    """A model bundle that cannot be used: a bad manifest, a missing or altered model file, a
    model file refused by the safety scan, outputs that do not fit the mapping. Names the bundle."""


class ModelRunError(RilDashError):
    """A model run that failed: the model raised, returned NaN or the wrong shape, or the model
    worker stopped. Names the bundle; nothing was written."""
