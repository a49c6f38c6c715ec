"""MONAI bundles: configs/metadata.json + configs/inference.json + models/model.pt (or model.ts).

The network comes from the bundle's ``network_def`` parsed with ``monai.bundle.ConfigParser``; the
model card is derived from ``metadata.json`` (name, version, ``network_data_format``) and from the
preprocessing the bundle declares (``Spacingd`` pixdim -> spacing, ``ScaleIntensityRanged`` -> CT
window, ``NormalizeIntensityd`` -> z-score, ``inferer.roi_size`` -> patch size). Other bundle
transforms are not replayed: the engine's own preprocessing stands in for them.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def _transforms(config: dict) -> list[dict]:
    """The bundle's preprocessing transform dicts (Compose ``transforms`` list), if declared."""
    pre = config.get("preprocessing", {})
    items = pre.get("transforms", []) if isinstance(pre, dict) else []
    return [t for t in items if isinstance(t, dict)]


def _normalization(transforms: list[dict], modality: str) -> dict:
    for t in transforms:
        target = str(t.get("_target_", ""))
        if target.endswith("ScaleIntensityRanged") or target.endswith("ScaleIntensityRange"):
            return {"kind": "ct_window", "min": float(t["a_min"]), "max": float(t["a_max"])}
        if target.endswith("NormalizeIntensityd") or target.endswith("NormalizeIntensity"):
            return {"kind": "zscore"}
    return {"kind": "ct_window", "min": -1000, "max": 1000} if modality == "CT" else {"kind": "zscore"}


def _spacing(transforms: list[dict]) -> list[float] | None:
    for t in transforms:
        if str(t.get("_target_", "")).endswith(("Spacingd", "Spacing")) and "pixdim" in t:
            return [float(v) for v in t["pixdim"]]
    return None


def card_from_bundle(folder: Path, metadata: dict, config: dict) -> ModelCard:
    """A radview model card for a MONAI bundle."""
    fmt = metadata.get("network_data_format", {})
    image = fmt.get("inputs", {}).get("image", {})
    pred = fmt.get("outputs", {}).get("pred", {})
    modality = str(image.get("modality", "any")).upper().replace("ANY", "any")
    task = metadata.get("task") if metadata.get("task") in TASKS else "segmentation"
    channels = int(image.get("num_channels", 1))
    channel_def = pred.get("channel_def") or {str(k): f"class_{k}" for k in range(int(pred.get("num_channels", 2)))}
    transforms = _transforms(config)
    roi = config.get("inferer", {}).get("roi_size") if isinstance(config.get("inferer"), dict) else None
    spacing = _spacing(transforms)
    return ModelCard(
        id=metadata.get("name", folder.name).replace(" ", "_").lower(), version=str(metadata.get("version", "0")),
        name=metadata.get("name", folder.name), task=task,
        inputs=[{"modality": modality, "name": f"channel_{c}"} for c in range(channels)],
        normalization=[_normalization(transforms, modality)] * channels,
        labels={int(k): v for k, v in channel_def.items()},
        spacing=spacing, patch_size=[int(v) for v in roi] if roi else [96, 96, 96], format="monai_bundle",
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
    from monai.bundle import ConfigParser

    folder = Path(folder)
    config = _read_json(folder / "configs" / "inference.json")
    card = read_bundle_card(folder)
    ts = folder / "models" / "model.ts"
    pt = folder / "models" / "model.pt"
    if pt.is_file():
        if "network_def" not in config:
            raise ModelError("inference.json has no network_def", folder / "configs" / "inference.json")
        parser = ConfigParser(config)
        parser.update({"bundle_root": str(folder)})
        try:
            net = parser.get_parsed_content("network_def")
        except Exception as err:  # ConfigParser wraps import/argument errors in several types
            raise ModelError(f"cannot build network_def ({err})", folder / "configs" / "inference.json") from err
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
