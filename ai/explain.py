"""Explanations of a model's output as float maps on the image grid: Grad-CAM, attention gates, uncertainty.

Each map is computed on the model grid (see ai.engine) with the engine's sliding window (patch, overlap,
Gaussian blending), so memory stays that of one patch, with progress and cancel per tile or pass, and is
returned as a float32 Volume resampled onto the first input's grid, so it overlays the image directly. Each
costs about one plain segmentation run: Grad-CAM and attention read what the segmentation's own forward pass
computes (no separate segmentation pass), uncertainty runs the sliding window twice. A model that predicts with
several networks is explained as it predicts them, together (LoadedModel.explained: an nnU-Net model's folds).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from ai.engine import (
    OVERLAP,
    mirror_combinations,
    network_roi,
    onto_model_grid,
    predict,
    preprocess,
    window_count,
    window_starts,
)
from ai.model import LoadedModel, forward_calls, network_channels
from viewer.core.errors import ModelError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.resample import resample_to
from viewer.core.volume import Volume

#: The explanation methods (``radview explain --method``).
METHODS = ("gradcam", "attention", "uncertainty")
#: Sliding-window passes of the uncertainty estimate: the input and one perturbed copy (stays within 2x a run).
UNCERTAINTY_PASSES = 2
#: Perturbations of models whose card allows no mirroring: (array axis of (C, z, y, x), voxel shift,
#: intensity scale of the normalised input); one per pass after the first.
SHIFTS = ((3, 1, 1.03), (2, -1, 0.97), (1, 1, 1.02))
#: The Grad-CAM "layer" that is the network's input itself (gradient x input): every differentiable network has
#: it, and it is the default of one whose convolutions cannot be hooked (TorchScript runs its compiled graph).
INPUT_LAYER = "input"


def layer_names(model: LoadedModel) -> list[str]:
    """Names of the Grad-CAM candidates, shallow to deep: INPUT_LAYER, then the network's feature layers (none in a
    TorchScript network, whose submodules run inside its compiled graph, where no hook sees them)."""
    return [INPUT_LAYER, *feature_layers(model.network)]


def feature_layers(network) -> dict[str, int]:
    """{name: channels} of the feature layers of ``network``, in module order: each convolution's block when it
    opens one (MONAI's Convolution, nnU-Net's ConvDropoutNormReLU: convolution, normalisation, activation), whose
    output is the feature map after its activation, else the convolution itself. Grad-CAM belongs after the
    activation: an instance norm between a convolution and the output couples every voxel of the patch, and a map
    taken before it lights up the air around the body rather than the organ."""
    import torch

    def is_conv(m) -> bool:
        return isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d)

    modules = dict(network.named_modules())
    layers: dict[str, int] = {}
    for name, module in modules.items():
        if is_conv(module):
            parent, _, child = name.rpartition(".")
            children = list(modules[parent].named_children()) if parent else []
            opens_block = (len(children) > 1 and children[0][0] == child  # and no other convolution follows in it
                           and all(m is module for m in modules[parent].modules() if is_conv(m)))
            layers.setdefault(parent if opens_block else name, module.out_channels)
    return layers


def default_layers(model: LoadedModel) -> list[str]:
    """The last feature layer to run that still has more channels than the model has classes: the decoder's final
    features, at full or half resolution, before the output head (found by running the network once on a patch
    of zeros: in a nested network the order of its modules is not the order they run in); of each member of an
    ensemble (ai.nets.ensemble.MeanEnsemble, layers ``members.<i>.*``), whose Grad-CAM sums over its members.
    A detection model's target is a point (a detection's peak): its layer is the last whose evidence for one
    output voxel spreads beyond that voxel (:func:`point_support`), else the map would be that voxel alone (a
    centre-point detector's head ends in a 1x1x1 convolution). INPUT_LAYER for a network without hookable
    convolutions (TorchScript) or whose forward pass runs none."""
    layers = feature_layers(model.network)
    if not layers:
        return [INPUT_LAYER]
    shape = (1, network_channels(model.network)[0] or len(model.card.inputs), *network_roi(model))
    ran = list(dict.fromkeys(name for name, _ in forward_calls(model.network, list(layers), shape)))
    n_classes = len(model.card.labels)
    members = getattr(model.network, "members", None)
    groups = [[n for n in ran if n.startswith(f"members.{i}.")] for i in range(len(members))] if members else [ran]
    if not all(groups):  # a network (or member) that runs none of its layers through their modules: no hook sees it
        return [INPUT_LAYER]
    candidates = [[n for n in reversed(group) if layers[n] > n_classes] or [group[-1]] for group in groups]
    if model.card.task == "detection":
        support = point_support(model.network, [n for group in candidates for n in group], shape)
        return [next((n for n in group if support[n] > 1), group[-1]) for group in candidates]
    return [group[0] for group in candidates]


def point_support(network, names: list[str], input_shape) -> dict[str, int]:
    """{name: voxels of the layer's output that the network's output channel 0 at the patch centre depends on}
    (a non-zero gradient, on a random patch of ``input_shape``): 1 for a layer followed by 1x1x1 convolutions
    only, the receptive field of what follows it otherwise."""
    import torch

    modules = dict(network.named_modules())
    outputs: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_module, _inputs, out):
            outputs[name] = out
            return out.clone()  # later in-place layers (ReLU(inplace)) work on the copy: ``out`` stays in the graph
        return hook

    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    weight = next(network.parameters())
    x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0)).to(weight.device, weight.dtype)
    try:
        with torch.enable_grad():
            logits = network(x.requires_grad_(True))
            centre = tuple(s // 2 for s in logits.shape[2:])
            grads = torch.autograd.grad(logits[(0, 0, *centre)], [outputs[n] for n in names], allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    return {n: 0 if g is None else int((g[0].abs().sum(0) > 0).sum()) for n, g in zip(names, grads, strict=True)}


def explainable(card) -> bool:
    """Whether a model of ``card`` has maps to explain it: it gives labels or detections (ai.detection's
    DETECTING_TASKS). A translation model gives an image: no label to explain, no class probabilities whose
    entropy would be its uncertainty."""
    from ai.detection import DETECTING_TASKS

    return card.task in DETECTING_TASKS


def _explained(model: LoadedModel) -> LoadedModel:
    """``model`` as explanations run it (LoadedModel.explained); ModelError for a model that is not explainable."""
    if not explainable(model.card):
        raise ModelError(f"model {model.card.id} makes an image ({model.card.task}), not labels: Grad-CAM, attention "
                         "and uncertainty maps explain segmentation and detection models", model.card_path)
    return model.explained()


def _grad_cam_layer(model: LoadedModel, layer: str) -> str:
    """``layer`` when ``model`` has a Grad-CAM layer of that name (a module, or INPUT_LAYER); else ModelError
    listing them."""
    if layer != INPUT_LAYER and layer not in dict(model.network.named_modules()):
        raise ModelError(f"model {model.card.id} has no layer {layer!r}; its Grad-CAM layers: "
                         f"{', '.join(layer_names(model))}", model.card_path)
    return layer


def check_request(model: LoadedModel, method: str, *, label: str | None = None, layer: str | None = None) -> None:
    """The ModelError :func:`explain` would raise for these arguments, raised before any image is read: a model
    without maps, an unknown method, label, Grad-CAM layer or attention gate, or a layer given to the uncertainty
    map (which has none). A ``label`` is checked for every method, though only Grad-CAM uses it."""
    if method not in METHODS:
        raise ModelError(f"unknown explanation method {method!r} (known: {', '.join(METHODS)})")
    model = _explained(model)
    if label is not None:
        label_id(model, label)
    if method == "gradcam" and layer:
        _grad_cam_layer(model, layer)
    elif method == "attention":
        from ai.attention import resolve_gate

        resolve_gate(model.network, layer, f"model {model.card.id}")
    elif method == "uncertainty" and layer:
        raise ModelError("a layer applies to the gradcam and attention maps, not to uncertainty")


def label_id(model: LoadedModel, name: str | None) -> int:
    """The label id of ``name`` in the model card (None = the first label after background, the lowest
    id > 0); ModelError listing the card's label names when it has no such label."""
    labels = {v: k for k, v in model.card.labels.items() if k}
    if name is None:
        return min(model.card.labels.keys() - {0})
    if name not in labels:
        raise ModelError(f"model {model.card.id} has no label {name!r}; its labels: {', '.join(labels)}",
                         model.card_path)
    return labels[name]


def _on_image(grid: Volume, arr: np.ndarray, image: Volume, description: str) -> Volume:
    """``arr`` on the model ``grid`` resampled (linear) onto ``image``'s grid as a described float32 map."""
    out = resample_to(grid.with_array(arr.astype(np.float32, copy=False), units="arbitrary", modality="OT"), image)
    return out.with_array(out.array.astype(np.float32, copy=False), description=description)


def _window_masks(windows, shape, roi_size):
    """(cores, image), each (B, *roi_size) bool, per window (MONAI's slices into the input of spatial ``shape``,
    padded by MONAI to at least ``roi_size``: half the difference on each side of a shorter axis). ``image``: its
    voxels that are the image's, not padding. ``cores``: the image voxels nearer its centre than any other
    window's, along each axis (ties to the earlier window). The cores partition the image, so a target is counted
    once, by the window that sees the most context around it."""
    import torch

    cores = torch.zeros((len(windows), *roi_size), dtype=torch.bool)
    image = torch.zeros((len(windows), *roi_size), dtype=torch.bool)
    for i, slices in enumerate(windows):
        owned, real = [], []
        for sl, r, n in zip(slices[2:], roi_size, shape, strict=True):
            starts = window_starts(max(n, r), r)
            k = starts.index(sl.start)
            # the boundary with a neighbour lies midway between the two centres: (a + r/2 + b + r/2) / 2
            lo = 0 if k == 0 else (starts[k - 1] + sl.start + r) // 2 + 1 - sl.start
            hi = r if k == len(starts) - 1 else (sl.start + starts[k + 1] + r) // 2 + 1 - sl.start
            pad = max(r - n, 0) // 2  # a shorter axis is one window: its slice starts at 0
            owned.append(slice(max(lo, pad), min(hi, pad + n)))
            real.append(slice(pad, pad + min(n, r)))
        cores[(i, *owned)] = True
        image[(i, *real)] = True
    return cores, image


def _window_coverage(shape, roi_size):
    """(*shape) float32: how many sliding windows (window_starts) cover each voxel of a padded input."""
    import torch

    counts = []
    for n, r in zip(shape, roi_size, strict=True):
        axis = torch.zeros(n)
        for start in window_starts(n, r):
            axis[start:start + r] += 1
        counts.append(axis)
    return counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]


