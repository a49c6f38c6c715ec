"""MONAI bundle folders for tests: real configs/ JSON and a real network's weights, laid out as MONAI's; and
a bundle run by MONAI itself, as its evaluator runs one, for radview's result to be compared with."""

from __future__ import annotations

import json

import numpy as np

#: model-zoo style postprocessing: softmax, back to the input grid, argmax, written beside the bundle
POSTPROCESSING = [
    {"_target_": "Activationsd", "keys": "pred", "softmax": True},
    {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
     "meta_key_postfix": "meta_dict", "nearest_interp": False, "to_tensor": True},
    {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
    {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg",
     "separate_folder": False, "resample": False, "print_log": False}]

#: a small MONAI UNet network_def (instance norm: each window's output depends on the whole window)
UNET = {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": 3, "channels": [4, 8],
        "strides": [2], "num_res_units": 0}


def lopsided_unet(network_def: dict = UNET, *, bias=(-0.3, 0.1, 0.0), seed: int = 0):
    """A random MONAI UNet of ``network_def`` whose last layer's bias (one value per class, None = as drawn)
    makes its classes unevenly frequent."""
    import torch
    from monai.networks.nets import UNet

    torch.manual_seed(seed)
    net = UNet(**{k: v for k, v in network_def.items() if k != "_target_"}).eval()
    if bias is not None:
        with torch.no_grad():
            last = [m for m in net.modules() if isinstance(m, torch.nn.ConvTranspose3d | torch.nn.Conv3d)][-1]
            last.bias.add_(torch.tensor(bias))
    return net


def write_bundle(folder, network, network_def: dict, *, transforms: list, roi_size, labels, name: str,
                 version: str = "0.1", torchscript: bool = False, inferer: dict | None = None,
                 postprocessing: list | None = None, **metadata):
    """A MONAI bundle in ``folder``; returns the folder.

    configs/metadata.json: ``name``, ``version``, any other ``metadata`` and a network_data_format of one CT
    input channel and one output channel per ``labels`` name; configs/inference.json: ``network_def``, a
    Compose of ``transforms`` as preprocessing, ``inferer`` (default a SlidingWindowInferer of ``roi_size``
    with MONAI's other defaults), a Compose of ``postprocessing`` when given and an ``output_dir`` for its
    writers; ``network``'s weights as models/model.pt (state dict) or, with ``torchscript``, models/model.ts.
    """
    import torch

    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    data_format = {
        "inputs": {"image": {"type": "image", "format": "hounsfield", "modality": "CT", "num_channels": 1}},
        "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": len(labels),
                             "channel_def": {str(k): v for k, v in enumerate(labels)}}}}
    inference = {"output_dir": "$@bundle_root + '/eval'", "network_def": network_def,
                 "preprocessing": {"_target_": "Compose", "transforms": list(transforms)},
                 "inferer": inferer or {"_target_": "SlidingWindowInferer", "roi_size": list(roi_size),
                                        "sw_batch_size": 2}}
    if postprocessing is not None:
        inference["postprocessing"] = {"_target_": "Compose", "transforms": list(postprocessing)}
    metadata = {"name": name, "version": version, **metadata, "network_data_format": data_format}
    (folder / "configs" / "metadata.json").write_text(json.dumps(metadata))
    (folder / "configs" / "inference.json").write_text(json.dumps(inference))
    if torchscript:
        torch.jit.script(network).save(str(folder / "models" / "model.ts"))
    else:
        torch.save(network.state_dict(), folder / "models" / "model.pt")
    return folder


def write_ct(path, spacing, direction=(1, 0, 0, 0, 1, 0, 0, 0, 1), air_border: int = 0):
    """A smooth random CT (HU, 52 x 44 x 30 voxels) whose intensity changes along every axis, as NIfTI;
    ``air_border`` voxels at every face are air (-1000 HU)."""
    import SimpleITK as sitk
    from scipy import ndimage

    noise = np.random.default_rng(3).normal(size=(30, 44, 52))
    arr = ndimage.gaussian_filter(noise, 3)
    arr = (arr / np.abs(arr).max() * 600 - 100).astype(np.int16)
    if air_border:
        inner = arr[air_border:-air_border, air_border:-air_border, air_border:-air_border].copy()
        arr[:] = -1000
        arr[air_border:-air_border, air_border:-air_border, air_border:-air_border] = inner
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-40.0, 25.0, 100.0))
    img.SetDirection(direction)
    sitk.WriteImage(img, str(path))
    return path


def monai_run(bundle, image_path) -> np.ndarray:
    """The bundle run by MONAI as its SupervisedEvaluator runs it, from the image file: preprocessing (with
    the bundle's LoadImaged), collation into a batch of one, ``inferer(inputs, network)`` under no_grad,
    decollation, the postprocessing Compose on the merged batch + output (its SaveImaged writes a file);
    returns the final ``pred`` as a (C, z, y, x) array (SimpleITK's axis order)."""
    import torch
    from monai.bundle import ConfigParser
    from monai.data import list_data_collate
    from monai.transforms import Decollated

    parser = ConfigParser(json.loads((bundle / "configs" / "inference.json").read_text()))
    parser.update({"bundle_root": str(bundle)})
    pre = parser.get_parsed_content("preprocessing")
    net = parser.get_parsed_content("network_def")
    net.load_state_dict(torch.load(bundle / "models" / "model.pt", weights_only=True))
    batch = list_data_collate([pre({"image": str(image_path)})])
    with torch.no_grad():
        output = {"image": batch["image"], "label": None, "pred": parser.get_parsed_content("inferer")(
            batch["image"], net.eval())}
    decollate = Decollated(keys=None, detach=True)
    data = {**decollate(batch)[0], **decollate(output)[0]}
    data = parser.get_parsed_content("postprocessing")(data)
    return np.asarray(data["pred"]).transpose(0, 3, 2, 1)
