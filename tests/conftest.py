"""Shared fixtures: paths to the real shared data, pydicom's test files, the generated demo study."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
ARTIFACTS = REPO / "tests" / "_artifacts"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent dies
#: The test screen (width x height x depth): the GUI tests' screenshots and window sizes assume it.
TEST_SCREEN = "1600x1000x24"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data: real CT DICOM (JPEG 2000), CT NIfTI with 41 reference labels, label names."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"shared data not found at {SHARED_DATA} (CI places ../shared beside the clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def pydicom_file():
    """Path of one of pydicom's installed real test files, e.g. pydicom_file('CT_small.dcm')."""
    from pydicom.data import get_testdata_file

    def get(name: str) -> Path:
        path = get_testdata_file(name)
        if path is None:
            pytest.fail(f"pydicom test file {name} not installed")
        return Path(path)

    return get


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder for screenshots and other outputs a person should look at (kept after the run)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory):
    """The built-in demo study, generated once per test session (see viewer.core.phantom)."""
    from viewer.core.phantom import write_demo_study

    return write_demo_study(tmp_path_factory.mktemp("demo"))


@pytest.fixture(autouse=True)
def _radview_home(tmp_path, monkeypatch):
    """Every test gets its own RADVIEW_HOME so journals/settings never touch the user's."""
    monkeypatch.setenv("RADVIEW_HOME", str(tmp_path / "radview_home"))


def pytest_configure(config):
    """Each process that runs tests draws its windows on an X server of its own (Linux): never on the user's
    desktop, and two pytest-xdist workers on one display would see each other's windows, pointer and focus.
    The xdist controller runs no test and starts none. Without Xvfb the tests use the display they are given."""
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    controller = getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER")
    if sys.platform.startswith("linux") and shutil.which("Xvfb") and not controller:
        os.environ["DISPLAY"] = _private_x_display()


def _private_x_display() -> str:
    """Start an Xvfb (screen :data:`TEST_SCREEN`) that the kernel stops when this process ends, and return its
    display name. It must outlive the process: VTK's Xlib connections abort a process whose X server goes away
    first (see pytest_unconfigure)."""
    import ctypes
    import signal
    import subprocess

    libc = ctypes.CDLL(None, use_errno=True)
    read, write = os.pipe()
    subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", TEST_SCREEN, "-nolisten", "tcp"],
                     pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     preexec_fn=lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM))
    os.close(write)
    with os.fdopen(read, "rb") as ready:  # Xvfb writes its display number once it accepts connections
        number = ready.readline().strip()
    if not number:
        raise RuntimeError("Xvfb did not start (is the xvfb package installed?)")
    return f":{number.decode()}"


def pytest_sessionfinish(session, exitstatus):
    session.config._radview_exitstatus = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without CPython's final garbage collection once every result is reported.

    Tearing down PySide6 and VTK objects at interpreter exit can abort the process (a refcount bug in
    the bindings: "bool_dealloc" during finalization) after all tests passed, turning a green run red.
    """
    status = getattr(config, "_radview_exitstatus", None)
    if status is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
