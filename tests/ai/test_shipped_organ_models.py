"""The shipped abdominal CT organ models: load by id, exact label names, Dice floors on the shared labelled CT and
on held-out generated CTs, the same organs on the real DICOM series acquired otherwise, and the attention model's
gate coefficients."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ai.registry import find_model, load_model

MODELS = ("ct-abdomen-organs", "ct-abdomen-organs-attention", "ct-abdomen-organs-gan")
#: the label names the issue requires (lower case, exact)
REQUIRED = {"liver", "spleen", "kidney_left", "kidney_right", "stomach", "aorta"}
#: Dice floors per model, below the measured values (see each card) by a margin for CPU/BLAS differences.
#: Shared CT (a TRAINING case): U-Net 1.2.0 liver 0.95, spleen 0.96, kidneys 0.93 / 0.92, stomach 0.92, aorta 0.87;
#: attention 1.2.0 liver 0.97, spleen 0.97, kidneys 0.95 / 0.93, stomach 0.95, aorta 0.87;
#: GAN 1.1.0 liver 0.95, spleen 0.96, kidneys 0.95 / 0.95, stomach 0.93, aorta 0.86.
SHARED_CT_FLOORS = {
    "ct-abdomen-organs": {"liver": 0.9, "spleen": 0.9, "kidney_left": 0.85, "kidney_right": 0.85, "stomach": 0.85,
                          "aorta": 0.8},
    "ct-abdomen-organs-attention": {"liver": 0.9, "spleen": 0.9, "kidney_left": 0.85, "kidney_right": 0.85,
                                    "stomach": 0.85, "aorta": 0.8},
    "ct-abdomen-organs-gan": {"liver": 0.9, "spleen": 0.9, "kidney_left": 0.85, "kidney_right": 0.85,
                              "stomach": 0.85, "aorta": 0.8},
}
#: The four held-out generated cases: U-Net 1.2.0 liver 0.95, spleen 0.89, kidneys 0.88 / 0.93, stomach 0.86, aorta
#: 0.88; attention 1.2.0 liver 0.96, spleen 0.89, kidneys 0.82 / 0.89, stomach 0.86, aorta 0.88;
#: GAN 1.1.0 liver 0.95, spleen 0.87, kidneys 0.88 / 0.91, stomach 0.84, aorta 0.88
GENERATED_FLOORS = {
    "ct-abdomen-organs": {"liver": 0.9, "spleen": 0.8, "kidney_left": 0.75, "kidney_right": 0.8, "stomach": 0.75,
                          "aorta": 0.75},
    "ct-abdomen-organs-attention": {"liver": 0.9, "spleen": 0.8, "kidney_left": 0.65, "kidney_right": 0.75,
                                    "stomach": 0.8, "aorta": 0.8},
    "ct-abdomen-organs-gan": {"liver": 0.9, "spleen": 0.8, "kidney_left": 0.75, "kidney_right": 0.8,
                              "stomach": 0.75, "aorta": 0.75},
}
#: The demo study (`make demo`, phantom version 2): U-Net 1.3.0 liver 0.98, spleen 0.76, kidneys 0.96 / 0.95, aorta
#: 0.91; attention liver 0.98, spleen 0.79, kidneys 0.96 / 0.95, aorta 0.92; GAN liver 0.97, spleen 0.59, kidneys
#: 0.95 / 0.94, aorta 0.91 (its spleen is a plain ellipsoid, not a real spleen's crescent).
DEMO_FLOORS = {"liver": 0.9, "kidney_left": 0.85, "kidney_right": 0.85, "aorta": 0.85}
DEMO_SPLEEN_FLOORS = {"ct-abdomen-organs": 0.65, "ct-abdomen-organs-attention": 0.65, "ct-abdomen-organs-gan": 0.5}
NAMES = "totalsegmentator_total_labels.json"
#: The real DICOM series (another patient, no labels) changed as another scanner or protocol would: liver and spleen
#: agreement with the series' own segmentation, measured 0.97-0.995 (ct-abdomen-organs 1.3.0), 0.94-0.995 (all three).
ACQUISITION_FLOOR = 0.9
#: held-out generated cases: seeds no config trains or validates on
HELD_OUT = [{"kind": "real_ct_synth", "seeds": [5000, 5001], "image": "ct_abdomen_3mm.nii.gz",
             "labels": "ct_abdomen_3mm_labels.nii.gz", "names": NAMES},
            {"kind": "abdomen_ct_phantom", "seeds": [5000, 5001]}]


@pytest.fixture(scope="module")
def labels() -> dict[int, str]:
    return load_model(MODELS[0]).card.labels


def dice_per_label(model_id: str, case, labels: dict[int, str]) -> dict[str, float]:
    from ai.engine import run_segmentation

    predicted = run_segmentation(load_model(model_id), case.images, device="cpu").labels.array
    truth = case.labels.array
    return {name: 2 * float(((predicted == k) & (truth == k)).sum()) / max(int((predicted == k).sum())
                                                                          + int((truth == k).sum()), 1)
            for k, name in labels.items() if k}


@pytest.mark.parametrize("model_id", MODELS)
def test_model_loads_by_id_with_the_exact_labels_and_an_honest_card(model_id):
    model = load_model(model_id)
    names = set(model.card.labels.values()) - {"background"}
    assert REQUIRED <= names and all(n == n.lower() for n in names)
    assert model.card.labels[0] == "background" and model.card.mirror_axes == []  # no left-right flips
    folder = find_model(model_id)
    weights = folder / model.card.weights
    assert weights.stat().st_size < 10 * 2**20
    import torch

    tensors = torch.load(weights, weights_only=True).values()
    assert {t.dtype for t in tensors if t.is_floating_point()} == {torch.float16}
    card = json.loads((folder / "model.json").read_text())
    assert card["metrics"] and all(m["data"] for m in card["metrics"])  # every metric says what it was measured on


@pytest.mark.parametrize("model_id", MODELS)
def test_model_scores_above_its_floor_on_the_shared_labelled_ct(model_id, shared_data, labels):
    from ai.training.datasets import load_dataset

    (case,) = load_dataset([{"kind": "files", "images": ["ct_abdomen_3mm.nii.gz"],
                             "labels": "ct_abdomen_3mm_labels.nii.gz", "names": NAMES}], labels, shared_data)
    scores = dice_per_label(model_id, case, labels)
    for name, floor in SHARED_CT_FLOORS[model_id].items():
        assert scores[name] >= floor, (name, scores)


@pytest.mark.parametrize("model_id", MODELS)
def test_model_scores_above_its_floor_on_held_out_generated_cts(model_id, shared_data, labels):
    from ai.training.datasets import load_dataset

    cases = load_dataset(HELD_OUT, labels, shared_data)
    scores = [dice_per_label(model_id, case, labels) for case in cases]
    for name, floor in GENERATED_FLOORS[model_id].items():
        assert np.mean([s[name] for s in scores]) >= floor, (name, scores)


@pytest.fixture(scope="module")
def demo_case(labels):
    """The demo study's CT with its truth in the models' label ids."""
    from ai.training.cases import Case
    from viewer.core.phantom import LABEL_NAMES, make_phantom

    demo = make_phantom(0)
    ours = {name: k for k, name in labels.items()}
    truth = np.zeros_like(demo.labels.array)
    for k, name in LABEL_NAMES.items():
        if name in ours:
            truth[demo.labels.array == k] = ours[name]
    return Case("demo", [demo.ct], demo.labels.with_array(truth))


@pytest.mark.parametrize("model_id", MODELS)
def test_model_finds_the_organs_of_the_demo_study(model_id, labels, demo_case):
    """What a new user sees first (`make demo`, then Run): the organs, not the whole body called liver."""
    scores = dice_per_label(model_id, demo_case, labels)
    for name, floor in {**DEMO_FLOORS, "spleen": DEMO_SPLEEN_FLOORS[model_id]}.items():
        assert scores[name] >= floor, (name, scores)


@pytest.mark.parametrize("model_id", MODELS)
def test_grad_cam_of_the_liver_lies_in_the_liver(model_id, shared_data, labels):
    """Issue 12's check, on the shared labelled CT: most of Grad-CAM's top 1% for liver is inside the liver. The
    map is taken after the feature layer's normalisation and activation; before them (the raw convolution, under
    an instance norm) the Attention U-Net's map lit the air around the body: 0.001 inside."""
    from ai.explain import grad_cam
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_labelmap

    ct = load_volume(shared_data / "ct_abdomen_3mm.nii.gz")
    reference = load_labelmap(shared_data / "ct_abdomen_3mm_labels.nii.gz", reference=ct).array
    liver = {name: k for k, name in json.loads((shared_data / NAMES).read_text()).items()}["liver"]
    cam = grad_cam(load_model(model_id), [ct], {name: k for k, name in labels.items()}["liver"]).array
    top = (cam >= np.quantile(cam, 0.99)) & (cam > 0)
    assert top.sum() >= 0.005 * cam.size and (reference[top] == int(liver)).mean() >= 0.9


