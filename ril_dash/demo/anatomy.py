"""Geometry of the synthetic abdominal CT phantom: a voxel grid and the organ label map.

Everything here is defined in *world millimetres* in nibabel's RAS+ convention (+x points to
the patient's Right, so a point with x > 0 lies on the patient's right side; +y anterior;
+z superior), centred on the middle of the volume, so the anatomy does not depend on how the
voxel axes are oriented. Shapes are smooth (ellipsoids, superellipses and elliptic prisms whose
cross-section varies with z) and are evaluated only inside their bounding box, so a 256×256×40
label map takes a fraction of a second.

Organ sizes and positions are jittered by about ±10 % from a seeded :class:`numpy.random.Generator`,
so every seed is a different "patient" while every phase of one seed shares the same anatomy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

# Label values (see ``phantom.LABELS`` for the names).
BODY, FAT, MUSCLE, LIVER, SPLEEN, SPINE, AORTA = 1, 2, 3, 4, 5, 6, 7
R_CORTEX, R_MEDULLA, R_PELVIS = 8, 9, 10
L_CORTEX, L_MEDULLA, L_PELVIS = 11, 12, 13
IVC, CANAL, DISC, BOWEL, BOWEL_GAS, LESION = 14, 15, 16, 17, 18, 19


@dataclass(frozen=True)
class Grid:
    """World coordinates (mm, RAS+) of the voxel centres of an axis-aligned volume.

    ``x[i]``, ``y[j]``, ``z[k]`` are the world coordinates of voxel ``(i, j, k)``; the affine is
    diagonal, so each world axis depends on one voxel index only.
    """

    affine: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray

    @classmethod
    def from_affine(cls, shape: tuple[int, int, int], affine: np.ndarray) -> "Grid":
        """Build the grid of a diagonal ``affine`` for a volume of ``shape``."""
        axes = [
            (affine[d, d] * np.arange(n) + affine[d, 3]).astype(np.float32)
            for d, n in enumerate(shape)
        ]
        return cls(np.asarray(affine, float), *axes)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Voxel shape ``(nx, ny, nz)``."""
        return (self.x.size, self.y.size, self.z.size)

    def box(self, lo, hi) -> tuple[slice, slice, slice]:
        """Voxel slices covering the world box ``lo``–``hi`` (empty where no voxel centre is in it)."""
        slices = []
        for axis, a, b in zip((self.x, self.y, self.z), lo, hi):
            idx = np.nonzero((axis >= a) & (axis <= b))[0]
            slices.append(slice(int(idx[0]), int(idx[-1]) + 1) if idx.size else slice(0, 0))
        return tuple(slices)

    def coords(self, sl):
        """Broadcastable world coordinates ``X (n,1,1)``, ``Y (1,n,1)``, ``Z (1,1,n)`` of ``sl``."""
        return (
            self.x[sl[0], None, None],
            self.y[None, sl[1], None],
            self.z[None, None, sl[2]],
        )


