"""Model registry: built-in models (resources/models) and the user's folder; loads any supported format."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from ai.model import LoadedModel, ModelCard
from viewer.core.errors import ModelError
from viewer.core.resources import resource_path

log = logging.getLogger(__name__)
BUILTIN_DIR = resource_path("models")


def user_models_dir() -> Path:
    """RADVIEW_HOME/models, else the platform's user data folder."""
    home = os.environ.get("RADVIEW_HOME")
    if home:
        return Path(home) / "models"
    from platformdirs import user_data_dir

    return Path(user_data_dir("radview")) / "models"


def model_format(folder: Path) -> str | None:
    """The format of a model folder from its contents, or None if it holds no model."""
    if (folder / "model.json").is_file():
        return "card"
    if (folder / "configs" / "metadata.json").is_file():
        return "monai_bundle"
    from ai.formats.nnunet import nnunet_candidates

    if nnunet_candidates(folder):  # Trainer__Plans__Configuration folder, or the dataset folder holding it
        return "nnunetv2"
    return None


def model_folders(user_dir: str | Path | None = None) -> list[Path]:
    """Folders holding a model of any known format (built-in first, then the user's folder)."""
    out = []
    for root in (BUILTIN_DIR, Path(user_dir) if user_dir else user_models_dir()):
        if root.is_dir():
            out.extend(sorted(p for p in root.iterdir() if p.is_dir() and model_format(p) is not None))
    return out


def read_card(folder: Path) -> ModelCard:
    """A model folder's card, read without loading weights (nnU-Net and MONAI bundles: from their metadata)."""
    kind = model_format(folder)
    if kind == "monai_bundle":
        from ai.formats.monai_bundle import read_bundle_card

        return read_bundle_card(folder)
    if kind == "nnunetv2":
        from ai.formats.nnunet import read_nnunet_card

        return read_nnunet_card(folder)
    return ModelCard.from_file(folder / "model.json")


def read_id(folder: Path) -> str:
    """A model folder's id, reading only what that needs (a MONAI bundle's metadata, not its preprocessing)."""
    if model_format(folder) == "monai_bundle":
        from ai.formats.monai_bundle import read_bundle_id

        return read_bundle_id(folder)
    return read_card(folder).id


def list_models(user_dir: str | Path | None = None) -> list[ModelCard]:
    """The cards of every installed model (a broken one is skipped with a log message)."""
    cards = []
    for folder in model_folders(user_dir):
        try:
            cards.append(read_card(folder))
        except ModelError as err:
            log.warning("%s", err)
    return cards


def find_model(id_or_path: str) -> Path:
    """The folder of a model given by path, by id or by ``ID@VERSION`` (ids read as read_id: no bundle preprocessing
    built). Several installed versions of one id (a fine-tuned one beside its built-in parent): a bare id takes
    the first (built-in first, as model_folders lists them) and logs which, and how to choose another."""
    path = Path(id_or_path)
    if path.exists():
        return path if path.is_dir() else path.parent
    wanted, _, version = id_or_path.partition("@")
    known, matches = [], []
    for folder in model_folders():
        try:
            model_id = read_id(folder)
        except ModelError as err:
            log.warning("%s", err)
            continue
        if model_id == wanted:
            matches.append(folder)
        known.append(model_id)
    if not matches:
        raise ModelError(f"no model with id {wanted!r} (installed: {', '.join(known) or 'none'})")
    if not version and len(matches) == 1:
        return matches[0]
    found = [(read_card(folder).version, folder) for folder in matches]
    versions = dict(reversed(found))  # version -> its first folder
    if version:
        if version not in versions:
            raise ModelError(f"model {wanted!r} has no version {version!r} (installed: {', '.join(versions)})")
        return versions[version]
    log.warning("%d versions of model %s are installed (%s); using %s in %s: choose another with %s@VERSION or "
                "its folder", len(found), wanted, ", ".join(v for v, _ in found), *found[0], wanted)
    return found[0][1]


def load_model(id_or_path: str, device: str = "cpu", *, folds=None, use_mirroring: bool = True) -> LoadedModel:
    """Load a model folder (by id or path) into the common interface, dispatching on its contents.

    ``folds`` (fold ids to average; None = all) and ``use_mirroring`` apply to nnU-Net folders only
    (ModelError for other formats)."""
    folder = find_model(id_or_path)
    kind = model_format(folder)
    if kind != "nnunetv2" and (folds is not None or not use_mirroring):
        raise ModelError("folds and mirroring on/off apply to nnU-Net folders only", folder)
    if kind == "monai_bundle":
        from ai.formats.monai_bundle import load_monai_bundle

        model = load_monai_bundle(folder)
        model.check_network()
        return model.to(device)
    if kind == "nnunetv2":
        from ai.formats.nnunet import load_nnunet_folder

        return load_nnunet_folder(folder, folds=folds, use_mirroring=use_mirroring, device=device)
    card = ModelCard.from_file(folder / "model.json")
    if card.format == "builtin":
        from ai.formats.builtin import load_builtin

        model = load_builtin(folder, card)
    elif card.format == "torchscript":
        from ai.formats.torchscript import load_torchscript

        model = load_torchscript(folder, card)
    else:
        raise ModelError(f"model format {card.format!r} is not supported", folder / "model.json")
    model.check_network()
    return model.to(device)