def _sliding_map(model: LoadedModel, x: np.ndarray, tile_map, what: str, progress: ProgressCallback,
                 cancel: CancelToken | None, *, summed: bool = False) -> np.ndarray:
    """One map channel (z, y, x) on the model grid: ``tile_map(batch, cores, image)`` -> (B, 1, *patch) on every
    sliding window of ``x`` (C, z, y, x) (``cores``, ``image``: _window_masks); progress 0..0.95 per tile. The
    windows' maps are blended like the engine's logits (each an estimate of the same map), or ``summed`` (each
    the part of a map that comes from its own core: Grad-CAM's evidence for the whole target is the sum of the
    windows' evidence for their cores, where blending would halve it along every seam between cores)."""
    import torch
    from monai.inferers import sliding_window_inference

    roi_size = network_roi(model)
    inputs = model.to_network_order(torch.from_numpy(np.ascontiguousarray(x)[None]))
    padded = [max(n, r) for n, r in zip(inputs.shape[2:], roi_size, strict=True)]  # MONAI pads small inputs
    total, done = window_count(inputs.shape[2:], roi_size), [0]
    coverage = _window_coverage(padded, roi_size) if summed else None

    def predictor(batch, windows):
        if cancel is not None:
            cancel.raise_if_cancelled()
        out = tile_map(batch, *_window_masks(windows, inputs.shape[2:], roi_size))
        if summed:  # MONAI's "constant" mode divides by the coverage: multiplied first, the windows add up
            out = out * torch.stack([coverage[tuple(w[2:])] for w in windows])[:, None]
        done[0] += batch.shape[0]
        progress(0.95 * min(done[0] / total, 1.0), f"{what} tile {done[0]}/{total}")
        return out

    with torch.no_grad():
        out = sliding_window_inference(inputs, roi_size, sw_batch_size=2, predictor=predictor, overlap=OVERLAP,
                                       mode="constant" if summed else "gaussian",
                                       padding_mode=model.card.window_padding, with_coord=True)
    return model.to_network_order(out)[0, 0].numpy()


