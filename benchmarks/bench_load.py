"""Series loading speed: radview vs SimpleITK ImageSeriesReader vs a plain pydicom loop, same files.

Datasets: a generated 512x512x300 uncompressed int16 CT series (written once to a temp folder) and the
shared JPEG 2000 CT series. Checks identical voxels and geometry, prints JSON with best-of-N times and
ratios (peer time / radview time: > 1 means radview is faster).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.core.io import load_volume  # noqa: E402
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct_abdomen_dicom"
REPEATS = 3


def best(fn, repeats=REPEATS):
    times, result = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def sitk_reader(folder: Path):
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def pydicom_loop(folder: Path) -> np.ndarray:
    """What a script would do: read every file, sort by position along the normal, stack, rescale."""
    datasets = [pydicom.dcmread(f) for f in sorted(folder.iterdir())]
    normal = np.cross(*np.reshape(np.asarray(datasets[0].ImageOrientationPatient, float), (2, 3)))
    datasets.sort(key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), normal)))
    return np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets])


def generated_series(root: Path) -> Path:
    folder = root / "ct512x512x300"
    if not folder.is_dir():
        rng = np.random.default_rng(0)
        arr = np.clip(rng.normal(0, 300, (300, 512, 512)), -1024, 3071).astype(np.int16)
        vol = Volume(arr, (0.7, 0.7, 1.0), (-180.0, -180.0, -150.0), modality="CT", units="HU")
        write_dicom_series(vol, folder, study=DicomStudy("bench-load", "Bench^CT", "BENCH"))
    return folder


def measure(name: str, folder: Path) -> dict:
    # the first call warms the file cache and imports (decoder libraries) for every contender alike,
    # so it is reported separately
    t_first, _ = best(lambda: load_volume(folder), repeats=1)
    t_rv, vol = best(lambda: load_volume(folder))
    t_sitk, img = best(lambda: sitk_reader(folder))
    t_pd, arr = best(lambda: pydicom_loop(folder))
    ref = sitk.GetArrayFromImage(img)
    return {
        "dataset": name,
        "files": len(list(folder.iterdir())),
        "size": list(vol.size),
        "radview_s": round(t_rv, 4),
        "radview_first_call_s": round(t_first, 4),
        "simpleitk_s": round(t_sitk, 4),
        "pydicom_loop_s": round(t_pd, 4),
        "ratio_vs_simpleitk": round(t_sitk / t_rv, 3),
        "ratio_vs_pydicom_loop": round(t_pd / t_rv, 3),
        "voxels_identical_to_simpleitk": bool(np.array_equal(ref, vol.array)),
        "voxels_identical_to_pydicom": bool(np.array_equal(arr, vol.array)),
        "geometry_equal": bool(
            np.allclose(img.GetSpacing(), vol.spacing, atol=1e-4)
            and np.allclose(img.GetOrigin(), vol.origin, atol=1e-4)
            and np.allclose(img.GetDirection(), vol.direction.ravel(), atol=1e-4)
        ),
    }


def main() -> int:
    root = Path(os.environ.get("RADVIEW_BENCH_DIR", Path(tempfile.gettempdir()) / "radview_bench"))
    results = [measure("generated CT 512x512x300 uncompressed", generated_series(root))]
    if SHARED.is_dir():
        results.append(measure("shared CT JPEG 2000 (20 slices)", SHARED))
    print(json.dumps({"benchmark": "load", "peer": "SimpleITK ImageSeriesReader (GDCM)", "cpus": os.cpu_count(),
                      "results": results}, indent=2))
    ok = all(r["voxels_identical_to_simpleitk"] and r["geometry_equal"] for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
