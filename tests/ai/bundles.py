"""MONAI bundle folders for tests: real configs/ JSON and a real network's weights, laid out as MONAI's."""

from __future__ import annotations

import json


def write_bundle(folder, network, network_def: dict, *, transforms: list, roi_size, labels, name: str,
                 version: str = "0.1", torchscript: bool = False, **metadata):
    """A MONAI bundle in ``folder``; returns the folder.

    configs/metadata.json: ``name``, ``version``, any other ``metadata`` and a network_data_format of one CT
    input channel and one output channel per ``labels`` name (background first); configs/inference.json:
    ``network_def``, a Compose of ``transforms`` as preprocessing and a SlidingWindowInferer of ``roi_size``;
    ``network``'s weights as models/model.pt (state dict) or, with ``torchscript``, models/model.ts.
    """
    import torch

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    data_format = {
        "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": len(labels),
                             "channel_def": {str(k): v for k, v in enumerate(labels)}}}}
    inference = {"network_def": network_def,
                 "preprocessing": {"_target_": "Compose", "transforms": list(transforms)},
                 "inferer": {"_target_": "SlidingWindowInferer", "roi_size": list(roi_size), "sw_batch_size": 2}}
    metadata = {"name": name, "version": version, **metadata, "network_data_format": data_format}
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata))
    (folder / "configs" / "inference.json").write_text(json.dumps(inference))
    if torchscript:
        torch.jit.script(network).save(str(folder / "models" / "model.ts"))
    else:
        torch.save(network.state_dict(), folder / "models" / "model.pt")
    return folder