@contextmanager
def _frozen(network):
    """``network`` with no parameter requiring gradients inside the block (restored after): backward then
    runs only through what lies after the activation whose gradient is asked for."""
    flags = [(p, p.requires_grad) for p in network.parameters()]
    for p, _ in flags:  # parameter by parameter: a TorchScript module has no requires_grad_
        p.requires_grad_(False)
    try:
        yield network
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _target(model: LoadedModel, logits, label: int, core, image):
    """The scalar Grad-CAM explains in one window: the label's logits over the voxels of the window's ``core``
    the model gives the label (argmax; a multi-label card's channel > 0.5). For a detection model, the detection
    score: the logits at its detections' peaks (local maxima of the label's probability above 0.5; a centre-point
    detector, card detection kind "heatmap" (ai.detection_heatmap): of its heat-map channel 0 above the card's
    threshold; peaks among the window's ``image`` voxels). (scalar, number of target voxels): (None, 0) when the
    window's core has no such voxel."""
    import torch

    card = model.card
    heatmap = card.detection.get("kind") == "heatmap"
    channel = 0 if heatmap else label - 1 if card.multi_label else label
    with torch.no_grad():
        prob = torch.sigmoid(logits[:, channel]) if heatmap or card.multi_label else logits.softmax(1)[:, channel]
        if card.task == "detection":
            if heatmap:
                from ai.detection_heatmap import DEFAULT_THRESHOLD

                threshold = card.detection.get("threshold", DEFAULT_THRESHOLD)
            else:
                threshold = 0.5
            prob = torch.where(image, prob, 0.0)  # a peak is one in the image, whatever MONAI's padding holds
            peak = torch.nn.functional.max_pool3d(prob[:, None], 3, stride=1, padding=1)[:, 0]
            region = (prob == peak) & (prob >= threshold)
        else:
            region = prob > 0.5 if card.multi_label else logits.argmax(1) == label
        region &= core
    count = int(region.sum())
    return (logits[:, channel][region].sum() if count else None), count


