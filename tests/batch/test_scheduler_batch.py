"""`radview batch --scheduler`: an existing Dask scheduler's workers, a worker killed mid-run, unreachable scheduler."""

from __future__ import annotations

import csv
import os
import signal

import pytest

from tests.batch.conftest import assert_same_as_segment, copy_ct, free_port, segment_reference
from viewer.batch import cluster
from viewer.batch.cohort import run_batch
from viewer.cli import main


@pytest.mark.slow
def test_a_worker_killed_mid_case_loses_nothing(tmp_path, shared_data, dask_cluster):
    """SIGKILL to one of two `dask worker` processes as soon as it starts a case: every case still finishes
    (byte-identical to `radview segment`), on the surviving worker; the interrupted case, and only it, is
    reported retried (summary.csv too); the survivor loaded the model once for all its cases."""
    inputs = [copy_ct(shared_data, tmp_path / "in" / f"ct{n}.nii.gz") for n in range(5)]
    killed = {}

    def kill_first_start(case: int, worker: str) -> None:
        if not killed and worker in dask_cluster.workers:
            dask_cluster.workers[worker].send_signal(signal.SIGKILL)
            killed.update(case=case, worker=worker)

    report = run_batch(inputs, "abdomen_ct_unet", tmp_path / "out", scheduler=dask_cluster.address, workers=2,
                       device="cpu", on_start=kill_first_start)
    assert killed and dask_cluster.workers[killed["worker"]].wait(timeout=30) == -signal.SIGKILL
    survivor = next(w for w in dask_cluster.workers if w != killed["worker"])
    assert report.failed == []
    assert [(c.index, c.retried) for c in report.retried] == [(killed["case"], 1)]
    assert {c.worker for c in report.cases} == {survivor}
    assert report.model_loads == {survivor: 1}  # 5 cases, one load
    reference = segment_reference(inputs[0], tmp_path / "ref" / "ct.nii.gz")
    for n in range(5):
        assert_same_as_segment(tmp_path / "out" / f"ct{n}.nii.gz", reference)
    with open(report.summary, newline="") as f:
        retried = {r["input"]: r["retried"] for r in csv.DictReader(f)}
    assert retried == {str(p): "1" if n == killed["case"] else "0" for n, p in enumerate(inputs)}


@pytest.mark.slow
def test_cli_runs_on_an_existing_scheduler(tmp_path, shared_data, dask_cluster, capsys):
    ct = copy_ct(shared_data, tmp_path / "in" / "ct.nii.gz")
    assert main(["batch", "--model", "abdomen_ct_unet", "--out", str(tmp_path / "out"), "--scheduler",
                 dask_cluster.address, "--device", "cpu", str(ct)]) == 0
    assert "segmented 1 of 1 case(s)" in capsys.readouterr().out
    assert_same_as_segment(tmp_path / "out" / "ct.nii.gz", segment_reference(ct, tmp_path / "ref" / "ct.nii.gz"))
    assert all(proc.poll() is None for proc in dask_cluster.workers.values())  # the cluster's workers keep running


def test_unreachable_scheduler_is_one_clear_line(tmp_path, shared_data, capsys, monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    ct = copy_ct(shared_data, tmp_path / "ct.nii.gz")
    assert main(["batch", "--model", "abdomen_ct_unet", "--out", str(tmp_path / "out"), "--scheduler", address,
                 str(ct)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"radview: error: {address}: cannot reach the Dask scheduler") and err.count("\n") == 1
    assert os.listdir(tmp_path / "out") == []
