"""MONAI bundles: configs/metadata.json + configs/inference.json + models/model.pt (or model.ts).

One ``monai.bundle.ConfigParser`` builds the bundle's ``network_def``, ``preprocessing``, ``inferer`` and
``postprocessing``; segmentation runs those objects as MONAI's evaluator does (ai.formats.monai_bundle_run):
every transform as written, never reinterpreted or dropped. The model card is derived from ``metadata.json``
(name, version, ``network_data_format``) and, as information, from the built objects (``Orientationd``
axcodes -> orientation, ``Spacingd`` pixdim -> spacing, ``ScaleIntensityRanged`` -> CT window, a plain
``NormalizeIntensityd`` -> z-score, any other intensity transform named in a ``bundle`` normalisation,
``inferer.roi_size`` -> patch size, a sigmoid in the postprocessing -> ``multi_label``). The card's layout is
MONAI's (grid "monai", array_order "xyz"): what radview's own preprocessing (Grad-CAM, ROI context) uses.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from ai.formats.monai_bundle_run import BundlePipeline, MonaiBundleModel, steps_of
from ai.model import TASKS, ModelCard
from viewer.core.errors import ModelError

log = logging.getLogger(__name__)


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


def parser_of(folder: Path, config: dict):
    """MONAI's ConfigParser over inference.json with ``bundle_root`` set to ``folder``: every object built from
    one parser is built once and shared (Invertd's ``@preprocessing`` is the Compose that ran)."""
    from monai.bundle import ConfigParser

    parser = ConfigParser(config)
    parser.update({"bundle_root": str(folder)})
    return parser


def _parsed(parser, folder: Path, key: str):
    """The object inference.json's ``key`` describes, built by ``parser`` (references resolved). MONAI's
    deprecation notices about the bundle's arguments (e.g. Orientationd without ``labels``) are for the bundle's
    author, not the user running it: they go to the log, naming the bundle, instead of the terminal."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return parser.get_parsed_content(key)
    except Exception as err:  # ConfigParser wraps import/argument errors in several types
        raise ModelError(f"cannot build {key} ({err})", folder / "configs" / "inference.json") from err
    finally:
        _pass_on(caught, folder)  # outside the recording: what it warns again reaches the caller's filters


def _pass_on(caught: list[warnings.WarningMessage], folder: Path) -> None:
    """Log the deprecation notices among ``caught`` (once each) and warn the others again."""
    notices = set()
    for w in caught:
        if issubclass(w.category, (FutureWarning, DeprecationWarning)):
            notices.add(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for notice in sorted(notices):
        log.info("bundle %s: %s", folder.name, notice)


def _compose(parser, folder: Path, key: str):
    """inference.json's Compose ``key`` built by ``parser``, or None when it declares none."""
    return _parsed(parser, folder, key) if key in parser.config else None


def _inferer(parser, folder: Path):
    """inference.json's ``inferer`` (SlidingWindowInferer, SimpleInferer, ...) built by ``parser``."""
    if "inferer" not in parser.config:
        raise ModelError("inference.json declares no inferer", folder / "configs" / "inference.json")
    inferer = _parsed(parser, folder, "inferer")
    if not callable(inferer):
        raise ModelError(f"inferer is not callable ({type(inferer).__name__})", folder / "configs" / "inference.json")
    return inferer


def _normalization(transforms: list) -> dict:
    """The bundle's intensity transforms as a card normalisation: ``ct_window`` (ScaleIntensityRanged),
    ``zscore`` (a plain NormalizeIntensityd), ``none`` (no intensity transform); any other intensity transform
    is named in a ``bundle`` normalisation, which only the bundle's own pipeline applies (ai.normalize
    refuses it, naming them)."""
    from monai.transforms import NormalizeIntensityd, ScaleIntensityRanged

    intensity = [t for t in transforms if type(t).__module__.startswith("monai.transforms.intensity")]
    if not intensity:
        return {"kind": "none"}
    if len(intensity) == 1 and isinstance(intensity[0], ScaleIntensityRanged):
        s = intensity[0].scaler
        return {"kind": "ct_window", "min": float(s.a_min), "max": float(s.a_max), "b_min": float(s.b_min),
                "b_max": float(s.b_max), "clip": bool(s.clip)}
    if len(intensity) == 1 and isinstance(intensity[0], NormalizeIntensityd):
        n = intensity[0].normalizer
        if n.subtrahend is None and n.divisor is None and not n.nonzero:
            return {"kind": "zscore"}
    return {"kind": "bundle", "transforms": [type(t).__name__ for t in intensity]}


def _multi_label(post: list) -> bool:
    """Does the postprocessing take a sigmoid of the prediction (one overlapping mask per label)?"""
    return any(type(t).__name__ == "Activationsd" and any(t.sigmoid) for t in post)


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


def card_from_bundle(folder: Path, metadata: dict, pipeline: BundlePipeline) -> ModelCard:
    """A radview model card for a MONAI bundle: metadata.json's description, with the spacing, orientation,
    normalisation and patch size the built ``pipeline`` declares (as information: segmentation runs the
    pipeline itself). Sigmoid outputs are one mask per channel_def entry: labels 1.. in channel order."""
    fmt = metadata.get("network_data_format", {})
    image = fmt.get("inputs", {}).get(pipeline.image_key, {})
    pred = fmt.get("outputs", {}).get(pipeline.pred_key, {})
    modality = str(image.get("modality", "any")).upper().replace("ANY", "any")
    task = metadata.get("task") if metadata.get("task") in TASKS else "segmentation"
    channels = int(image.get("num_channels", 1))
    channel_def = pred.get("channel_def") or {str(k): f"class_{k}" for k in range(int(pred.get("num_channels", 2)))}
    labels = {int(k): v for k, v in channel_def.items()}
    if pipeline.multi_label:
        labels = {0: "background", **{k + 1: v for k, v in labels.items()}}
    transforms = steps_of(pipeline.preprocessing)
    roi = getattr(pipeline.inferer, "roi_size", None)
    return ModelCard(
        id=bundle_id(folder, metadata), version=str(metadata.get("version", "0")),
        name=metadata.get("name", folder.name), task=task,
        inputs=[{"modality": modality, "name": f"channel_{c}"} for c in range(channels)],
        normalization=[_normalization(transforms)] * channels, labels=labels,
        spacing=_spacing(transforms), patch_size=[int(v) for v in roi] if roi else [96, 96, 96],
        format="monai_bundle", orientation=_orientation(transforms), grid="monai", array_order="xyz",
        network_data_format=fmt, intended_use=metadata.get("intended_use", ""), license=metadata.get("copyright", ""),
        authors=metadata.get("authors", ""), changelog=metadata.get("changelog", {}),
        limitations=metadata.get("data_source", ""), weights="models/model.pt", multi_label=pipeline.multi_label,
    )


def _pipeline(parser, folder: Path, metadata: dict) -> BundlePipeline:
    """The bundle's preprocessing, inferer and postprocessing, built by ``parser``; the input key is the
    first of network_data_format's inputs ("image" without one)."""
    inputs = metadata.get("network_data_format", {}).get("inputs") or {"image": {}}
    post = _compose(parser, folder, "postprocessing")
    return BundlePipeline(_compose(parser, folder, "preprocessing"), _inferer(parser, folder), post,
                          image_key=next(iter(inputs)), multi_label=_multi_label(steps_of(post)))


def read_bundle_card(folder: Path) -> ModelCard:
    """The card of a MONAI bundle from configs/metadata.json and configs/inference.json (no weights loaded)."""
    folder = Path(folder)
    metadata = _read_json(folder / "configs" / "metadata.json")
    parser = parser_of(folder, _read_json(folder / "configs" / "inference.json"))
    return card_from_bundle(folder, metadata, _pipeline(parser, folder, metadata))


def load_monai_bundle(folder: Path) -> MonaiBundleModel:
    """Build the bundle's pipeline and ``network_def`` with one ConfigParser and load models/model.pt (state
    dict, weights_only) or models/model.ts."""
    import torch

    folder = Path(folder)
    metadata = _read_json(folder / "configs" / "metadata.json")
    parser = parser_of(folder, _read_json(folder / "configs" / "inference.json"))
    pipeline = _pipeline(parser, folder, metadata)
    card = card_from_bundle(folder, metadata, pipeline)
    ts = folder / "models" / "model.ts"
    pt = folder / "models" / "model.pt"
    if pt.is_file():
        if "network_def" not in parser.config:
            raise ModelError("inference.json has no network_def", folder / "configs" / "inference.json")
        net = _parsed(parser, folder, "network_def")
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
    return MonaiBundleModel(card, net.eval(), folder, pipeline=pipeline)