def test_attention_model_returns_gate_coefficients(shared_data):
    import torch
    from monai.networks.nets import AttentionUnet

    from ai.attention import attention_gates, gate_maps
    from ai.engine import preprocess
    from viewer.core.io import load_volume

    model = load_model("ct-abdomen-organs-attention")
    assert isinstance(model.network, AttentionUnet)
    x, _ = preprocess(model, [load_volume(shared_data / "ct_abdomen_3mm.nii.gz")])
    patch = torch.from_numpy(np.ascontiguousarray(x[None, :, :16, :64, :64]))  # sides divisible by 2**3
    with torch.inference_mode():
        logits, gates = gate_maps(model.network.float().eval(), patch)
    assert logits.shape == (1, len(model.card.labels), 16, 64, 64)
    assert set(gates) == set(attention_gates(model.network)) and len(gates) == 3
    for coefficients in gates.values():
        assert coefficients.shape == (1, 1, 16, 64, 64)
        assert 0 <= float(coefficients.min()) < float(coefficients.max()) <= 1  # weights in 0..1, not constant


@pytest.mark.parametrize("model_id", MODELS)
def test_organs_of_the_real_series_hold_when_it_is_acquired_otherwise(model_id, shared_data):
    """The maintainers' DICOM series (never trained on, no labels) with 4 mm instead of 2 mm slices, 25 HU of noise,
    or every HU 40 higher (another calibration or contrast timing): the liver and spleen agree with those of the
    series as acquired (Dice >= ACQUISITION_FLOOR on its grid), as a model that learnt anatomy, not this scan, must."""
    from ai.engine import run_segmentation
    from viewer.core.io import load_volume
    from viewer.core.resample import resample_to
    from viewer.core.volume import Volume

    series = load_volume(shared_data / "ct_abdomen_dicom")
    model = load_model(model_id)
    acquired = run_segmentation(model, [series], device="cpu").labels
    lo, hi = series.world_bounds()
    spacing = (*series.spacing[:2], 4.0)
    size = np.maximum(np.round((hi - lo) / spacing).astype(int), 1)
    thick = resample_to(series, Volume(np.zeros(size[::-1], np.uint8), spacing, tuple(lo + np.array(spacing) / 2)),
                        default=-1024)
    values = series.array.astype(np.float32)
    noisy = series.with_array(values + np.random.default_rng(0).normal(0, 25, values.shape).astype(np.float32))
    variants = {"4 mm slices": thick, "25 HU noise": noisy, "+40 HU": series.with_array(values + 40)}
    for name, image in variants.items():
        labels = resample_to(run_segmentation(model, [image], device="cpu").labels, acquired, nearest=True).array
        for k in (k for k, n in model.card.labels.items() if n in ("liver", "spleen")):
            organ = model.card.labels[k]
            a, b = labels == k, acquired.array == k
            assert b.sum() > 10000, organ  # the series holds the organ
            dice = 2 * (a & b).sum() / (a.sum() + b.sum())
            assert dice >= ACQUISITION_FLOOR, f"{model_id} {organ} with {name}: Dice {dice:.3f} against the series"
