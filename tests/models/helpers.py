"""Stand-in manifests for the processing tests: namespaces with exactly the spec's field names.

The real dataclasses live in :mod:`ril_dash.models.manifest`; these keep the processing tests
independent of the manifest parser.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import nibabel as nib
import numpy as np
from nibabel.orientations import axcodes2ornt, ornt_transform

from ril_dash.core.volume import Volume

REF = "kidney-seg@1.0.0"


def input_spec(**kw):
    base = dict(plane="axial", size=[8, 8], resample="none", spacing=None, transpose=False,
                flip=[], slices=1, frames=None, patch=None, overlap=0.5, blend="gaussian")
    base.update(kw)
    return NS(**base)


def norm_spec(**kw):
    base = dict(method="none", window=[-160, 240], range=[0.0, 1.0], percentiles=[1, 99],
                scope="slice", scale=1.0, offset=0.0, clip=None)
    base.update(kw)
    return NS(**base)


def seg_output(activation="softmax", channels=((1, "Right kidney"), (2, "Left kidney")), **kw):
    base = dict(activation=activation, threshold=0.5,
                channels=[NS(channel=c, roi=r, code=None) for c, r in channels],
                largest_component=False, min_size=0)
    base.update(kw)
    return NS(**base)


def class_output(**kw):
    base = dict(activation="softmax", text_field="Contrast phase",
                classes=["non-contrast", "arterial", "portal-venous", "delayed"],
                aggregate="mean", slices="all")
    base.update(kw)
    return NS(**base)


def manifest(task="segmentation", dimension=2, inp=None, norm=None, output=None):
    return NS(id="kidney-seg", version="1.0.0", ref=REF, task=task, dimension=dimension,
              input=inp or input_spec(), normalization=norm or norm_spec(),
              output=output or (seg_output() if task == "segmentation" else class_output()))


def layouts(canonical: np.ndarray, spacing=(0.8, 0.9, 3.0)):
    """name → Volume of the same canonical RAS array stored as RAS, LAS, PIR and oblique."""
    aff = np.diag([*spacing, 1.0])
    out = {}
    for name, codes, deg in [("RAS", "RAS", 0), ("LAS", "LAS", 0), ("PIR", "PIR", 0),
                             ("oblique", "LPS", 10)]:
        img = nib.Nifti1Image(canonical, aff).as_reoriented(
            ornt_transform(axcodes2ornt("RAS"), axcodes2ornt(tuple(codes))))
        affine = img.affine
        if deg:
            t = np.radians(deg)
            rz = np.eye(4)
            rz[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
            affine = rz @ affine
        out[name] = Volume(np.asanyarray(img.dataobj), affine)
    return out


def run_model_script(script: str, out: Path) -> Path:
    """Run a model-writing script of this folder (``python SCRIPT OUT``) in a subprocess, so
    that the test process never imports tensorflow; ``out`` once it succeeded."""
    here = Path(__file__).resolve().parent
    result = subprocess.run([sys.executable, str(here / script), str(out)], cwd=here.parents[1],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out
