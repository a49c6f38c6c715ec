"""The in-memory model interface every format loads into: a model card plus a torch network."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from viewer.core.errors import ModelError

TASKS = ("segmentation", "detection", "translation")


@dataclass
class ModelCard:
    """What ``model.json`` says about a model (fields borrowed from MONAI bundle metadata).

    ``inputs``: one dict per channel, e.g. ``{"modality": "CT", "name": "ct"}``;
    ``normalization``: one dict per channel, e.g. ``{"kind": "ct_window", "min": -250, "max": 350}``
    (kinds: ct_window or its alias ct_clip, zscore, percentile_zscore, suv); ``spacing``: model voxel size (x, y, z) mm;
    ``labels``: {id: name} with 0 = background.
    """

    id: str
    version: str
    name: str
    task: str
    inputs: list[dict]
    normalization: list[dict]
    labels: dict[int, str]
    spacing: list[float] | None = None
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 32])
    format: str = "builtin"
    network: dict = field(default_factory=dict)
    training_data: str = ""
    metrics: list[dict] = field(default_factory=list)
    intended_use: str = ""
    limitations: str = ""
    license: str = ""
    authors: str = ""
    changelog: dict = field(default_factory=dict)
    weights: str = "model.pt"
    mirror_axes: list[int] = field(default_factory=lambda: [0, 1, 2])
    orientation: str = "LPS"  # the model grid is axis-aligned LPS (see ai.engine.model_grid)
    network_data_format: dict = field(default_factory=dict)  # MONAI bundle style inputs/outputs description

    @classmethod
    def from_file(cls, path: str | Path) -> ModelCard:
        """Read and validate a model.json; ModelError names the file and the problem."""
        path = Path(path)
        if not path.is_file():
            raise ModelError("model card model.json is missing", path)
        try:
            data = json.loads(path.read_text())
        except ValueError as err:
            raise ModelError(f"model card is not valid JSON ({err})", path) from err
        required = ("id", "version", "name", "task", "inputs", "normalization", "labels")
        missing = [k for k in required if k not in data]
        if missing:
            raise ModelError(f"model card lacks {', '.join(missing)}", path)
        if data["task"] not in TASKS:
            raise ModelError(f"unknown task {data['task']!r} (expected one of {', '.join(TASKS)})", path)
        known = set(cls.__dataclass_fields__)
        card = cls(**{k: v for k, v in data.items() if k in known})
        card.labels = {int(k): v for k, v in card.labels.items()}
        if len(card.normalization) != len(card.inputs):
            raise ModelError("normalization must have one entry per input channel", path)
        return card

    @property
    def modalities(self) -> list[str]:
        return [c["modality"] for c in self.inputs]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = {str(k): v for k, v in self.labels.items()}
        return d


@dataclass
class LoadedModel:
    """A model ready to run: its card, a torch module mapping (B, C, *patch) to logits, and its folder."""

    card: ModelCard
    network: Any  # torch.nn.Module
    folder: Path | None = None

    @property
    def num_classes(self) -> int:
        return max(self.card.labels) + 1

    @property
    def mirror_axes(self) -> list[int]:
        """Axes (x=0, y=1, z=2) the model may be mirrored along for test-time augmentation."""
        return list(self.card.mirror_axes)

    def predict_logits(self, x):
        """Logits (B, K, z, y, x) for a batch (B, C, z, y, x) of normalised patches (a torch module call)."""
        return self.network(x)

    def to(self, device) -> LoadedModel:
        self.network = self.network.to(device)
        return self
