"""Run reader cases in runner processes, so that a crash (abort, segfault, Rust panic) is a result.

Used by the corpus and fuzz tests as ``python -m tests.io.isolated_cases MODE``: a runner imports radview
once and runs its cases (JSON on stdin) one after another, as the viewer does, native decoders in radview's
own decoder processes; it prints one JSON result per case as the case ends. A runner that dies gives that
case a 'crash' result saying how, and a new runner goes on with the next case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
#: Seconds a single case may take before it counts as hung.
CASE_TIMEOUT = 60


def _error(err: BaseException) -> dict:
    from viewer.core.errors import RadviewError

    return {
        "outcome": "typed" if isinstance(err, RadviewError) else "untyped",
        "error_type": type(err).__name__,
        "message": str(err)[:400],
    }


def load_case(path: str) -> dict:
    """load_volume(path): 'ok' with what was read, or 'typed' / 'untyped' with the error."""
    from viewer.core.io import load_volume

    try:
        vol = load_volume(path)
    except BaseException as err:  # noqa: BLE001 - what escapes is the result
        return _error(err)
    return {
        "outcome": "ok",
        "shape": list(vol.array.shape),
        "dtype": str(vol.array.dtype),
        "is_rgb": vol.is_rgb,
        "photometric": vol.meta.get("photometric"),
        "spacing": list(vol.spacing),
        "spacing_source": vol.meta.get("spacing_source"),
        "warnings": list(vol.warnings),
        "checksum": float(np.asarray(vol.array, dtype=np.float64).sum()),
    }


def _pydicom_reference(path: str) -> np.ndarray | None:
    """pydicom's decoded pixels as radview should hold them (RGB for colour, rescaled grey), or None
    when pydicom cannot decode the file."""
    import pydicom
    from pydicom.pixels import apply_color_lut, pixel_array

    try:
        ds = pydicom.dcmread(path)
        arr = pixel_array(ds)
    except BaseException:  # noqa: BLE001 - pydicom failing is the answer
        return None
    if ds.get("PhotometricInterpretation") == "PALETTE COLOR":
        return apply_color_lut(arr, ds)
    if arr.ndim == 3 and arr.shape[-1] == 3 and int(ds.get("SamplesPerPixel", 1)) == 3:
        return arr
    if ds.get("Modality") == "RTDOSE":
        return arr * float(ds.get("DoseGridScaling", 1) or 1)
    source = ds
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared and "PixelValueTransformationSequence" in shared[0]:  # enhanced objects: same for all frames here
        source = shared[0].PixelValueTransformationSequence[0]
    slope = float(source.get("RescaleSlope", 1) or 1)
    intercept = float(source.get("RescaleIntercept", 0) or 0)
    return arr * slope + intercept if (slope, intercept) != (1.0, 0.0) else arr


def corpus_case(path: str) -> dict:
    """Whether pydicom decodes the file, what radview does with it, and whether their pixels agree."""
    ref = _pydicom_reference(path)
    result = load_case(path)
    result["pydicom_decodes"] = ref is not None
    if ref is not None and result["outcome"] == "ok":
        from viewer.core.io import load_volume

        vol = load_volume(path)
        frames = vol.array.reshape((-1, *vol.array.shape[1:]))
        ref = ref.reshape(frames.shape) if ref.size == frames.size else ref
        # frames may be reordered by position: compare them as sorted per-frame sums plus one exact frame
        same_shape = ref.shape == frames.shape
        result["pixels_equal_pydicom"] = bool(
            same_shape
            and np.allclose(np.sort(ref.reshape(len(ref), -1).sum(axis=1)),
                            np.sort(frames.reshape(len(frames), -1).astype(np.float64).sum(axis=1)), rtol=1e-5)
            and (len(frames) > 1 or np.allclose(ref[0], frames[0], rtol=1e-5, atol=1e-3))
        )
    return result


def abort_case(case: str) -> dict:
    """For the runner's own test: abort the process when ``case`` says so, else answer 'ok'."""
    if case == "abort":
        os.abort()
    return {"outcome": "ok"}


MODES = {"load": load_case, "corpus": corpus_case, "abort": abort_case}


def logging_off() -> None:
    """Silence expected warnings (damaged files produce many) in a case process."""
    import logging

    logging.disable(logging.CRITICAL)
    warnings.simplefilter("ignore")


def _died(returncode: int) -> dict:
    """The result of a case whose runner died before answering (killed by a signal, or exit code N)."""
    if returncode < 0:
        try:
            how = f"signal {signal.Signals(-returncode).name}"
        except ValueError:  # a real-time signal has no name
            how = f"signal {-returncode}"
        if -returncode == signal.SIGALRM:
            how += f": the case took over {CASE_TIMEOUT} s"
    else:
        how = f"exit {returncode}"
    return {"outcome": "crash", "error_type": "crash", "message": f"case process died ({how})"}


def run_batch(mode: str, cases: list[str]) -> list[dict]:
    """``cases`` of ``mode``, in order, in a runner interpreter; one result per case.

    When the runner dies in a case, that case's result says how, and a new runner takes the cases after it.
    """
    results: list[dict] = []
    while len(results) < len(cases):
        remaining = cases[len(results):]
        proc = subprocess.run(
            [sys.executable, "-m", "tests.io.isolated_cases", mode],
            input=json.dumps(remaining), capture_output=True, text=True, cwd=REPO,
            timeout=CASE_TIMEOUT * len(remaining) + 60, env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        answered = [json.loads(line) for line in proc.stdout.splitlines()]
        results += answered
        if len(answered) < len(remaining):
            if proc.returncode == 0:
                raise RuntimeError(f"case runner ended early without an error: {proc.stderr[-2000:]}")
            results.append(_died(proc.returncode))
    return results


def run_parallel(mode: str, cases: list[str], workers: int = 2) -> list[dict]:
    """``cases`` split into ``workers`` batches run side by side; results in case order."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [cases[k::workers] for k in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        done = list(pool.map(lambda b: run_batch(mode, b), batches))
    out: list[dict] = [{}] * len(cases)
    for k, results in enumerate(done):
        for j, result in enumerate(results):
            out[k + j * workers] = {"case": batches[k][j], **result}
    return out


def main() -> None:
    """The runner: the cases (JSON on stdin) one after another, one JSON result line each as it finishes.

    Results go to the original stdout; anything a library prints goes to stderr. A case that runs over
    CASE_TIMEOUT is ended by SIGALRM (the default action: the runner dies, which its parent reports).
    """
    fn = MODES[sys.argv[1]]
    cases = json.loads(sys.stdin.read())
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    logging_off()
    for case in cases:
        signal.alarm(CASE_TIMEOUT)
        result = fn(case)
        signal.alarm(0)
        results.write(json.dumps(result) + "\n")
        results.flush()


if __name__ == "__main__":
    main()