def _target_size(model: LoadedModel, grid: Volume, count: int, region: bool) -> str:
    """How much a Grad-CAM map explains, for its description: the given region's or the predicted label's
    volume (mL; ``count`` voxels of the model ``grid``), or a detector's number of detection peaks."""
    if model.card.task == "detection" and not region:
        return f"{count} detection peak{'s' * (count != 1)}"
    ml = count * float(np.prod(grid.spacing)) / 1000.0
    return f"{'region' if region else 'target'} {ml:.1f} mL"


def grad_cam(model: LoadedModel, volumes: list[Volume], label: int, *, layer: str | None = None,
             roi: Volume | None = None, progress: ProgressCallback | None = None,
             cancel: CancelToken | None = None) -> Volume:
    """Class activation map (0..1) of ``label`` by HiResCAM, the Grad-CAM variant that multiplies
    gradients and activations voxel by voxel instead of averaging the gradients over the volume: for a
    fully convolutional segmentation network it shows where the evidence for the label is, where
    averaged weights smear it across the body.

    Target (per sliding window, from the same forward pass that gives the gradient): the sum of the label's
    logits where the model predicts the label in that window's core, away from the edges it shares with other
    windows (see ``_target``; detection models: at their detections' peaks), or inside ``roi`` (a mask on the
    first input's grid) when given. ``layer`` names a module (default: :func:`default_layers`, summed over an
    ensemble's members), or INPUT_LAYER, the input itself (gradient x input, summed over the input channels); only
    its output is made to require a gradient, so backward runs through the layers after it alone. ``progress``
    is reported and ``cancel`` honoured per tile. Scaled so the 99.5th percentile of the positive values is 1.
    The description says how large the explained target is (mL where the windows predict the label, or the
    number of detection peaks): the windows' own prediction, before blending and post-processing, can hold a
    few voxels of a label the final segmentation lacks. ModelError when the label is predicted nowhere."""
    import torch

    model = _explained(model)
    progress = progress or no_progress
    if label not in model.card.labels or label == 0:
        raise ModelError(f"model {model.card.id} has no label {label}", model.card_path)
    layers = [_grad_cam_layer(model, layer)] if layer else default_layers(model)
    modules = dict(model.network.named_modules())
    x, grid = preprocess(model, volumes)
    channels = x.shape[0]
    if roi is not None:  # the mask rides along as the last channel, so each tile knows its target voxels
        mask = onto_model_grid(roi.with_array((roi.array > 0).astype(np.uint8)), grid, nearest=True).array > 0
        if not mask.any():
            raise ModelError("Grad-CAM: the region has no voxels on the model grid")
        x = np.concatenate([x, mask[None].astype(np.float32)])
    net = model.network.cpu().eval()
    saved, targeted = {}, [0]  # targeted: voxels (detections: peaks) whose logits the map explains

    def keep_activation(name):
        def hook(_module, _inputs, out):
            saved[name] = out.detach().requires_grad_(True)  # the graph starts here
            return saved[name].clone()  # later layers may work in place (ReLU(inplace), +=): not on the leaf
        return hook

    def tile_cam(batch, core, image):
        inp = batch[:, :channels]
        if INPUT_LAYER in layers:
            saved[INPUT_LAYER] = inp = inp.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            logits = net(inp)
            if roi is not None:
                inside = (batch[:, channels] > 0.5) & core
                target, count = logits[:, label][inside].sum(), int(inside.sum())
            else:
                target, count = _target(model, logits, label, core, image)
            if not count:
                return torch.zeros((batch.shape[0], 1, *batch.shape[2:]))
            targeted[0] += count
            acts = [saved[name] for name in layers]
            grads = torch.autograd.grad(target, acts)
        heats = [torch.relu((g * a).sum(1, keepdim=True)).detach() for g, a in zip(grads, acts, strict=True)]
        return sum(torch.nn.functional.interpolate(h, size=inp.shape[2:], mode="trilinear", align_corners=False)
                   for h in heats)

    hooks = [modules[name].register_forward_hook(keep_activation(name)) for name in layers if name != INPUT_LAYER]
    try:
        with _frozen(net):
            cam = _sliding_map(model, x, tile_cam, "Grad-CAM", progress, cancel, summed=True)
    finally:
        for hook in hooks:
            hook.remove()
    name = model.card.labels[label]
    if roi is not None:  # its own size on the model grid (the padding of a small input can repeat it)
        targeted[0] = int(mask.sum())
    if not targeted[0]:
        raise ModelError(f"Grad-CAM: model {model.card.id} predicts no {name} in this image (nothing to explain)")
    positive = cam[cam > 0]
    scale = float(np.percentile(positive, 99.5)) if positive.size else 1.0
    cam = np.clip(cam / max(scale, 1e-12), 0, 1)
    size = _target_size(model, grid, targeted[0], roi is not None)
    out = _on_image(grid, cam, volumes[0], f"Grad-CAM {name} ({size}) @ {' + '.join(layers)} (0..1, HiResCAM)")
    progress(1.0, "done")
    return out


