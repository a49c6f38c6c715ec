"""Built-in models: a MONAI or radview (ai.nets) network described in the card, weights as a (fp16) state dict."""

from __future__ import annotations

from pathlib import Path

from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError

#: MONAI network classes a card may name (no arbitrary imports from a model file).
NETWORKS = {"UNet", "AttentionUnet", "BasicUNet"}
#: radview's own network classes a card may name -> the ai.nets module defining each.
RADVIEW_NETWORKS = {"CenterNetDetector3D": "ai.nets.detector", "AttentionBlocksUNet": "ai.nets.unet_variants",
                    "FeatureFusionUNet": "ai.nets.fusion", "DecisionFusionUNet": "ai.nets.fusion"}


def network_class(name):
    """The class a card's network ``name`` stands for: a MONAI network of NETWORKS or one of RADVIEW_NETWORKS."""
    import importlib

    if name in RADVIEW_NETWORKS:
        return getattr(importlib.import_module(RADVIEW_NETWORKS[name]), name)
    if name in NETWORKS:
        import monai.networks.nets as nets

        return getattr(nets, name)
    raise ModelError(f"network class {name!r} is not one of {sorted(NETWORKS | set(RADVIEW_NETWORKS))}")


#: the card's network class of an ensemble: ``args: {members: [{class, args}, ...]}`` (ai.nets.ensemble)
ENSEMBLE = "MeanEnsemble"


def build_network(spec: dict):
    """The torch module described by ``{"class": "UNet", "args": {...}}`` (network_class), or by
    ``{"class": "MeanEnsemble", "args": {"members": [spec, ...]}}`` the mean of its member networks."""
    cls = spec.get("class")
    if cls == ENSEMBLE:
        return build_ensemble(spec.get("args", {}))
    build = network_class(cls)
    try:
        return build(**spec.get("args", {}))
    except (TypeError, ValueError) as err:  # unknown / missing argument, or a value the network refuses
        raise ModelError(f"bad arguments for {cls}: {err}") from err


def build_ensemble(args: dict):
    """A MeanEnsemble of the member networks ``args["members"]`` lists (each a network spec, not an ensemble)."""
    from ai.nets.ensemble import MeanEnsemble

    members = args.get("members") if isinstance(args, dict) else None
    if set(args or {}) - {"members"} or not isinstance(members, list) or len(members) < 2 or not all(
            isinstance(m, dict) and m.get("class") not in (None, ENSEMBLE) for m in members):
        raise ModelError(f"bad arguments for {ENSEMBLE}: args must be {{members: [{{class, args}}, ...]}} with at "
                         f"least 2 member networks (no nested ensembles), got {args!r}")
    return MeanEnsemble([build_network(m) for m in members])


def load_builtin(folder: Path, card: ModelCard) -> LoadedModel:
    """Build the card's network and load its weights with ``torch.load(weights_only=True)``."""
    import torch

    weights = folder / card.weights
    if not weights.is_file():
        raise ModelError(f"weights file {card.weights} is missing", weights)
    net = build_network(card.network)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for non-checkpoint files
        raise ModelError(f"not a PyTorch weights file ({type(err).__name__})", weights) from err
    if not isinstance(state, dict):
        raise ModelError("weights file does not hold a state dict", weights)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        raise ModelError(f"weights do not fit the network in the card ({str(err).splitlines()[0]})", weights) from err
    return LoadedModel(card, net.eval(), folder)
