"""Batch fixtures: real CT cases, `radview segment`'s output on them, a real Dask scheduler with two workers."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from viewer.cli import main

DASK = Path(sys.executable).parent / "dask"


def copy_ct(shared_data: Path, path: Path) -> Path:
    """A copy of the shared 3 mm abdominal CT at ``path`` (a small real case: 122 x 101 x 30 voxels)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(shared_data / "ct_abdomen_3mm.nii.gz", path))


def segment_reference(image: Path, out: Path) -> Path:
    """`radview segment IMAGE --model abdomen_ct_unet --out OUT` run here: what each batch case must equal."""
    out.parent.mkdir(parents=True, exist_ok=True)
    assert main(["segment", str(image), "--model", "abdomen_ct_unet", "--out", str(out), "--device", "cpu"]) == 0
    return out


def assert_same_as_segment(batch_out: Path, reference: Path) -> None:
    """The batch's label map and its label names file are byte-identical to `radview segment`'s."""
    assert batch_out.read_bytes() == reference.read_bytes()
    names = batch_out.with_name(batch_out.name.replace(".nii.gz", ".json"))
    assert names.read_bytes() == reference.with_name(reference.name.replace(".nii.gz", ".json")).read_bytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "dask scheduler exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"dask scheduler not listening on {port} after {timeout} s")


@pytest.fixture
def dask_cluster(tmp_path):
    """A real `dask scheduler` and two `dask worker` processes (no nanny: a killed worker stays dead) on free
    local ports, stopped after the test. ``workers``: {worker address: its Popen}."""
    logs = tmp_path / "dask-logs"
    logs.mkdir()
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = []

    def start(name: str, args: list[str]) -> subprocess.Popen:
        with open(logs / f"{name}.log", "w") as log:
            proc = subprocess.Popen([str(DASK), *args], stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
        procs.append(proc)
        return proc

    try:
        _wait_listening(port, start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                                  "--no-dashboard"]))
        workers = {}
        for name in ("w1", "w2"):
            worker_port = free_port()
            workers[f"tcp://127.0.0.1:{worker_port}"] = start(name, [
                "worker", address, "--name", name, "--nthreads", "1", "--no-nanny", "--no-dashboard",
                "--host", "127.0.0.1", "--worker-port", str(worker_port), "--local-directory", str(tmp_path / name)])
        yield SimpleNamespace(address=address, workers=workers, logs=logs)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)  # a worker may linger on SIGTERM; nothing of it is needed
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
