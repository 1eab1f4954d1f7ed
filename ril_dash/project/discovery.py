"""Series discovery: find the NIfTI files under a project's images folder, fast and read-only.

The walk uses :func:`os.scandir` and never opens a file, so 10,000 series are listed in a few
tens of milliseconds. A series id is its posix path relative to the images root, extension
included (``P001/ST1/arterial.nii.gz``); it is the only handle the UI passes around, and
:func:`resolve_series_path` refuses any id that could escape the images root.

Rules: ``.nii`` and ``.nii.gz`` (any case); hidden files and folders (``.x``, ``._x``) are
skipped; symbolic links are followed only when they resolve inside the images root; results are
in natural order (``P2`` before ``P10``).
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ril_dash.errors import SeriesNotFound

NIFTI_SUFFIXES = (".nii.gz", ".nii")
_DIGITS = re.compile(r"(\d+)")


@dataclass(frozen=True)
class SeriesRecord:
    """One series file: id (relative posix path), display name, parent folders, size, mtime."""

    id: str
    name: str
    levels: tuple[str, ...]
    size: int
    mtime: float


def nifti_suffix(filename: str) -> str | None:
    """Return the NIfTI suffix of ``filename`` as written (``.nii.gz``/``.nii``), else None.

    Examples
    --------
    >>> nifti_suffix("a.NII.GZ"), nifti_suffix("b.nii"), nifti_suffix("c.txt")
    ('.NII.GZ', '.nii', None)
    """
    lower = filename.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[-len(suffix):]
    return None


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value and ignores case ("P2" < "P10").

    Examples
    --------
    >>> sorted(["P10", "p2", "P1"], key=natural_key)
    ['P1', 'p2', 'P10']
    """
    return (tuple(map(_part_key, text.split("/"))), text)


@functools.lru_cache(maxsize=65536)
def _part_key(part: str) -> tuple:
    """:func:`natural_key` of one folder or file name (names repeat: P1 in every series of P1,
    ST1 in most patients; cached)."""
    return tuple((0, int(tok), "") if tok.isdigit() else (1, 0, tok.casefold())
                 for tok in _DIGITS.split(part) if tok)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def discover_series(images_root: str | os.PathLike) -> list[SeriesRecord]:
    """List every NIfTI series under ``images_root``, in natural order.

    Parameters
    ----------
    images_root : path-like
        The project's images folder. Nothing in it is opened or written.

    Returns
    -------
    list of SeriesRecord
        Empty if the folder holds no series.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> for rel in ["P10/a.nii.gz", "P2/b.NII", "P2/.hidden.nii", "notes.txt"]:
    ...     (root / rel).parent.mkdir(parents=True, exist_ok=True)
    ...     _ = (root / rel).write_bytes(b"x")
    >>> [(r.id, r.name, r.levels) for r in discover_series(root)]
    [('P2/b.NII', 'b', ('P2',)), ('P10/a.nii.gz', 'a', ('P10',))]
    """
    return scan_series(images_root)[0]


