"""MONAI bundles: configs/metadata.json + configs/inference.json + models/model.pt (or model.ts).

The network comes from the bundle's ``network_def`` parsed with ``monai.bundle.ConfigParser``; the
model card is derived from ``metadata.json`` (name, version, ``network_data_format``) and from the
preprocessing the bundle declares, built by ConfigParser (``Orientationd`` axcodes -> orientation,
``Spacingd`` pixdim -> spacing, ``ScaleIntensityRanged`` -> CT window, ``NormalizeIntensityd`` ->
z-score, ``inferer.roi_size`` -> patch size). The card's layout is MONAI's: the network sees
(C, x, y, z) arrays as LoadImage gives them, reoriented and resampled as Orientationd + Spacingd do
(grid "monai", array_order "xyz"). Other bundle transforms are not replayed: the engine's own
preprocessing stands in for them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ai.model import TASKS, LoadedModel, ModelCard
from viewer.core.errors import ModelError


def is_bundle(folder: Path) -> bool:
    """Does ``folder`` look like a MONAI bundle?"""
    return (folder / "configs" / "metadata.json").is_file()


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(f"MONAI bundle file {path.parent.name}/{path.name} is missing", path)
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ModelError(f"not valid JSON ({err})", path) from err


def _transforms(folder: Path, config: dict) -> list:
    """The bundle's preprocessing transforms, built by MONAI's ConfigParser (references resolved); []
    when inference.json declares none."""
    if "preprocessing" not in config:
        return []
    pre = _parsed(folder, config, "preprocessing")
    return list(getattr(pre, "transforms", [pre]))


def _parsed(folder: Path, config: dict, key: str):
    """The object inference.json's ``key`` describes, built by MONAI's ConfigParser (references resolved)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser(config)
    parser.update({"bundle_root": str(folder)})
    try:
        return parser.get_parsed_content(key)
    except Exception as err:  # ConfigParser wraps import/argument errors in several types
        raise ModelError(f"cannot build {key} ({err})", folder / "configs" / "inference.json") from err


def _normalization(transforms: list) -> dict:
    """The bundle's intensity transform as a card normalisation; "none" (values as stored) without one."""
    from monai.transforms import NormalizeIntensityd, ScaleIntensityRanged

    for t in transforms:
        if isinstance(t, ScaleIntensityRanged):
            s = t.scaler
            return {"kind": "ct_window", "min": float(s.a_min), "max": float(s.a_max), "b_min": float(s.b_min),
                    "b_max": float(s.b_max), "clip": bool(s.clip)}
        if isinstance(t, NormalizeIntensityd):
            return {"kind": "zscore"}
    return {"kind": "none"}


def _spacing(transforms: list) -> list[float] | None:
    from monai.transforms import Spacingd

    for t in transforms:
        if isinstance(t, Spacingd):
            return [float(v) for v in np.atleast_1d(t.spacing_transform.pixdim)]
    return None


def _orientation(transforms: list) -> str:
    """Orientationd's axis codes; "" (the image's stored axes, as MONAI LoadImage gives them) without one."""
    from monai.transforms import Orientationd

    return next((str(t.ornt_transform.axcodes) for t in transforms if isinstance(t, Orientationd)), "")


def bundle_id(folder: Path, metadata: dict) -> str:
    """A bundle's radview id: its metadata name (else the folder's), lower case, spaces as underscores."""
    return metadata.get("name", folder.name).replace(" ", "_").lower()


def read_bundle_id(folder: Path) -> str:
    """A bundle's id from configs/metadata.json alone (its preprocessing is not built)."""
    folder = Path(folder)
    return bundle_id(folder, _read_json(folder / "configs" / "metadata.json"))


def card_from_bundle(folder: Path, metadata: dict, config: dict) -> ModelCard:
    """A radview model card for a MONAI bundle."""
    fmt = metadata.get("network_data_format", {})
    image = fmt.get("inputs", {}).get("image", {})
    pred = fmt.get("outputs", {}).get("pred", {})
    modality = str(image.get("modality", "any")).upper().replace("ANY", "any")
    task = metadata.get("task") if metadata.get("task") in TASKS else "segmentation"
    channels = int(image.get("num_channels", 1))
    channel_def = pred.get("channel_def") or {str(k): f"class_{k}" for k in range(int(pred.get("num_channels", 2)))}
    transforms = _transforms(folder, config)
    roi = config.get("inferer", {}).get("roi_size") if isinstance(config.get("inferer"), dict) else None
    spacing = _spacing(transforms)
    return ModelCard(
        id=bundle_id(folder, metadata), version=str(metadata.get("version", "0")),
        name=metadata.get("name", folder.name), task=task,
        inputs=[{"modality": modality, "name": f"channel_{c}"} for c in range(channels)],
        normalization=[_normalization(transforms)] * channels,
        labels={int(k): v for k, v in channel_def.items()},
        spacing=spacing, patch_size=[int(v) for v in roi] if roi else [96, 96, 96], format="monai_bundle",
        orientation=_orientation(transforms), grid="monai", array_order="xyz",
        network_data_format=fmt, intended_use=metadata.get("intended_use", ""), license=metadata.get("copyright", ""),
        authors=metadata.get("authors", ""), changelog=metadata.get("changelog", {}),
        limitations=metadata.get("data_source", ""), weights="models/model.pt",
    )


def read_bundle_card(folder: Path) -> ModelCard:
    """The card of a MONAI bundle from configs/metadata.json and configs/inference.json (no weights loaded)."""
    folder = Path(folder)
    return card_from_bundle(folder, _read_json(folder / "configs" / "metadata.json"),
                            _read_json(folder / "configs" / "inference.json"))


def load_monai_bundle(folder: Path) -> LoadedModel:
    """Build the bundle's ``network_def`` and load models/model.pt (state dict, weights_only) or models/model.ts."""
    import torch

    folder = Path(folder)
    config = _read_json(folder / "configs" / "inference.json")
    card = card_from_bundle(folder, _read_json(folder / "configs" / "metadata.json"), config)
    ts = folder / "models" / "model.ts"
    pt = folder / "models" / "model.pt"
    if pt.is_file():
        if "network_def" not in config:
            raise ModelError("inference.json has no network_def", folder / "configs" / "inference.json")
        net = _parsed(folder, config, "network_def")
        try:
            state = torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as err:
            raise ModelError(f"not a PyTorch weights file ({type(err).__name__})", pt) from err
        state = state.get("model", state) if isinstance(state, dict) else state
        try:
            net.load_state_dict(state)
        except (RuntimeError, TypeError, AttributeError) as err:
            raise ModelError(f"weights do not fit network_def ({str(err).splitlines()[0]})", pt) from err
    elif ts.is_file():
        card.weights = "models/model.ts"
        try:
            net = torch.jit.load(str(ts), map_location="cpu")
        except Exception as err:
            raise ModelError(f"not a TorchScript file ({type(err).__name__})", ts) from err
    else:
        raise ModelError("MONAI bundle has neither models/model.pt nor models/model.ts", folder / "models")
    return LoadedModel(card, net.eval(), folder)
