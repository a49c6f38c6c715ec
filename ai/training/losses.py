"""Segmentation losses a training config may name (MONAI's, on logits and integer label targets)."""

from __future__ import annotations

from viewer.core.errors import ConfigError

#: config ``loss`` -> (MONAI loss class name, its arguments for softmax logits and (B, 1, ...) label targets)
LOSSES = {
    "dice_ce": ("DiceCELoss", {"to_onehot_y": True, "softmax": True}),
    "dice": ("DiceLoss", {"to_onehot_y": True, "softmax": True}),
    "dice_focal": ("DiceFocalLoss", {"to_onehot_y": True, "softmax": True}),
    "focal": ("FocalLoss", {"to_onehot_y": True, "use_softmax": True}),
}


def segmentation_loss(name: str, config_path=None):
    """The MONAI loss named ``name`` (a key of LOSSES); ConfigError naming the config file otherwise."""
    import monai.losses

    if name not in LOSSES:
        raise ConfigError(f"loss {name!r} is not one of {', '.join(LOSSES)}", config_path)
    cls, args = LOSSES[name]
    return getattr(monai.losses, cls)(**args)
