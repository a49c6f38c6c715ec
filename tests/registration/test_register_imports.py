"""`radview register` on two NIfTI files imports no DICOM, AI or rendering stack (whole-command time, issue 11)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from viewer.core.io import load_volume, save_volume
from viewer.core.registration import Transform

#: Run the CLI in a fresh interpreter, then report which top-level packages it imported.
WRAPPER = """
import json, sys
from viewer.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "packages": sorted({m.split('.')[0] for m in sys.modules})}))
"""

#: Packages a NIfTI/NRRD/MHA registration does not need (each costs 0.1-2 s of start-up).
NOT_NEEDED = ("pydicom", "highdicom", "requests", "torch", "monai", "vtk", "vtkmodules", "scipy", "PySide6",
              "pyqtgraph")


def test_register_on_nifti_imports_no_dicom_ai_or_render_packages(shared_data, tmp_path):
    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    save_volume(ct, tmp_path / "fixed.nii.gz")
    shift = np.array([4.0, -3.0, 2.0])  # moving = the same voxels 4, -3, 2 mm along x, y, z
    save_volume(ct.with_array(ct.array, origin=tuple(np.asarray(ct.origin) + shift)), tmp_path / "moving.nii.gz")
    proc = subprocess.run([sys.executable, "-c", WRAPPER, "register", str(tmp_path / "fixed.nii.gz"),
                           str(tmp_path / "moving.nii.gz"), "--out", str(tmp_path / "on_fixed.nii.gz"),
                           "--transform", str(tmp_path / "t.tfm")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["code"] == 0
    assert not set(NOT_NEEDED) & set(report["packages"]), "imported by `radview register` on NIfTI inputs"
    found = Transform.load(tmp_path / "t.tfm")
    centre = ct.index_to_world((np.array(ct.array.shape[::-1]) - 1) / 2)
    assert np.linalg.norm(found.fixed_to_moving(centre) - (centre + shift)) < 1.0
