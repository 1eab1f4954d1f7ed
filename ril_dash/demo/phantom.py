"""A deterministic synthetic abdominal CT phantom in four contrast phases.

:func:`make_phantom` turns a seed (one "patient") and a contrast phase into a CT volume in
Hounsfield units plus its exact label map. The anatomy (:mod:`ril_dash.demo.anatomy`) depends on
the seed only, so the four phases of one seed line up voxel for voxel, as a multiphase CT would.
Attenuation follows textbook values per phase (corticomedullary differentiation in the arterial
phase, a nephrographic portal-venous phase, excreted contrast in the collecting system on the
delayed phase), then the image is lightly blurred (partial volume) and given Gaussian noise.

Orientation
-----------
The affine is diagonal with axis codes ``('L', 'A', 'S')`` (what ``dcm2niix`` typically writes for
an axial CT): voxel index *i* increases toward the patient's **Left**, *j* toward Anterior, *k*
toward Superior. In nibabel's RAS+ world coordinates the patient's right has **positive x**, so the
liver's centroid has x > 0 and the spleen's x < 0; index ``i = 0`` is the patient's right edge,
which a radiological display shows on the screen's left.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ril_dash.demo import anatomy as A
from ril_dash.demo.anatomy import Grid, build_anatomy

PHASES = ("non-contrast", "arterial", "portal-venous", "delayed")

#: label value → name of every structure in the label map (0 is air outside the body)
LABELS = {
    A.BODY: "body",
    A.FAT: "fat",
    A.MUSCLE: "muscle",
    A.LIVER: "liver",
    A.SPLEEN: "spleen",
    A.SPINE: "spine",
    A.AORTA: "aorta",
    A.R_CORTEX: "right kidney cortex",
    A.R_MEDULLA: "right kidney medulla",
    A.R_PELVIS: "right renal pelvis",
    A.L_CORTEX: "left kidney cortex",
    A.L_MEDULLA: "left kidney medulla",
    A.L_PELVIS: "left renal pelvis",
    A.IVC: "inferior vena cava",
    A.CANAL: "spinal canal",
    A.DISC: "intervertebral disc",
    A.BOWEL: "bowel",
    A.BOWEL_GAS: "bowel gas",
    A.LESION: "liver lesion",
}

#: label values of each kidney part, per side
KIDNEY_LABELS = {
    "right": {"cortex": A.R_CORTEX, "medulla": A.R_MEDULLA, "pelvis": A.R_PELVIS},
    "left": {"cortex": A.L_CORTEX, "medulla": A.L_MEDULLA, "pelvis": A.L_PELVIS},
}

#: phantom label values that make up each ROI of the demo project.yaml (mask value in brackets)
PROJECT_ROI_LABELS = {
    "Liver": (A.LIVER, A.LESION),
    "Spleen": (A.SPLEEN,),
    "Right kidney": (A.R_CORTEX, A.R_MEDULLA, A.R_PELVIS),
    "Left kidney": (A.L_CORTEX, A.L_MEDULLA, A.L_PELVIS),
    "Aorta": (A.AORTA,),
}

# Mean attenuation (HU) per label in each phase: non-contrast, arterial, portal-venous, delayed.
_HU = {
    0: (-1000, -1000, -1000, -1000),
    A.BODY: (40, 45, 55, 50),
    A.FAT: (-100, -100, -98, -99),
    A.MUSCLE: (50, 55, 62, 58),
    A.LIVER: (60, 70, 110, 80),
    A.SPLEEN: (45, 110, 120, 95),
    A.SPINE: (450, 450, 455, 452),
    A.AORTA: (40, 320, 160, 90),
    A.R_CORTEX: (30, 180, 170, 110),
    A.R_MEDULLA: (30, 70, 170, 115),
    A.R_PELVIS: (10, 10, 25, 600),
    A.IVC: (40, 90, 150, 90),
    A.CANAL: (15, 15, 18, 16),
    A.DISC: (80, 82, 90, 85),
    A.BOWEL: (30, 40, 60, 50),
    A.BOWEL_GAS: (-900, -900, -900, -900),
    A.LESION: (45, 160, 95, 70),
}
for _side in ("CORTEX", "MEDULLA", "PELVIS"):
    _HU[getattr(A, "L_" + _side)] = _HU[getattr(A, "R_" + _side)]

#: extra HU on the spine's cortical shell (cancellous ≈ 450, cortex ≈ 900)
CORTICAL_EXTRA_HU = 450
#: amplitude (HU) of the arterial-phase mottling of the spleen
SPLEEN_MOTTLE_HU = 60
NOISE_SIGMA_HU = 12.0
#: blur (mm, per world axis) that stands in for the scanner's point-spread and partial volume
BLUR_MM = (0.9, 0.9, 1.2)
DEFAULT_SHAPE = (256, 256, 40)
DEFAULT_SPACING = (1.4, 1.4, 4.0)


def phase_hu(phase: str) -> dict[int, int]:
    """Mean HU of every label (0 = air) in ``phase``.

    Examples
    --------
    >>> phase_hu("arterial")[7]  # aorta
    320
    """
    return {value: hus[_phase_index(phase)] for value, hus in _HU.items()}


def kidney_side(label: int) -> str | None:
    """``"right"`` or ``"left"`` for a kidney label value, ``None`` for any other.

    Examples
    --------
    >>> kidney_side(8), kidney_side(12), kidney_side(4)
    ('right', 'left', None)
    """
    for side, parts in KIDNEY_LABELS.items():
        if label in parts.values():
            return side
    return None


def ct_affine(shape=DEFAULT_SHAPE, spacing=DEFAULT_SPACING) -> np.ndarray:
    """Diagonal "LAS" affine with ``spacing`` whose volume is centred on world (0, 0, 0).

    Examples
    --------
    >>> import nibabel as nib
    >>> nib.aff2axcodes(ct_affine())
    ('L', 'A', 'S')
    """
    sx, sy, sz = (float(s) for s in spacing)
    nx, ny, nz = shape
    affine = np.diag([-sx, sy, sz, 1.0])
    affine[:3, 3] = (sx * (nx - 1) / 2, -sy * (ny - 1) / 2, -sz * (nz - 1) / 2)
    return affine


@dataclass(frozen=True)
class Phantom:
    """One phase of one synthetic patient.

    Attributes
    ----------
    hu : numpy.ndarray
        int16 CT numbers, indexed ``(x, y, z)`` = ``(i, j, k)`` of ``affine``.
    labels : numpy.ndarray
        uint8 label map of the same shape (values in :data:`LABELS`, 0 = outside the body).
    affine : numpy.ndarray
        4×4 voxel → RAS+ world (mm) affine, axis codes ``('L', 'A', 'S')``.
    phase : str
        One of :data:`PHASES`.
    seed : int
        The seed that fixed the anatomy (and, with the phase, the noise).
    lesion_center : tuple of float
        Voxel coordinates ``(i, j, k)`` of the liver lesion's centre.
    """

    hu: np.ndarray
    labels: np.ndarray
    affine: np.ndarray
    phase: str
    seed: int
    lesion_center: tuple[float, float, float]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm."""
        return tuple(float(abs(self.affine[d, d])) for d in range(3))