def scan_series(images_root: str | os.PathLike,
                index: dict | None = None) -> tuple[list[SeriesRecord], dict]:
    """:func:`discover_series`, reusing the listings of an earlier scan where a folder has not
    changed since (same modification time): return the series and the new listings.

    ``index`` maps a folder's path to ``[mtime_ns, files, sub-folders]`` (``files``:
    ``[name, size, mtime]``), as returned by an earlier call (JSON-safe, so it can be kept on
    disk). A folder holding symbolic links is always read again (a link's target can change
    without its folder changing). An entry that does not fit is ignored: the folder is read.
    Files changed in place (same name) keep the size of the earlier scan until their folder
    changes; only the grid's Size column shows it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "P1").mkdir(); _ = (root / "P1" / "a.nii").write_bytes(b"x")
    >>> series, index = scan_series(root)
    >>> again, same = scan_series(root, index)
    >>> [r.id for r in again] == [r.id for r in series] == ["P1/a.nii"] and same == index
    True
    """
    root = os.path.realpath(os.fspath(images_root))
    index = index if isinstance(index, dict) else {}
    new_index: dict = {}
    records: list[SeriesRecord] = []
    clash = False  # two names of one folder equal but for case: sort everything at the end

    def children(folder: str, real_folder: str) -> list[tuple] | None:
        """The folder's files ``(name, size, mtime)`` and sub-folders ``(name, path, real)``
        in natural order, from the index when the folder has not changed."""
        nonlocal clash
        try:
            mtime_ns = os.stat(folder).st_mtime_ns
        except OSError:
            return None  # unreadable folder: skip it, never fail the whole listing
        listing = _cached_listing(index.get(folder), mtime_ns, folder, real_folder)
        if listing is None:
            listing = _list_folder(folder, real_folder, root)
            if listing is None:
                return None
            if listing[2]:
                new_index[folder] = [mtime_ns, listing[0], [d[0] for d in listing[1]]]
        else:
            new_index[folder] = index[folder]
        keyed = sorted(((_part_key(c[0]), c[0]), c) for c in listing[0] + listing[1])
        clash = clash or any(a[0][0] == b[0][0] for a, b in zip(keyed, keyed[1:]))
        return [c for _, c in keyed]

    # walked depth first, each folder's entries in natural order: the series come out sorted
    # (folder as walked, folder names below root, real paths of the folders on the way down)
    stack = [(iter(children(root, root) or []), (), (root,))]
    while stack:
        entries, levels, chain = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        name = entry[0]
        if isinstance(entry[1], str):  # a folder: (name, path as walked, real path)
            if entry[2] not in chain:  # a link back to a folder on the way down: a cycle
                inside = children(entry[1], entry[2])
                if inside is not None:
                    stack.append((iter(inside), levels + (name,), chain + (entry[2],)))
            continue
        records.append(SeriesRecord("/".join(levels + (name,)),
                                    name[: -len(nifti_suffix(name))], levels, entry[1],
                                    entry[2]))
    if clash:
        records.sort(key=lambda r: natural_key(r.id))
    return records, new_index


def _cached_listing(entry, mtime_ns: int, folder: str, real_folder: str):
    """The listing of ``folder`` kept in an index entry, if it is one and still current."""
    try:
        stored, files, folders = entry
        if stored != mtime_ns:
            return None
        files = [(str(n), int(size), float(mtime)) for n, size, mtime in files]
        if any(nifti_suffix(n) is None or "/" in n for n, _, _ in files):
            return None
        return (files, [(str(n), os.path.join(folder, n), os.path.join(real_folder, n))
                        for n in folders if "/" not in str(n) and n not in ("", ".", "..")],
                True)
    except (TypeError, ValueError):
        return None


