"""Cohort batch: `radview batch` on 1 and 2 local Dask workers vs a plain loop over `radview segment` in one process.

The cohort: copies of the shared 3 mm abdominal CT (NIfTI) and of the real CT DICOM series, segmented with the
built-in abdomen_ct_unet on the CPU. The peer is the obvious script: `radview segment` called on each input in
turn in this process (viewer.cli.main, the model loaded per call as the command does; torch imported by the first
call, as in a fresh script). The batch times include starting the local cluster, importing torch and loading the
model on every worker (``first_case_started_s``: that start-up). Prints JSON: seconds and cases per minute of
each (and CPU seconds, workers included: less sensitive to other load on the machine), the ratios batch
(1 worker) / loop (the overhead of Dask: > 1 is slower) and the speed-up of 2 workers over 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.batch.cohort import run_batch  # noqa: E402
from viewer.cli import main as radview  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
MODEL = "abdomen_ct_unet"


def cohort(folder: Path, nifti: int, dicom: int) -> list[Path]:
    """``nifti`` copies of the 3 mm CT and ``dicom`` copies of the DICOM series, each in its own case folder."""
    cases = []
    for n in range(nifti):
        (folder / f"case{n:02d}").mkdir(parents=True)
        cases.append(Path(shutil.copy(SHARED / "ct_abdomen_3mm.nii.gz", folder / f"case{n:02d}" / "ct.nii.gz")))
    for n in range(dicom):
        cases.append(Path(shutil.copytree(SHARED / "ct_abdomen_dicom", folder / f"dicom{n:02d}" / "series")))
    return cases


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (a local cluster's worker processes, once closed)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_batch(inputs: list[Path], out: Path, workers: int) -> dict:
    """One `radview batch` run on a local cluster of ``workers`` processes."""
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    first_start: list[float] = []
    report = run_batch(inputs, MODEL, out, workers=workers, device="cpu",
                       on_start=lambda case, worker: first_start or first_start.append(time.perf_counter() - t0))
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    assert not report.failed, [c.error for c in report.failed]
    return {"workers": workers, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "cases_per_minute": round(60 * len(inputs) / seconds, 2),
            "first_case_started_s": round(first_start[0], 2), "model_loads": sorted(report.model_loads.values())}


def segment(path: Path, out: Path) -> None:
    """`radview segment PATH --model MODEL --out OUT` in this process (its report line kept off our JSON)."""
    with contextlib.redirect_stdout(io.StringIO()):
        assert radview(["segment", str(path), "--model", MODEL, "--out", str(out), "--device", "cpu"]) == 0


def timed_loop(inputs: list[Path], out: Path) -> dict:
    """`radview segment` on each input in turn, in this process."""
    out.mkdir(parents=True)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for n, path in enumerate(inputs):
        segment(path, out / f"{n}.nii.gz")
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "cases_per_minute": round(60 * len(inputs) / seconds, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nifti", type=int, default=6, help="copies of the 3 mm CT (default 6)")
    parser.add_argument("--dicom", type=int, default=2, help="copies of the DICOM series (default 2)")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        tmp = Path(tmp)
        inputs = cohort(tmp / "in", args.nifti, args.dicom)
        loop = timed_loop(inputs, tmp / "loop")
        one = timed_batch(inputs, tmp / "batch1", 1)
        two = timed_batch(inputs, tmp / "batch2", 2)
    report = {
        "cases": len(inputs), "cohort": f"{args.nifti} x ct_abdomen_3mm.nii.gz + {args.dicom} x ct_abdomen_dicom",
        "model": MODEL, "cores": os.cpu_count(),
        "load_average_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "loop_over_radview_segment": loop, "batch_1_worker": one, "batch_2_workers": two,
        "ratio_batch_1_worker_over_loop_seconds": round(one["seconds"] / loop["seconds"], 3),
        "ratio_batch_1_worker_over_loop_cpu_seconds": round(one["cpu_seconds"] / loop["cpu_seconds"], 3),
        "speedup_2_workers_over_1": round(one["seconds"] / two["seconds"], 3),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
