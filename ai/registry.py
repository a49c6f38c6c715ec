"""Model registry: built-in models (resources/models) and the user's folder; loads any supported format."""

from __future__ import annotations

import os
from pathlib import Path

from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "resources" / "models"


def user_models_dir() -> Path:
    """RADVIEW_HOME/models, else the platform's user data folder."""
    home = os.environ.get("RADVIEW_HOME")
    if home:
        return Path(home) / "models"
    from platformdirs import user_data_dir

    return Path(user_data_dir("radview")) / "models"


def model_folders() -> list[Path]:
    """Folders holding a model card, built-in first."""
    out = []
    for root in (BUILTIN_DIR, user_models_dir()):
        if root.is_dir():
            out.extend(sorted(p for p in root.iterdir() if (p / "model.json").is_file()))
    return out


def list_models() -> list[ModelCard]:
    """The cards of every installed model (a broken card is skipped with a log message)."""
    import logging

    cards = []
    for folder in model_folders():
        try:
            cards.append(ModelCard.from_file(folder / "model.json"))
        except ModelError as err:
            logging.getLogger(__name__).warning("%s", err)
    return cards


def find_model(id_or_path: str) -> Path:
    """The folder of a model given by id or by path."""
    path = Path(id_or_path)
    if path.exists():
        return path if path.is_dir() else path.parent
    for folder in model_folders():
        if ModelCard.from_file(folder / "model.json").id == id_or_path:
            return folder
    known = ", ".join(c.id for c in list_models()) or "none"
    raise ModelError(f"no model with id {id_or_path!r} (installed: {known})")


def load_model(id_or_path: str, device: str = "cpu") -> LoadedModel:
    """Load a model folder (by id or path) into the common interface."""
    folder = find_model(id_or_path)
    card = ModelCard.from_file(folder / "model.json")
    if card.format == "builtin":
        from ai.formats.builtin import load_builtin

        model = load_builtin(folder, card)
    elif card.format == "torchscript":
        from ai.formats.torchscript import load_torchscript

        model = load_torchscript(folder, card)
    else:
        raise ModelError(f"model format {card.format!r} is not supported yet", folder / "model.json")
    return model.to(device)
