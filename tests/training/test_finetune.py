"""Fine-tuning from corrected masks: a new version naming its parent; the parent folder stays byte-identical."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from ai.training.finetune import finetune
from tests.training.conftest import LABELS, TINY_NETWORK, tiny_ct, tiny_model_folder
from viewer.core.errors import ModelError


def folder_digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_finetune_writes_a_new_version_and_leaves_the_parent_intact(tmp_path):
    from ai.registry import load_model

    parent = tiny_model_folder(tmp_path / "parent")
    parent_card = json.loads((parent / "model.json").read_text())
    rule = {"labels": {"spleen": {"min_component_mm3": 500}}, "chosen_on": "parent's validation"}
    (parent / "model.json").write_text(json.dumps({**parent_card, "postprocessing": rule}))
    before = folder_digest(parent)
    cases = [tiny_ct(0), tiny_ct(1)]
    steps = []
    out = finetune(str(parent), [[ct] for ct, _ in cases], [lab for _, lab in cases], tmp_path / "ft", epochs=1,
                   iterations_per_epoch=2, device="cpu", threads=1, names=["a", "b"],
                   validation=([[tiny_ct(2)[0]]], [tiny_ct(2)[1]]), progress=lambda f, m: steps.append(f))
    assert folder_digest(parent) == before
    card = json.loads((out / "model.json").read_text())
    assert card["id"] == "tiny-parent" and card["version"].startswith("1.0.0-ft.")
    assert card["parent"]["id"] == "tiny-parent" and card["parent"]["version"] == "1.0.0"
    assert card["parent"]["how"] == "finetune" and card["parent"]["folder"] == str(parent.resolve())
    assert card["parent"]["weights_sha256"] == before["model.pt"]
    runs = card["comparisons"][0]["runs"]
    assert [r["label"] for r in runs] == ["parent tiny-parent 1.0.0", f"fine-tuned {card['version']}"]
    data = {m["data"].split(":")[0] for m in card["metrics"]}
    assert data == {"fine-tuning data itself (not held out)", "held-out validation"}
    assert [c["name"] for c in card["training"]["data"]["train"]["cases"]] == ["a", "b"]
    assert card["postprocessing"]["labels"] == rule["labels"]  # the parent's rule, said to be inherited
    assert card["postprocessing"]["inherited_from"].startswith("tiny-parent 1.0.0")
    assert not (out / "checkpoint.pt").exists() and steps[-1] == 1.0
    load_model(str(out))


def test_an_ensemble_is_fine_tuned_from_every_member(tmp_path):
    """ct-abdomen-organs is an ensemble: fine-tuning starts from all of its members (every tensor by name), not from
    its first member with the others left random (which made the fine-tuned model far worse than its parent)."""
    ensemble = {"class": "MeanEnsemble", "args": {"members": [TINY_NETWORK, TINY_NETWORK]}}
    parent = tiny_model_folder(tmp_path / "parent", ensemble)
    ct, lab = tiny_ct(0)
    out = finetune(str(parent), [[ct]], [lab], tmp_path / "ft", epochs=1, iterations_per_epoch=1, device="cpu",
                   threads=1)
    record = json.loads((out / "model.json").read_text())["parent"]
    assert record["tensors_copied"] == record["copied_by_name"] == record["tensors_target"] > 0
    assert "member" not in record


def test_finetune_refuses_to_write_into_the_parent(tmp_path):
    parent = tiny_model_folder(tmp_path / "parent")
    ct, lab = tiny_ct(0)
    with pytest.raises(ModelError, match="new folder"):
        finetune(str(parent), [[ct]], [lab], parent / "v2", epochs=1)


def test_cli_maps_label_ids_by_name(tmp_path):
    from viewer.commands.finetune import labels_by_name
    from viewer.core.io.labelmap import save_labelmap

    ct, lab = tiny_ct(0)
    swapped = lab.with_array(np.select([lab.array == 1, lab.array == 2], [7, 3], 0).astype(np.uint8))
    path = tmp_path / "corrected.nii.gz"
    save_labelmap(swapped, path, {3: "Spleen", 7: "liver", 9: "gallbladder"})
    mapped = labels_by_name(path, None, ct, LABELS)
    assert np.array_equal(mapped.array, lab.array)


def test_cli_says_whether_the_labels_are_missing_or_off_the_image(tmp_path):
    from viewer.commands.finetune import labels_by_name
    from viewer.core.errors import LabelMapError
    from viewer.core.io.labelmap import save_labelmap

    ct, lab = tiny_ct(0)
    beside = np.zeros_like(lab.array)  # the right names, on a grid that overlaps the image where it holds no label
    beside[5:15, 10:20, 25:35], beside[5:15, 22:30, 22:30] = 1, 2
    elsewhere = tmp_path / "elsewhere.nii.gz"
    save_labelmap(lab.with_array(beside, origin=np.asarray(lab.origin) + (60.0, 0.0, 0.0)), elsewhere, LABELS)
    off_image = r"its liver, spleen lie outside the image .* \(is it the label map of another image\?\)"
    with pytest.raises(LabelMapError, match=off_image) as caught:
        labels_by_name(elsewhere, None, ct, LABELS)
    assert str(elsewhere) in str(caught.value)
    other = tmp_path / "other.nii.gz"  # on the image, but no name the model knows
    save_labelmap(lab, other, {1: "gallbladder", 2: "pancreas"})
    with pytest.raises(LabelMapError, match=r"none of the model's labels \(liver, spleen\) is in this label map"):
        labels_by_name(other, None, ct, LABELS)


def test_cli_refuses_a_model_that_cannot_be_fine_tuned_before_reading_the_cases(tmp_path, capsys):
    """A TorchScript model (any model that is not a built-in segmentation model) is refused first, naming its
    folder, not after the user has fixed label names for it; the images named are not even opened."""
    from tests.ai.conftest import write_model
    from viewer.cli import main

    scripted = write_model(tmp_path / "scripted", fmt="torchscript")
    missing = tmp_path / "never-read.nii.gz"
    code = main(["finetune", "--model", str(scripted), "--images", str(missing), "--labels", str(missing),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "fine-tuning needs a radview built-in segmentation model" in err and str(scripted) in err
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_new_version_with_a_line_per_epoch(tmp_path, capsys):
    """`radview finetune` end to end on a model folder: the new version written, one stderr line per epoch even
    when stderr is not a terminal (a log file), the parent intact."""
    from viewer.cli import main
    from viewer.core.io import save_volume
    from viewer.core.io.labelmap import save_labelmap

    parent = tiny_model_folder(tmp_path / "parent")
    before = folder_digest(parent)
    ct, lab = tiny_ct(0)
    image, labels = save_volume(ct, tmp_path / "ct.nii.gz"), save_labelmap(lab, tmp_path / "lab.nii.gz", LABELS)
    out = tmp_path / "v2"
    assert main(["finetune", "--model", str(parent), "--images", str(image), "--labels", str(labels), "--epochs",
                 "2", "--device", "cpu", "--threads", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"wrote {out} (tiny-parent 1.0.0-ft." in captured.out and "parent tiny-parent 1.0.0" in captured.out
    assert [line.split(" loss ")[0] for line in captured.err.splitlines() if " loss " in line] == ["epoch 1/2",
                                                                                                 "epoch 2/2"]
    assert folder_digest(parent) == before
