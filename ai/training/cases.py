"""Case: one training or validation example (images, label map on the first image's grid, lesion centres)."""

from __future__ import annotations

from dataclasses import dataclass, field

from viewer.core.volume import Volume


@dataclass
class Case:
    """One example for training or validation.

    Attributes:
        name: unique, human-readable (``"real_ct_synth seed 12"``), shown in logs and model cards.
        images: input channels in the model card's order (CT; or PET, CT), each on its own grid.
        labels: uint8 label map on ``images[0]``'s grid holding the training CONFIG's label ids
            (0 background), or None for a detection case without masks.
        lesions: detection targets ``[{"center_mm": [x, y, z] (LPS), "diameter_mm": d}]``.
        source: where it came from (file paths, or the generator and its options), for the model card.
    """

    name: str
    images: list[Volume]
    labels: Volume | None
    lesions: list[dict] = field(default_factory=list)
    source: str = ""