def attention_map(model: LoadedModel, volumes: list[Volume], *, layer: str | None = None,
                  progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """An Attention U-Net's gate coefficients (0..1: how much of the skip connection's features pass) on the
    image grid: the finest gate's, or the gate ``layer`` names (ai.attention.resolve_gate), captured by a hook
    during the plain forward pass of every sliding window and upsampled to the patch. ModelError for a network
    without attention gates or an unknown gate (listing the gates)."""
    import torch

    from ai.attention import gate_maps, resolve_gate

    model = _explained(model)
    progress = progress or no_progress
    gate = resolve_gate(model.network, layer, f"model {model.card.id}")
    x, grid = preprocess(model, volumes)
    cpu = torch.device("cpu")
    net = model.to(cpu).inference_network(cpu)
    arr = _sliding_map(model, x, lambda batch, *_masks: gate_maps(net, batch, [gate])[1][gate], "attention",
                       progress, cancel)
    out = _on_image(grid, np.clip(arr, 0, 1), volumes[0], f"attention gate {gate} of {model.card.id} (0..1)")
    progress(1.0, "done")
    return out


def _shifted(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """``a`` moved by ``n`` = +-1 voxel along ``axis``, the vacated edge slice repeated."""
    out = np.roll(a, n, axis=axis)
    edge = [slice(None)] * a.ndim
    edge[axis] = 0 if n > 0 else -1
    out[tuple(edge)] = a[tuple(edge)]
    return out


def perturbations(model: LoadedModel, passes: int = UNCERTAINTY_PASSES) -> list[tuple[str, object, object]]:
    """The test-time perturbations of the uncertainty passes, identity first: (description, input (C, z, y, x)
    -> perturbed input, output (K, z, y, x) -> back on the input's grid). Mirrors along the card's mirror axes
    when it allows them; otherwise (a model trained on one orientation) a one-voxel shift and a small intensity
    scale (SHIFTS)."""
    out = [("identity", lambda a: a, lambda p: p)]
    for axes in mirror_combinations(model.mirror_axes)[1:]:
        dims = tuple(3 - a for a in axes)  # grid axis x=0 is array dim 3 of (C, z, y, x)
        def flip(a, d=dims):
            return np.ascontiguousarray(np.flip(a, d))

        out.append((f"mirror {''.join('xyz'[a] for a in axes)}", flip, flip))
    if len(out) == 1:
        for axis, n, scale in SHIFTS:
            out.append((f"shift {n:+d} {'zyx'[axis - 1]}, intensity x{scale}",
                        lambda a, axis=axis, n=n, scale=scale: _shifted(a, axis, n) * np.float32(scale),
                        lambda p, axis=axis, n=n: _shifted(p, axis, -n)))
    return out[:passes]


@contextmanager
def _mc_dropout(network):
    """Dropout layers of ``network`` kept active (MC dropout) inside the block, even where the engine puts the
    network in eval mode; yields how many there are (0: the network has no dropout)."""
    import torch

    drops = [m for m in network.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0]
    hooks = [m.register_forward_pre_hook(lambda m, _i: m.train()) for m in drops]
    try:
        yield len(drops)
    finally:
        for h in hooks:
            h.remove()
        for m in drops:
            m.eval()


def uncertainty(model: LoadedModel, volumes: list[Volume], *, passes: int = UNCERTAINTY_PASSES, device="cpu",
                progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Volume:
    """Predictive entropy of the mean class probabilities over ``passes`` sliding-window runs (the input and
    its ``perturbations``; with MC dropout when the network has dropout), divided by log(number of classes):
    0 = every run certain of one class, 1 = all classes equally likely. ``cancel`` is honoured within and
    between the passes (Cancelled, nothing returned)."""
    from ai.engine import select_device

    model = _explained(model)
    progress = progress or no_progress
    device = select_device(device) if isinstance(device, str) else device
    x, grid = preprocess(model, volumes)
    runs = perturbations(model, passes)
    mean = None
    with _mc_dropout(model.to(device).inference_network(device)) as n_dropout:
        for n, (_, forward, back) in enumerate(runs, start=1):
            p = back(predict(model, forward(x), device=device, cancel=cancel,
                             progress=lambda f, m, n=n: progress((n - 1 + f) / len(runs) * 0.95,
                                                                 f"pass {n}/{len(runs)}: {m}")))
            mean = p if mean is None else mean + p
            if cancel is not None:
                cancel.raise_if_cancelled()
    mean /= len(runs)
    entropy = np.zeros(mean.shape[1:], np.float32)
    for pk in mean:  # one class at a time: no second (K, z, y, x) array
        entropy -= pk * np.log(np.maximum(pk, 1e-12))
    entropy /= np.float32(np.log(max(len(mean), 2)))
    how = ", ".join(d for d, _, _ in runs) + (f"; MC dropout ({n_dropout} layers)" if n_dropout else "")
    out = _on_image(grid, np.clip(entropy, 0, 1), volumes[0],
                    f"{model.card.id} uncertainty: predictive entropy (0..1) over {how}")
    progress(1.0, "done")
    return out


def explain(model: LoadedModel, volumes: list[Volume], method: str, *, label: str | None = None,
            layer: str | None = None, progress: ProgressCallback | None = None,
            cancel: CancelToken | None = None) -> Volume:
    """The ``method`` map (METHODS) of ``model`` on ``volumes``, on the first one's grid: Grad-CAM of the label
    named ``label`` (default: the first after background) at ``layer``; the attention gate ``layer`` (default:
    the finest); or the uncertainty (a ``label`` is checked but does not change it; a ``layer`` is an error).
    ModelError names what is wrong (see :func:`check_request`, which runs first)."""
    check_request(model, method, label=label, layer=layer)
    model = _explained(model)
    if method == "gradcam":
        return grad_cam(model, volumes, label_id(model, label), layer=layer, progress=progress, cancel=cancel)
    if method == "attention":
        return attention_map(model, volumes, layer=layer, progress=progress, cancel=cancel)
    return uncertainty(model, volumes, progress=progress, cancel=cancel)
