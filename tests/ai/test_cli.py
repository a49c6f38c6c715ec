"""`radview models / segment / detect` end to end with the built-in model."""

from __future__ import annotations

import json

import numpy as np

from viewer.cli import main
from viewer.core.io import load_volume, save_volume
from viewer.core.phantom import make_phantom


def test_models_json_lists_the_builtin_model(capsys):
    assert main(["models", "--json"]) == 0
    models = {m["id"]: m for m in json.loads(capsys.readouterr().out)["models"]}
    assert models["abdomen_ct_unet"]["modalities"] == ["CT"]
    assert models["abdomen_ct_unet"]["labels"]["1"] == "liver"


def test_segment_and_detect_write_outputs_on_the_image_grid(tmp_path, capsys):
    ct = make_phantom(3).ct
    image = tmp_path / "ct.nii.gz"
    save_volume(ct, image)
    out = tmp_path / "labels.nii.gz"
    assert main(["segment", str(image), "--model", "abdomen_ct_unet", "--out", str(out), "--device", "cpu"]) == 0
    labels = load_volume(out)
    source = load_volume(image)
    assert labels.same_grid(source, tol=1e-4) and set(np.unique(labels.array)) >= {0, 1, 2}
    found = tmp_path / "detections.json"
    assert main(["detect", str(image), "--model", "abdomen_ct_unet", "--out", str(found)]) == 0
    doc = json.loads(found.read_text())
    assert doc["coordinates"] == "LPS mm"
    liver = [d for d in doc["detections"] if d["name"] == "liver"]
    assert liver and all(len(d["center_mm"]) == 3 and len(d["box_mm"]) == 2 for d in liver)
    lo, hi = source.world_bounds()
    assert np.all(np.asarray(liver[0]["center_mm"]) >= lo) and np.all(np.asarray(liver[0]["center_mm"]) <= hi)


def test_unknown_model_and_missing_gpu_exit_with_a_message(tmp_path, capsys):
    import torch

    image = tmp_path / "ct.nii.gz"
    save_volume(make_phantom(3).ct, image)
    assert main(["segment", str(image), "--model", "nope", "--out", str(tmp_path / "x.nii.gz")]) == 2
    assert "no model with id 'nope'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["segment", str(image), "--model", "abdomen_ct_unet", "--out", str(tmp_path / "x.nii.gz"),
                     "--device", "cuda"]) == 2
        assert "no CUDA" in capsys.readouterr().err
    assert not (tmp_path / "x.nii.gz").exists()
