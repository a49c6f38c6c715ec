"""Packages radview installs outside pip's dependency resolution (nnU-Net's network builder): when one is missing,
loading a model says in one line what to install and how, and the CLI prints that line with no traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ai.formats.nnunet import NETWORK_REQUIREMENT, build_network, load_nnunet_folder
from tests.conftest import REPO
from viewer.core.errors import ModelError

#: the CLI run in a process where importing dynamic_network_architectures fails as if it were not installed
WITHOUT_NETWORK_PACKAGE = """
import sys
sys.modules["dynamic_network_architectures"] = None  # import raises ModuleNotFoundError
from viewer.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def nnunet_dataset_folder(tmp_path) -> Path:
    """The start of an nnU-Net trained-model folder: its dataset.json (enough to be recognised as one)."""
    folder = tmp_path / "Dataset001_Tiny" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    folder.mkdir(parents=True)
    (folder / "dataset.json").write_text(json.dumps({"channel_names": {"0": "CT"},
                                                     "labels": {"background": 0, "liver": 1}}))
    return folder


def test_missing_network_package_names_what_to_install_in_one_line(nnunet_dataset_folder, tmp_path):
    proc = subprocess.run([sys.executable, "-c", WITHOUT_NETWORK_PACKAGE, "segment", str(tmp_path / "ct.nii.gz"),
                           "--model", str(nnunet_dataset_folder), "--out", str(tmp_path / "labels.nii.gz")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "RADVIEW_HOME": str(tmp_path / "home")})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("radview: error: ")
    assert str(nnunet_dataset_folder) in lines[0]
    assert f"pip install --no-deps {NETWORK_REQUIREMENT}" in lines[0]
    assert not (tmp_path / "labels.nii.gz").exists()


def test_with_the_package_installed_the_same_folder_fails_on_its_content_instead(nnunet_dataset_folder):
    """The message above comes from the missing package, not from the (incomplete) folder."""
    with pytest.raises(ModelError) as err:
        load_nnunet_folder(nnunet_dataset_folder)
    assert "pip install" not in str(err.value)
    assert "plans.json" in str(err.value)


def test_the_install_hint_pins_the_version_make_venv_installs():
    makefile = (REPO / "Makefile").read_text()
    no_deps = re.search(r"^NO_DEPS_PACKAGES := (.*(?:\\\n.*)*)", makefile, re.M).group(1).replace("\\\n", " ")
    assert NETWORK_REQUIREMENT in no_deps.split()
    assert f"pip install --no-deps {NETWORK_REQUIREMENT}" in (REPO / "README.md").read_text()


def test_a_network_class_whose_own_imports_are_missing_is_a_model_error(tmp_path):
    """Primus imports timm, which radview does not install (it needs torchvision): one line naming the module."""
    pytest.importorskip("dynamic_network_architectures")
    try:
        import timm  # noqa: F401

        pytest.skip("timm is installed here")
    except ImportError:
        pass
    arch = {"network_class_name": "dynamic_network_architectures.architectures.primus.Primus", "arch_kwargs": {}}
    with pytest.raises(ModelError) as err:
        build_network(arch, 1, 2, tmp_path / "plans.json")
    message = str(err.value)
    assert "\n" not in message
    assert "timm" in message and "Primus" in message
