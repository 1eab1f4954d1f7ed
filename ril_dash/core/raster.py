"""Rasterise plotly drawn shapes (SVG paths) onto a display slice grid, exactly.

Display pixel ``(row, col)`` has its centre at plotly data coordinates ``x = col, y = row``; no
half-pixel shift is applied anywhere. :func:`rasterize_polygon` gives the same pixels as
``skimage.draw.polygon(rows=y, cols=x, shape)`` (pixel centres inside, on an edge or on a vertex),
and :func:`rasterize_brush` the pixels whose centre lies strictly inside an (elliptical) brush
swept along a polyline — for a single point the same pixels as ``skimage.draw.ellipse``.
Only numpy is used; every function works inside the shape's bounding box.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ril_dash.errors import EditRefused

__all__ = ["MAX_POINTS", "parse_svg_path", "rasterize_brush", "rasterize_polygon"]

MAX_POINTS = 100_000
_CHUNK = 1 << 21  # elements per vectorised batch (bounds temporary memory)
_VERTEX_EPS = 1e-12  # a pixel centre this close to a vertex is on it (as in skimage)
_TOKEN = re.compile(r"\s*(?:([MmLlHhVvZz])|([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))\s*,?")
_ARGS = {"M": 2, "L": 2, "H": 1, "V": 1, "Z": 0}


def _refuse(msg: str):
    raise EditRefused(f"The drawn shape cannot be used: {msg}. Draw it again.")


def _tokens(path: str) -> list:
    out, pos, n = [], 0, len(path)
    while pos < n:
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            if path[pos:].strip(" \t\r\n,") == "":
                break
            _refuse(f"unexpected text {path[pos:pos + 20]!r} in its path")
        out.append(m.group(1) if m.group(1) else float(m.group(2)))
        pos = m.end()
    return out


def parse_svg_path(path: str) -> list[np.ndarray]:
    """Vertices of a plotly shape path, one ``(n, 2)`` float array of ``(x, y)`` per sub-path.

    Understands ``M L H V Z`` and their relative lower-case forms (plotly emits ``M``, ``L``
    and ``Z``). Extra coordinate pairs after ``M`` are line-tos. ``Z`` closes a sub-path
    without repeating its first vertex.

    Raises
    ------
    EditRefused
        Not a string, empty, unknown commands or text, a command without enough numbers,
        non-finite coordinates, or more than :data:`MAX_POINTS` points.

    Examples
    --------
    >>> [p.tolist() for p in parse_svg_path("M12.3,4L5,6L7,8Z")]
    [[[12.3, 4.0], [5.0, 6.0], [7.0, 8.0]]]
    >>> [p.tolist() for p in parse_svg_path("M1,1 h2 v3 l-1,1")]
    [[[1.0, 1.0], [3.0, 1.0], [3.0, 4.0], [2.0, 5.0]]]
    """
    if not isinstance(path, str):
        _refuse("its path is not text")
    if len(path) > 40 * MAX_POINTS:
        _refuse(f"it has more than {MAX_POINTS:,} points")
    tokens = _tokens(path)
    if not tokens:
        _refuse("its path is empty")
    if not isinstance(tokens[0], str) or tokens[0] not in "Mm":
        _refuse("its path does not start with a move-to (M)")
    paths: list[list[tuple[float, float]]] = []
    cur = start = (0.0, 0.0)
    n_points, i, cmd, current = 0, 0, None, None
    while i < len(tokens):
        tok = tokens[i]
        if isinstance(tok, str):
            cmd, i = tok, i + 1
            if cmd in "Zz":
                cur, current = start, None
                continue
        elif cmd is None or cmd in "Zz":
            _refuse("it has numbers without a command")
        k = _ARGS[cmd.upper()]
        args = tokens[i:i + k]
        if len(args) < k or any(isinstance(a, str) for a in args):
            _refuse(f"command {cmd!r} lacks its numbers")
        i += k
        rel = cmd.islower()
        up = cmd.upper()
        if up == "H":
            pt = (args[0] + (cur[0] if rel else 0.0), cur[1])
        elif up == "V":
            pt = (cur[0], args[0] + (cur[1] if rel else 0.0))
        else:
            pt = (args[0] + cur[0], args[1] + cur[1]) if rel else (args[0], args[1])
        if not (math.isfinite(pt[0]) and math.isfinite(pt[1])):
            _refuse("it has non-finite coordinates")
        if up == "M":
            current = [pt]
            paths.append(current)
            start = pt
            cmd = "l" if rel else "L"  # implicit line-tos after a move-to
        else:
            if current is None:  # drawing on after Z: a new sub-path from the start point
                current = [start]
                paths.append(current)
                n_points += 1
            current.append(pt)
        cur = pt
        n_points += 1
        if n_points > MAX_POINTS:
            _refuse(f"it has more than {MAX_POINTS:,} points")
    return [np.asarray(p, dtype=float).reshape(-1, 2) for p in paths]


def _as_points(points_xy) -> np.ndarray:
    pts = np.asarray(points_xy, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        pts = pts.reshape(-1, 2) if pts.size % 2 == 0 and pts.size else None
        if pts is None:
            _refuse("its points are not (x, y) pairs")
    if len(pts) > MAX_POINTS:
        _refuse(f"it has more than {MAX_POINTS:,} points")
    if not np.isfinite(pts).all():
        _refuse("it has non-finite coordinates")
    return pts


def _crossings(xi, yi, xj, yj, start, n, r0, h, w, c0, position):
    """Histogram ``(h, w + 1)`` of edge/row crossings at column positions ``position(x)``."""
    keep = n > 0
    xi, yi, xj, yj, start, n = xi[keep], yi[keep], xj[keep], yj[keep], start[keep], n[keep]
    counts = np.zeros(h * (w + 1), dtype=np.int64)
    ends = np.cumsum(n)
    first = 0
    while first < len(n):  # batches of edges with a bounded number of crossings
        base = ends[first - 1] if first else 0
        last = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), first + 1)
        sel = slice(first, last)
        ne = n[sel]
        edge = np.repeat(np.arange(len(ne)), ne)
        offs = np.arange(int(ne.sum())) - np.repeat(np.cumsum(ne) - ne, ne)
        r = start[sel][edge] + offs
        a_x, a_y, b_x, b_y = xi[sel][edge], yi[sel][edge], xj[sel][edge], yj[sel][edge]
        x_cross = a_x + (b_x - a_x) * (r - a_y) / (b_y - a_y)
        p = np.clip(position(x_cross), c0, c0 + w).astype(np.int64) - c0
        counts += np.bincount((r - r0) * (w + 1) + p, minlength=h * (w + 1))
        first = last
    return counts.reshape(h, w + 1)


def rasterize_polygon(vertices_xy, shape) -> np.ndarray:
    """Pixels of a display slice inside or on a closed polygon, clipped to the image.

    Equal to ``skimage.draw.polygon(rows=y, cols=x, shape=shape)``, which keeps the pixels whose
    centre is inside the polygon (even-odd rule), on one of its edges or on a vertex: a pixel
    is kept when an odd number of edges cross its row strictly to its right (edges spanning the
    half-open row range ``[min, max)``) or strictly to its left (range ``(min, max]``).

    Parameters
    ----------
    vertices_xy : array_like, shape (n, 2)
        ``(x, y)`` = ``(col, row)`` vertices; the polygon is closed implicitly.
    shape : tuple of int
        ``(rows, cols)`` of the slice.

    Returns
    -------
    ndarray of bool, shape ``shape``

    Examples
    --------
    >>> rasterize_polygon([(1, 1), (3, 1), (3, 2), (1, 2)], (4, 5)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    >>> rasterize_polygon([(0.5, 0.5), (2.5, 0.5), (2.5, 1.5), (0.5, 1.5)], (3, 4)).astype(int)
    array([[0, 0, 0, 0],
           [0, 1, 1, 0],
           [0, 0, 0, 0]])
    """
    rows, cols = int(shape[0]), int(shape[1])
    out = np.zeros((rows, cols), dtype=bool)
    pts = _as_points(vertices_xy)
    if len(pts) == 0 or rows == 0 or cols == 0:
        return out
    xp, yp = pts[:, 0], pts[:, 1]
    r0, r1 = max(0, math.floor(yp.min())), min(rows, math.floor(yp.max()) + 1)
    c0, c1 = max(0, math.floor(xp.min())), min(cols, math.floor(xp.max()) + 1)
    if r0 >= r1 or c0 >= c1:
        return out
    h, w = r1 - r0, c1 - c0
    # edge i runs from vertex j = i - 1 to vertex i
    xj, yj = np.roll(xp, 1), np.roll(yp, 1)
    lo, hi = np.minimum(yp, yj), np.maximum(yp, yj)
    args = (xp, yp, xj, yj)
    # crossings right of the pixel (rows lo <= r < hi, x > c  <=>  ceil(x) > c)
    start = np.clip(np.ceil(lo), r0, r1).astype(np.int64)
    n = np.clip(np.ceil(hi), r0, r1).astype(np.int64) - start
    right = _crossings(*args, start, n, r0, h, w, c0, np.ceil)
    right = np.cumsum(right[:, ::-1], axis=1)[:, ::-1][:, 1:]
    # crossings left of the pixel (rows lo < r <= hi, x < c  <=>  floor(x) + 1 <= c)
    start = np.clip(np.floor(lo) + 1, r0, r1).astype(np.int64)
    n = np.clip(np.floor(hi) + 1, r0, r1).astype(np.int64) - start
    left = _crossings(*args, start, n, r0, h, w, c0, lambda x: np.floor(x) + 1)
    left = np.cumsum(left, axis=1)[:, :w]
    out[r0:r1, c0:c1] = ((right | left) & 1).astype(bool)
    # pixel centres on a vertex
    vr, vc = np.round(yp), np.round(xp)
    on = (np.abs(yp - vr) < _VERTEX_EPS) & (np.abs(xp - vc) < _VERTEX_EPS)
    on &= (vr >= 0) & (vr < rows) & (vc >= 0) & (vc < cols)
    out[vr[on].astype(np.intp), vc[on].astype(np.intp)] = True
    return out


def rasterize_brush(points_xy, diameter_rows, diameter_cols, shape) -> np.ndarray:
    """Pixels whose centre lies strictly inside a brush swept along a polyline.

    The brush is an ellipse with the given diameters in pixels along rows and columns (e.g. the
    brush size in mm divided by the pixel spacing); consecutive points are joined by capsules,
    a single point paints one ellipse (the same pixels as ``skimage.draw.ellipse``).
    Absurd diameters (more than twice the image diagonal plus the distance of the farthest
    point outside the image) are capped, so an infinite brush covers the whole image.

    Parameters
    ----------
    points_xy : array_like, shape (n, 2)
        ``(x, y)`` = ``(col, row)`` points of the stroke.
    diameter_rows, diameter_cols : float
        Brush diameters in pixels (> 0).
    shape : tuple of int
        ``(rows, cols)`` of the slice.

    Raises
    ------
    EditRefused
        Non-positive or NaN diameters, non-finite or malformed points.

    Examples
    --------
    >>> rasterize_brush([(3, 1)], 1, 1, (3, 5)).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 0, 0, 1, 0],
           [0, 0, 0, 0, 0]])
    >>> rasterize_brush([(1, 1), (3, 1)], 3, 1, (3, 5)).astype(int)
    array([[0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0]])
    """
    rows, cols = int(shape[0]), int(shape[1])
    out = np.zeros((rows, cols), dtype=bool)
    try:
        d_r, d_c = float(diameter_rows), float(diameter_cols)
    except (TypeError, ValueError):
        d_r = d_c = float("nan")
    if not (d_r > 0 and d_c > 0):  # also catches NaN
        raise EditRefused(f"The brush size must be a positive number of pixels, got "
                          f"{diameter_rows!r} x {diameter_cols!r}. Choose another brush size.")
    pts = _as_points(points_xy)
    if len(pts) == 0 or rows == 0 or cols == 0:
        return out
    # cap: twice the farthest a pixel centre can be from a stroke point (image diagonal + the
    # distance of the farthest point outside the image); only absurd sizes are affected
    outside = max(0.0, float(np.max(-pts)), float(np.max(pts[:, 0] - cols)),
                  float(np.max(pts[:, 1] - rows)))
    cap = 2.0 * (math.hypot(rows, cols) + outside) + 2.0
    rad_r, rad_c = min(d_r, cap) / 2.0, min(d_c, cap) / 2.0
    # drop consecutive duplicates (a zero-length segment adds nothing after the first)
    if len(pts) > 1:
        same = np.all(pts[1:] == pts[:-1], axis=1)
        pts = np.concatenate([pts[:1], pts[1:][~same]])
    a = pts if len(pts) == 1 else pts[:-1]
    b = pts if len(pts) == 1 else pts[1:]
    # bounding box of each capsule, clipped to the image
    rs = np.clip(np.ceil(np.minimum(a[:, 1], b[:, 1]) - rad_r), 0, rows).astype(np.int64)
    re_ = np.clip(np.floor(np.maximum(a[:, 1], b[:, 1]) + rad_r) + 1, 0, rows).astype(np.int64)
    cs = np.clip(np.ceil(np.minimum(a[:, 0], b[:, 0]) - rad_c), 0, cols).astype(np.int64)
    ce = np.clip(np.floor(np.maximum(a[:, 0], b[:, 0]) + rad_c) + 1, 0, cols).astype(np.int64)
    hs, ws = np.maximum(re_ - rs, 0), np.maximum(ce - cs, 0)
    npix = hs * ws
    keep = npix > 0
    a, b, rs, cs, ws, npix = a[keep], b[keep], rs[keep], cs[keep], ws[keep], npix[keep]
    # segment vectors in brush-normalised units (the brush is the unit disc there)
    dx, dy = (b[:, 0] - a[:, 0]) / rad_c, (b[:, 1] - a[:, 1]) / rad_r
    dd = dx * dx + dy * dy
    inv = np.divide(1.0, dd, out=np.zeros_like(dd), where=dd > 0)
    flat = out.reshape(-1)
    ends = np.cumsum(npix)
    first = 0
    while first < len(npix):
        base = ends[first - 1] if first else 0
        last = max(int(np.searchsorted(ends, base + _CHUNK, side="right")), first + 1)
        sel = slice(first, last)
        ns = npix[sel]
        seg = np.repeat(np.arange(len(ns)), ns)
        local = np.arange(int(ns.sum())) - np.repeat(np.cumsum(ns) - ns, ns)
        w = ws[sel][seg]
        r = rs[sel][seg] + local // w
        c = cs[sel][seg] + local % w
        u = (c - a[sel, 0][seg]) / rad_c
        v = (r - a[sel, 1][seg]) / rad_r
        t = np.clip((u * dx[sel][seg] + v * dy[sel][seg]) * inv[sel][seg], 0.0, 1.0)
        eu, ev = u - t * dx[sel][seg], v - t * dy[sel][seg]
        inside = ev * ev + eu * eu < 1.0
        flat[r[inside] * cols + c[inside]] = True
        first = last
    return out
