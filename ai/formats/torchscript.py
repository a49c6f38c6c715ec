"""TorchScript models: a model.ts file beside a model card."""

from __future__ import annotations

from pathlib import Path

from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError


def load_torchscript(folder: Path, card: ModelCard) -> LoadedModel:
    """torch.jit.load the card's weights file (default model.ts)."""
    import torch

    path = folder / (card.weights if card.weights != "model.pt" else "model.ts")
    if not path.is_file():
        raise ModelError(f"TorchScript file {path.name} is missing", path)
    try:
        net = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:
        raise ModelError(f"not a TorchScript file ({type(err).__name__})", path) from err
    return LoadedModel(card, net.eval(), folder)
