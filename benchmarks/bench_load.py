"""Series loading speed: radview vs SimpleITK ImageSeriesReader vs a plain pydicom loop, same files.

Datasets: a generated 512x512x300 uncompressed int16 CT series (written once to a temp folder) and the
shared JPEG 2000 CT series. Checks identical voxels and geometry, prints JSON with best-of-N times and
ratios (peer time / radview time: > 1 means radview is faster); the contenders take turns in each
round, so load from other processes hits them alike. Also the first-slice time: from choosing the
folder until the slice the viewer shows first (the middle one) is in memory, loaded as the GUI loads
it; and, when a display is there (``make bench`` runs under xvfb-run), until the real MainWindow has
rendered it (``first_slice_gui.py``, in its own process).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.core.io import load_volume, scan  # noqa: E402
from viewer.core.io.dicom_series import SeriesLoader  # noqa: E402
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ct_abdomen_dicom"
GUI_SCRIPT = Path(__file__).resolve().parent / "first_slice_gui.py"
REPEATS = 5


def timed(fn):
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def best_interleaved(contenders: dict, repeats: int = REPEATS) -> dict:
    """{name: (best seconds, last result)}, the contenders taking turns in each of ``repeats`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    results = {}
    for _ in range(repeats):
        for name, fn in contenders.items():
            t, results[name] = timed(fn)
            times[name].append(t)
    return {name: (min(times[name]), results[name]) for name in contenders}


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
    """The generated series, written once: into a private folder renamed into place when complete, so a
    benchmark started at the same time never reads half-written files."""
    folder = root / "ct512x512x300"
    if not folder.is_dir():
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        arr = np.clip(rng.normal(0, 300, (300, 512, 512)), -1024, 3071).astype(np.int16)
        vol = Volume(arr, (0.7, 0.7, 1.0), (-180.0, -180.0, -150.0), modality="CT", units="HU")
        partial = Path(tempfile.mkdtemp(prefix="ct512x512x300.", dir=root))
        write_dicom_series(vol, partial, study=DicomStudy("bench-load", "Bench^CT", "BENCH"))
        try:
            partial.rename(folder)
        except OSError:  # another run finished first
            shutil.rmtree(partial)
    return folder


def first_slice(folder: Path) -> tuple[float, bool]:
    """Seconds from choosing ``folder`` until the slice shown first is in memory, loading as the GUI's
    LoadWorker does (scan, SeriesLoader, load reporting slices as they land); and whether that slice
    is the middle one, already holding its final values."""
    seen: dict = {}
    t0 = time.perf_counter()
    loader = SeriesLoader(scan(folder)[0])
    middle = loader.volume.array.shape[0] // 2

    def on_slices(ks: list[int]) -> None:
        if "s" not in seen:
            seen["s"] = time.perf_counter() - t0
            seen["ks"], seen["middle"] = list(ks), loader.volume.array[middle].copy()

    vol = loader.load(on_slices=on_slices)
    return seen["s"], middle in seen["ks"] and bool(np.array_equal(seen["middle"], vol.array[middle]))


def gui_first_slice(folder: Path) -> dict:
    """first_slice_gui.py's measurements in the real MainWindow, or why there are none."""
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM", "xcb") == "xcb":
        return {"gui_first_slice_s": None, "gui_note": "no display (run under xvfb-run, as make bench does)"}
    run = subprocess.run([sys.executable, str(GUI_SCRIPT), str(folder)], capture_output=True, text=True,
                         timeout=1800, check=False)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    if run.returncode != 0 or not lines:
        return {"gui_first_slice_s": None, "gui_note": f"first_slice_gui.py failed: {run.stderr[-500:]}"}
    return json.loads(lines[-1])


def measure(name: str, folder: Path, gui: bool) -> dict:
    # the first call warms the file cache and imports (decoder libraries) for every contender alike,
    # so it is reported separately
    t_first, _ = timed(lambda: load_volume(folder))
    runs = best_interleaved({
        "radview": lambda: load_volume(folder),
        "simpleitk": lambda: sitk_reader(folder),
        "pydicom": lambda: pydicom_loop(folder),
    })
    (t_rv, vol), (t_sitk, img), (t_pd, arr) = runs["radview"], runs["simpleitk"], runs["pydicom"]
    firsts = [first_slice(folder) for _ in range(REPEATS)]  # the time to the first slice, not the whole call's
    t_first_slice, middle_ok = min(s for s, _ in firsts), all(ok for _, ok in firsts)
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
        "first_slice_s": round(t_first_slice, 4),
        "first_slice_is_middle_and_final": middle_ok,
        **(gui_first_slice(folder) if gui else {}),
    }


def main() -> int:
    root = Path(os.environ.get("RADVIEW_BENCH_DIR", Path(tempfile.gettempdir()) / "radview_bench"))
    load_before = os.getloadavg()[0]
    results = [measure("generated CT 512x512x300 uncompressed", generated_series(root), gui=True)]
    if SHARED.is_dir():
        results.append(measure("shared CT JPEG 2000 (20 slices)", SHARED, gui=False))
    print(json.dumps({"benchmark": "load", "peer": "SimpleITK ImageSeriesReader (GDCM)", "cpus": os.cpu_count(),
                      "repeats": REPEATS,
                      "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                      "results": results}, indent=2))
    ok = all(r["voxels_identical_to_simpleitk"] and r["geometry_equal"] and r["first_slice_is_middle_and_final"]
             for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