def _phase_index(phase: str) -> int:
    try:
        return PHASES.index(phase)
    except ValueError:
        raise ValueError(f"unknown contrast phase {phase!r}; expected one of {PHASES}") from None


def make_phantom(
    seed: int,
    phase: str,
    shape: tuple[int, int, int] = DEFAULT_SHAPE,
    spacing: tuple[float, float, float] = DEFAULT_SPACING,
) -> Phantom:
    """Generate one contrast phase of the synthetic abdominal CT of patient ``seed``.

    The anatomy is laid out in millimetres around the volume's centre, for a field of view of
    about 360 × 360 × 160 mm (the default ``shape × spacing``); a smaller field of view crops it,
    a coarser spacing keeps it whole at a lower resolution.

    Parameters
    ----------
    seed : int
        Fixes the anatomy (organ sizes and positions jitter by about ±10 %) and the noise.
    phase : str
        One of :data:`PHASES`.
    shape : tuple of int
        Voxel grid ``(nx, ny, nz)``.
    spacing : tuple of float
        Voxel size in mm.

    Returns
    -------
    Phantom
        ``hu`` (int16) and ``labels`` (uint8) of ``shape``, plus the affine.

    Examples
    --------
    >>> p = make_phantom(7, "arterial", shape=(64, 64, 10), spacing=(5.6, 5.6, 16.0))
    >>> p.hu.dtype, p.labels.dtype, p.hu.shape
    (dtype('int16'), dtype('uint8'), (64, 64, 10))
    >>> bool((make_phantom(7, "arterial", (64, 64, 10), (5.6, 5.6, 16.0)).hu == p.hu).all())
    True
    """
    index = _phase_index(phase)
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"shape must be three positive integers, got {shape}")
    affine = ct_affine(shape, spacing)
    grid = Grid.from_affine(shape, affine)
    anat = build_anatomy(grid, np.random.default_rng(int(seed)))
    labels = anat.labels

    lut = np.zeros(256, np.float32)
    for value, hus in _HU.items():
        lut[value] = hus[index]
    hu = lut[labels]
    hu[anat.cortical_bone] += CORTICAL_EXTRA_HU
    if phase in ("arterial", "portal-venous"):
        amplitude = SPLEEN_MOTTLE_HU if phase == "arterial" else SPLEEN_MOTTLE_HU / 6
        box = hu[anat.spleen_box]
        spleen = labels[anat.spleen_box] == A.SPLEEN
        box[spleen] += amplitude * anat.spleen_pattern[spleen]

    sigma = [b / s for b, s in zip(BLUR_MM, (abs(float(s)) for s in spacing))]
    hu = ndimage.gaussian_filter(hu, sigma, mode="nearest", truncate=3.0)
    noise_rng = np.random.default_rng([int(seed), index])
    hu += noise_rng.standard_normal(shape, dtype=np.float32) * np.float32(NOISE_SIGMA_HU)
    np.clip(hu, -1024, 3071, out=hu)
    hu_int = np.rint(hu).astype(np.int16)

    lesion_vox = np.linalg.solve(affine, np.r_[anat.lesion_center_mm, 1.0])[:3]
    return Phantom(hu_int, labels, affine, phase, int(seed), tuple(float(c) for c in lesion_vox))
