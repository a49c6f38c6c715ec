"""A wheel install (`pip install .`, not editable) carries resources/: the built-in models and presets load from it.

The wheel is built from a copy of the checkout's files and installed with --no-deps into a fresh venv that sees
the project's already-installed dependencies (a .pth line naming this venv's site-packages) but not the checkout;
everything runs from a temporary working directory, so only the installed radview can answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

#: resources/ files that are not runtime data: the package marker (installed as a module) and the README's image
NOT_DATA = {"__init__.py", "screenshot.png"}

INSTALLED_CHECK = """
import json, sys
import ai.registry, viewer
from ai.registry import BUILTIN_DIR, list_models, load_model
from viewer.core.presets import window_presets

model = load_model("abdomen_ct_unet")
print(json.dumps({
    "viewer": viewer.__file__, "builtin_dir": str(BUILTIN_DIR), "sys_path": sys.path,
    "card": {"id": model.card.id, "labels": {str(k): v for k, v in model.card.labels.items()}},
    "weights": sum(int(p.numel()) for p in model.network.parameters()),
    "presets": sorted(window_presets()),
}))
"""


def _checkout_copy(dest: Path) -> Path:
    """The checkout's tracked and not-ignored files (as they are in the working tree) copied to ``dest``."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv holding radview installed from a wheel of this checkout."""
    root = tmp_path_factory.mktemp("wheel_install")
    src = _checkout_copy(root / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(src)],
                   check=True, capture_output=True, cwd=root)
    (wheel,) = (root / "dist").glob("radview-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                  check=True, capture_output=True, text=True).stdout.strip())
    # the dependencies of this venv, appended after the new venv's own site-packages (no radview there:
    # the editable install's finder is activated by a .pth file, which a .pth-added folder does not run)
    (purelib / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True,
                   capture_output=True, cwd=root)
    return env_dir / "bin"


def _run(installed: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run a program of the installed venv from an empty folder, without the checkout on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["RADVIEW_HOME"] = str(tmp_path / "home")  # no user models
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run([str(installed / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_wheel_install_lists_the_builtin_models(installed, tmp_path):
    proc = _run(installed, "radview", "models", "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    ids = {m["id"] for m in json.loads(proc.stdout)["models"]}
    assert ids == {p.name for p in (REPO / "resources" / "models").iterdir() if (p / "model.json").is_file()}


def test_wheel_install_loads_a_builtin_model_and_presets_from_the_installed_package(installed, tmp_path):
    proc = _run(installed, "python", "-c", INSTALLED_CHECK, tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    venv_dir = installed.parent.resolve()
    assert Path(out["viewer"]).resolve().is_relative_to(venv_dir)  # the wheel's code, not the checkout's
    assert Path(out["builtin_dir"]).resolve().is_relative_to(venv_dir)
    assert not any(Path(p).resolve() == REPO for p in out["sys_path"] if p)
    card = json.loads((REPO / "resources" / "models" / "abdomen_ct_unet" / "model.json").read_text())
    assert out["card"]["id"] == card["id"] and out["card"]["labels"]["1"] == "liver"
    assert out["weights"] > 0
    presets = json.loads((REPO / "resources" / "presets" / "window_level.json").read_text())
    assert out["presets"] == sorted(presets)


def test_wheel_installs_every_runtime_file_of_resources(installed):
    python = installed / "python"
    where = subprocess.run([str(python), "-c", "from viewer.core.resources import resource_path; "
                            "print(resource_path())"], check=True, capture_output=True, text=True,
                           cwd=installed).stdout.strip()
    installed_files = {p.relative_to(where).as_posix() for p in Path(where).rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts}
    repo_files = {p.relative_to(REPO / "resources").as_posix() for p in (REPO / "resources").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts}
    assert installed_files - {"__init__.py"} == repo_files - NOT_DATA