def _list_folder(folder: str, real_folder: str, root: str):
    """``(files, sub-folders, cacheable)`` of one folder: NIfTI files as ``(name, size,
    mtime)``, folders as ``(name, path as walked, real path)``; None if it cannot be read."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return None
    files, folders, cacheable = [], [], True
    for entry in entries:
        name = entry.name
        if name.startswith("."):
            continue
        try:
            if entry.is_symlink():
                cacheable = False
                real = os.path.realpath(entry.path)
                if not _inside(real, root):
                    continue
                is_dir = os.path.isdir(real)
            else:
                real = os.path.join(real_folder, name)
                is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir:
                folders.append((name, entry.path, real))
                continue
            if nifti_suffix(name) is None or not entry.is_file():
                continue
            stat = entry.stat()
        except OSError:
            continue  # vanished or broken entry
        files.append((name, stat.st_size, stat.st_mtime))
    return files, folders, cacheable


def check_series_id(series_id: object) -> str:
    """Return ``series_id`` if it is a well-formed relative posix id, else raise SeriesNotFound.

    Examples
    --------
    >>> check_series_id("P1/a.nii.gz")
    'P1/a.nii.gz'
    >>> check_series_id("../etc/passwd")
    Traceback (most recent call last):
    ...
    ril_dash.errors.SeriesNotFound: '../etc/passwd' is not a valid series id ...
    """
    shown = repr(series_id)[:120]
    problem = None
    if not isinstance(series_id, str) or not series_id:
        problem = "it is empty or not text"
    elif "\x00" in series_id or "\\" in series_id:
        problem = "it contains a backslash or NUL character"
    elif series_id.startswith("/") or re.match(r"^[A-Za-z]:", series_id):
        problem = "it is an absolute path"
    elif any(part in ("", ".", "..") for part in series_id.split("/")):
        problem = "it contains '..', '.' or an empty folder name"
    elif nifti_suffix(PurePosixPath(series_id).name) is None:
        problem = "it is not a .nii or .nii.gz file"
    if problem:
        raise SeriesNotFound(f"{shown} is not a valid series id ({problem}); series ids are "
                             f"paths relative to the images folder, e.g. P001/ST1/t1.nii.gz")
    return series_id


def resolve_series_path(images_root: str | os.PathLike, series_id: str) -> Path:
    """Return the absolute path of an existing series, refusing ids that escape the root.

    Raises
    ------
    SeriesNotFound
        For ids with ``..``, absolute paths, backslashes, NUL, a non-NIfTI name, ids that
        resolve (through symlinks) outside ``images_root``, or files that do not exist. The
        message names the series, never the folder (it is shown to users).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (root / "a.nii").write_bytes(b"x")
    >>> resolve_series_path(root, "a.nii") == root.resolve() / "a.nii"
    True
    """
    check_series_id(series_id)
    path = Path(images_root).resolve() / series_id
    if not check_inside_images(images_root, series_id).is_file():
        raise SeriesNotFound(f"series {series_id!r} does not exist in the images folder; "
                             f"rescan the project if files were moved")
    return path


def check_inside_images(images_root: str | os.PathLike, series_id: str) -> Path:
    """Return the real path of series ``series_id``, or raise SeriesNotFound if it lies outside.

    Call it each time a series file is opened, not only at discovery: a file replaced later by
    a symbolic link to a file outside ``images_root`` must not be read. The message names the
    series, never the folders (it is shown to users).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root, outside = pathlib.Path(tempfile.mkdtemp()), pathlib.Path(tempfile.mkdtemp())
    >>> _ = (outside / "b.nii").write_bytes(b"x")
    >>> (root / "a.nii").symlink_to(outside / "b.nii")
    >>> check_inside_images(root, "a.nii")
    Traceback (most recent call last):
    ...
    ril_dash.errors.SeriesNotFound: series 'a.nii' now points outside the images folder ...
    """
    root = Path(images_root).resolve()
    real = (root / series_id).resolve()
    if not _inside(str(real), str(root)):
        raise SeriesNotFound(f"series {series_id!r} now points outside the images folder (a "
                             f"symbolic link?); it cannot be opened. Replace the link by the "
                             f"image file itself, then rescan the project")
    return real


def build_folder_tree(records: list[SeriesRecord]) -> dict[str, dict]:
    """Map every folder path ('' = root) to its child folders and recursive series count.

    Examples
    --------
    >>> recs = [SeriesRecord("P1/S1/a.nii", "a", ("P1", "S1"), 1, 0.0),
    ...         SeriesRecord("P1/b.nii", "b", ("P1",), 1, 0.0),
    ...         SeriesRecord("c.nii", "c", (), 1, 0.0)]
    >>> tree = build_folder_tree(recs)
    >>> tree[""], tree["P1"], tree["P1/S1"]
    ({'children': ['P1'], 'count': 3}, {'children': ['P1/S1'], 'count': 2}, \
{'children': [], 'count': 1})
    """
    counts: dict[str, int] = {"": 0}
    children: dict[str, set[str]] = {"": set()}
    for record in records:
        counts[""] += 1
        parent = ""
        for depth in range(1, len(record.levels) + 1):
            path = "/".join(record.levels[:depth])
            children[parent].add(path)
            children.setdefault(path, set())
            counts[path] = counts.get(path, 0) + 1
            parent = path
    return {path: {"children": sorted(children[path], key=natural_key), "count": counts[path]}
            for path in sorted(counts, key=natural_key)}