def rotation(yaw_deg: float = 0.0, tilt_deg: float = 0.0) -> np.ndarray:
    """Rotation ``Rz(yaw) @ Ry(tilt)`` (degrees) that maps local shape axes to world axes."""
    a, b = np.deg2rad(yaw_deg), np.deg2rad(tilt_deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    return rz @ ry


def ellipsoid(grid: Grid, center, semi, rot=None):
    """Normalised local coordinates of an ellipsoid over its bounding box.

    Returns ``(sl, (u, v, w))`` where ``u² + v² + w² < 1`` is the inside (``sl`` is empty when
    the ellipsoid misses every voxel centre). ``rot`` maps local axes to world axes.
    """
    center = np.asarray(center, np.float32)
    semi = np.asarray(semi, np.float32)
    reach = np.full(3, semi.max()) if rot is not None else semi
    sl = grid.box(center - reach, center + reach)
    X, Y, Z = grid.coords(sl)
    X, Y, Z = X - center[0], Y - center[1], Z - center[2]
    if rot is None:
        local = (X, Y, Z)
    else:
        r = np.asarray(rot, np.float32)
        local = tuple(r[0, k] * X + r[1, k] * Y + r[2, k] * Z for k in range(3))
    return sl, tuple(c / s for c, s in zip(local, semi))


def prism(grid: Grid, cx, cy, ax, ay, z_range=(-np.inf, np.inf), power: float = 2.0):
    """Superelliptic prism whose centre and semi-axes vary with z.

    ``cx, cy, ax, ay`` are scalars or callables of the world z (mm). Returns ``(sl, r)`` with
    ``r < 1`` inside (``sl`` empty when the prism misses every voxel centre).
    """
    z = grid.z
    zsel = np.nonzero((z >= z_range[0]) & (z <= z_range[1]))[0]
    if zsel.size == 0:
        return (slice(0, 0),) * 3, np.zeros((0, 0, 0), np.float32)
    zz = z[zsel]
    p = [np.broadcast_to(np.asarray(f(zz) if callable(f) else f, np.float32), zz.shape)
         for f in (cx, cy, ax, ay)]
    lo = (float((p[0] - p[2]).min()), float((p[1] - p[3]).min()), zz.min())
    hi = (float((p[0] + p[2]).max()), float((p[1] + p[3]).max()), zz.max())
    sl = grid.box(lo, hi)
    sl = (sl[0], sl[1], slice(int(zsel[0]), int(zsel[-1]) + 1))
    X, Y, _ = grid.coords(sl)
    cxv, cyv, axv, ayv = (v[None, None, :] for v in p)
    u, v = np.abs((X - cxv) / axv), np.abs((Y - cyv) / ayv)
    r = u * u + v * v if power == 2.0 else u**power + v**power
    return sl, r


def paint(labels: np.ndarray, sl, mask: np.ndarray, value: int, where=None) -> None:
    """Set ``labels[sl][mask] = value``, restricted to ``where`` (a bool volume or label values)."""
    target = labels[sl]
    mask = np.broadcast_to(mask, target.shape)
    if where is not None:
        if isinstance(where, np.ndarray) and where.dtype == bool:
            mask = mask & where[sl]
        else:
            mask = mask & np.isin(target, np.atleast_1d(where))
    target[mask] = value


@dataclass
class Anatomy:
    """The label map plus a few landmarks the phantom needs to shade it."""

    labels: np.ndarray
    #: world coordinates (mm) of the liver lesion centre
    lesion_center_mm: tuple[float, float, float]
    #: bone voxels on the outer surface of the spine (cortical shell, brighter)
    cortical_bone: np.ndarray
    #: slices and spleen-local coordinates used to mottle the spleen in the arterial phase
    spleen_box: tuple
    spleen_pattern: np.ndarray


def build_anatomy(grid: Grid, rng: np.random.Generator) -> Anatomy:
    """Paint the organ label map of one seeded patient on ``grid``.

    Examples
    --------
    >>> import numpy as np
    >>> g = Grid.from_affine((64, 64, 10), np.diag([-5.6, 5.6, 16.0, 1.0]) + np.array(
    ...     [[0, 0, 0, 176.4], [0, 0, 0, -176.4], [0, 0, 0, -72], [0, 0, 0, 0]]))
    >>> a = build_anatomy(g, np.random.default_rng(1))
    >>> a.labels.shape, int(a.labels.max()) > LIVER
    ((64, 64, 10), True)
    """

    def j(value, rel=0.10):
        return value * (1.0 + rng.uniform(-rel, rel))

    labels = np.zeros(grid.shape, np.uint8)
    size = j(1.0, 0.06)  # overall habitus

    # --- body wall: skin, subcutaneous fat, muscle; the cavity is filled with visceral fat ---
    bx, by_ant, by_post = j(140 * size), j(108 * size), j(97 * size)
    phase = rng.uniform(0, 2 * np.pi)

    def wobble(z):
        return 1.0 + 0.04 * np.sin(2 * np.pi * z / 280.0 + phase)

    fat_t, muscle_t = j(18 * size, 0.25), j(11 * size, 0.2)
    # A flatter back: evaluate on a grid whose posterior half is stretched by by_ant / by_post.
    yscale = np.where(grid.y < 0, by_ant / by_post, 1.0).astype(np.float32)
    stretched = Grid(grid.affine, grid.x, grid.y * yscale, grid.z)
    body_masks = []
    for inset in (0.0, 3.0, 3.0 + fat_t, 3.0 + fat_t + muscle_t):
        sl, r = prism(stretched, 0.0, 0.0, lambda z, i=inset: bx * wobble(z) - i,
                      lambda z, i=inset: by_ant * wobble(z) - i, power=2.3)
        m = np.zeros(grid.shape, bool)
        m[sl] = r < 1.0
        body_masks.append(m)
    body, inner_skin, inner_fat, cavity = body_masks
    labels[body] = BODY
    labels[inner_skin] = FAT
    labels[inner_fat] = MUSCLE
    labels[cavity] = FAT

    # --- spine landmarks (needed by several organs) ---
    vb_cy, vb_rx, vb_ry = j(-28 * size), j(21 * size), j(16 * size)
    canal_cy = vb_cy - vb_ry - 9.0

    # paraspinal muscles (erector spinae) and psoas
    for side in (1, -1):
        sl, r = prism(grid, side * j(30 * size), canal_cy - j(6), j(22 * size), j(15 * size))
        paint(labels, sl, r < 1, MUSCLE, where=inner_skin)
        top = j(20.0)
        sl, r = prism(grid, lambda z, s=side: s * (vb_rx + 8 + 0.12 * (top - z)), vb_cy + 2,
                      lambda z: np.clip(4 + 0.13 * (top - z), 4, 24),
                      lambda z: np.clip(4 + 0.09 * (top - z), 4, 17), (-np.inf, top))
        paint(labels, sl, r < 1, MUSCLE, where=cavity)

    # --- liver (patient's right = +x), with a left lobe reaching across the midline ---
    lc = np.array([j(55 * size), j(5 * size), j(30)])
    ls = np.array([j(62 * size), j(72 * size), j(80)])
    sl, (u, v, w) = ellipsoid(grid, lc, ls, rotation(j(-15)))
    taper = 1.0 + 0.35 * np.clip(w, -1, 1)  # wider at the dome, a wedge inferiorly
    paint(labels, sl, u * u / (taper * taper) + v * v + w * w < 1, LIVER, where=cavity)
    sl, (u, v, w) = ellipsoid(grid, (j(-12 * size), j(48 * size), j(42)),
                              (j(48 * size), j(26 * size), j(32)))
    paint(labels, sl, u * u + v * v + w * w < 1, LIVER, where=cavity)

    # --- spleen (patient's left = -x), posterolateral, mottled in the arterial phase ---
    sc = (j(-88 * size), j(-18 * size), j(45))
    sl, (u, v, w) = ellipsoid(grid, sc, (j(26 * size), j(52 * size), j(42)), rotation(j(-35)))
    paint(labels, sl, u * u + v * v + w * w < 1, SPLEEN, where=cavity)
    f = rng.uniform(2.5, 4.5, 3)
    spleen_pattern = (np.sin(f[0] * np.pi * u + rng.uniform(0, 6)) *
                      np.sin(f[1] * np.pi * v + rng.uniform(0, 6)) *
                      np.cos(f[2] * np.pi * w)).astype(np.float32)
    spleen_box = sl

    # --- kidneys: cortex shell, medulla (pyramids separated by columns), pelvis at the hilum ---
    for side, (cortex, medulla, pelvis), zc in (
        (1, (R_CORTEX, R_MEDULLA, R_PELVIS), j(-30)),
        (-1, (L_CORTEX, L_MEDULLA, L_PELVIS), j(-14)),
    ):
        ka, kb, kc = j(27 * size), j(22 * size), j(50)
        kcen = (side * j(64 * size), vb_cy + j(2), zc)
        rot = rotation(-side * j(30), -side * j(14))
        sl, (u, v, w) = ellipsoid(grid, kcen, (ka, kb, kc), rot)
        r2 = u * u + v * v + w * w
        paint(labels, sl, r2 < 1, cortex, where=cavity)
        theta = np.arctan2(w, u * side)
        columns = np.abs(np.sin(3.0 * theta)) < 0.16
        paint(labels, sl, (r2 < 0.62**2) & ~columns, medulla, where=[cortex])
        pcen = np.asarray(kcen) + rot @ np.array([-side * 0.62 * ka, 0.0, 0.0])
        sl, (u, v, w) = ellipsoid(grid, pcen, (0.5 * ka, 0.32 * kb, 0.42 * kc), rot)
        paint(labels, sl, u * u + v * v + w * w < 1, pelvis, where=cavity)

    # --- bowel loops in the anterior lower abdomen, some with an anterior gas pocket ---
    for _ in range(int(rng.integers(5, 9))):
        c = (rng.uniform(-85, 60) * size, rng.uniform(-5, 60) * size, rng.uniform(-80, 15))
        semi = (rng.uniform(12, 20), rng.uniform(11, 17), rng.uniform(18, 40))
        sl, (u, v, w) = ellipsoid(grid, c, semi, rotation(rng.uniform(-90, 90), rng.uniform(-30, 30)))
        r2 = u * u + v * v + w * w
        paint(labels, sl, r2 < 1, BOWEL, where=[FAT])
        if rng.uniform() < 0.6:
            _, Y, _ = grid.coords(sl)
            gas = (r2 < 0.7**2) & (Y > c[1] + rng.uniform(-0.1, 0.3) * semi[1])
            paint(labels, sl, gas, BOWEL_GAS, where=[BOWEL])

    # --- vessels: aorta anterior-left of the spine, IVC anterior-right ---
    ao_x, ao_r = j(-15 * size), j(11 * size)
    sl, r = prism(grid, ao_x, vb_cy + vb_ry + ao_r + j(3.0), lambda z: ao_r * (1 + 0.0012 * z), ao_r)
    paint(labels, sl, r < 1, AORTA, where=cavity)
    sl, r = prism(grid, j(24 * size), vb_cy + vb_ry + j(9 * size), j(13 * size), j(9 * size))
    paint(labels, sl, r < 1, IVC, where=cavity)

    # --- liver lesion (hypervascular, washes out), placed inside the right lobe ---
    lr = j(11.0, 0.25)
    lsemi = (lr, lr * j(0.9), lr * j(0.8))
    for _ in range(40):  # first centre whose lesion lies wholly in the liver
        lesion = np.array([lc[0] + rng.uniform(-0.3, 0.3) * ls[0],
                           lc[1] + rng.uniform(-0.3, 0.3) * ls[1],
                           lc[2] + rng.uniform(-0.3, 0.3) * ls[2]], np.float32)
        sl, (u, v, w) = ellipsoid(grid, lesion, lsemi)
        inside = u * u + v * v + w * w < 1
        if inside.any() and np.all(labels[sl][inside] == LIVER):
            break
    paint(labels, sl, inside, LESION, where=[LIVER])

    # --- spine: vertebral bodies with discs, canal, pedicles, laminae, spinous/transverse ---
    disc_off, level = rng.uniform(0, 32), j(32.0, 0.05)
    is_disc = ((grid.z - disc_off) % level) < 7.0
    sl, r = prism(grid, 0.0, vb_cy, vb_rx, vb_ry, power=2.4)
    paint(labels, sl, r < 1, SPINE)
    paint(labels, sl, (r < 1) & is_disc[None, None, sl[2]], DISC)
    bone = np.zeros(grid.shape, bool)
    for cx, cy, ax, ay, p in (
        (0.0, canal_cy, 15.0, 13.0, 2.0),  # ring around the canal (pedicles + laminae)
        (0.0, canal_cy - 19.0, 4.0, 9.0, 2.5),  # spinous process
        (27.0, canal_cy + 3.0, 17.0, 5.0, 2.5),  # transverse processes
        (-27.0, canal_cy + 3.0, 17.0, 5.0, 2.5),
    ):
        sl, r = prism(grid, cx * size, cy, ax * size, ay * size, power=p)
        bone[sl] |= r < 1
    bone &= body
    labels[bone] = SPINE
    sl, r = prism(grid, 0.0, canal_cy, 9.0 * size, 8.0 * size)
    paint(labels, sl, r < 1, CANAL)

    spine = labels == SPINE
    cortical = spine & ~ndimage.binary_erosion(spine, np.ones((3, 3, 1), bool))
    return Anatomy(labels, tuple(float(c) for c in lesion), cortical, spleen_box, spleen_pattern)
