"""PACS speed: radview's find / get / store against a real Orthanc, with dcmtk's findscu / getscu / storescu as
the peer on the same server and the same files.

A generated CT series (100 slices of 256 x 256, Explicit VR Little Endian, ~13 MB) is stored, found and
retrieved; radview runs in-process through viewer.pacs (DIMSE; DICOMweb too, for reference), dcmtk as the
commands a user would type (their few milliseconds of process start included). Best of REPEATS rounds, the
contenders taking turns in each round. Prints JSON; ratio = peer time / radview time (> 1: radview is faster).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.pacs.orthanc import running_orthanc  # noqa: E402
from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series  # noqa: E402
from viewer.core.volume import Volume  # noqa: E402
from viewer.pacs import StudyQuery, connect  # noqa: E402

REPEATS = 3
SLICES, SIZE = 100, 256


def best(fn, setup=None) -> float:
    """Best wall time of REPEATS calls of ``fn`` (``setup`` runs untimed before each)."""
    times = []
    for _ in range(REPEATS):
        if setup:
            setup()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def run(cmd: list[str]) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


def main() -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench_pacs_"))
    try:
        rng = np.random.default_rng(0)
        hu = rng.integers(-1000, 1500, (SLICES, SIZE, SIZE)).astype(np.int16)
        vol = Volume(hu, spacing=(0.8, 0.8, 2.0), modality="CT", units="HU", description="bench CT")
        study = DicomStudy("radview-bench-pacs", "Bench^Pacs", "BENCH-PACS")
        files = write_dicom_series(vol, work / "series", study=study)
        study_uid = study.uid("study")
        with running_orthanc(work / "orthanc") as server:
            host, port, aet = "127.0.0.1", str(server.dicom_port), server.aet
            dimse, web = connect(server.dimse), connect(server.dicomweb)
            out = work / "out"

            def clear_out():
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()

            timings = {
                "store_radview_s": best(lambda: dimse.store([work / "series"])),
                "store_storescu_s": best(lambda: run(["storescu", "-aet", "RADVIEW", "-aec", aet, "+sd", host, port,
                                                      str(work / "series")])),
                "store_radview_stowrs_s": best(lambda: web.store([work / "series"])),
                "find_radview_s": best(lambda: dimse.find_studies(StudyQuery(patient_id="BENCH-PACS"))),
                "find_findscu_s": best(lambda: run(["findscu", "-S", "-aet", "RADVIEW", "-aec", aet, "-k",
                                                    "QueryRetrieveLevel=STUDY", "-k", "PatientID=BENCH-PACS", "-k",
                                                    "StudyInstanceUID", "-k", "StudyDate", "-k", "PatientName",
                                                    "-k", "StudyDescription", "-k", "ModalitiesInStudy", host, port])),
                "find_radview_qidors_s": best(lambda: web.find_studies(StudyQuery(patient_id="BENCH-PACS"))),
                "get_radview_s": best(lambda: dimse.retrieve(study_uid, out), clear_out),
                "get_getscu_s": best(lambda: run(["getscu", "-S", "-aet", "RADVIEW", "-aec", aet, "-k",
                                                  "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                                                  "-od", str(out), host, port]), clear_out),
                "get_radview_wadors_s": best(lambda: web.retrieve(study_uid, out), clear_out),
            }
        result = {
            "dataset": f"generated CT, {SLICES} x {SIZE} x {SIZE} int16, {len(files)} files, "
                       f"{sum(f.stat().st_size for f in files) / 1e6:.1f} MB, Explicit VR LE; Orthanc on localhost",
            "peer": "dcmtk findscu / getscu / storescu (process start included)",
            **{k: round(v, 4) for k, v in timings.items()},
            "ratio_store_storescu_over_radview": round(timings["store_storescu_s"] / timings["store_radview_s"], 3),
            "ratio_find_findscu_over_radview": round(timings["find_findscu_s"] / timings["find_radview_s"], 3),
            "ratio_get_getscu_over_radview": round(timings["get_getscu_s"] / timings["get_radview_s"], 3),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
