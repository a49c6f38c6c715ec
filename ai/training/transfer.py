"""Transfer learning: copy the encoder (or all) of another model's weights into a new network.

The source is one of our models (an id or a model folder: its card names the network, so its encoder is known;
of an ensemble, its first member, recorded as such, or every member when all of it goes into an ensemble, as in
fine-tuning) or any state-dict file (MONAI / torchvision format; a checkpoint holding ``state_dict``, ``model`` or
``network`` is unwrapped, DataParallel's ``module.`` and torch.compile's ``_orig_mod.`` prefixes are dropped).
Tensors are copied by name where name and shape fit, then by name under one prefix (a ResNet's ``layer1...`` into
a network that holds it as ``backbone.layer1...``); the remaining kernels by order (the longest order-keeping
pairing of fitting shapes), each with its bias: MONAI's UNet and AttentionUnet name their modules differently.
A 2-D kernel (a torchvision ResNet's) fits the 3-D kernel of the same size in-plane: it is inflated as I3D does
(repeated over depth and divided by it; RGB input weights summed for a one-channel input).
The encoder of a network is found by running it once: every parametrised layer that runs before the first layer
whose output is larger than the smallest seen so far (the first upsampling) belongs to the encoder.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections import Counter
from pathlib import Path

from ai.formats.builtin import ENSEMBLE
from ai.model import forward_calls, network_channels, without_wrapper_prefixes
from viewer.core.errors import ModelError

log = logging.getLogger(__name__)
#: wrappers of a state dict in common checkpoint files
STATE_KEYS = ("state_dict", "model", "network", "model_state_dict")


def sha256(path: Path) -> str:
    """The SHA-256 of a file (weights provenance for model cards)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encoder_names(net, patch_zyx) -> list[str]:
    """State-dict keys (buffers included) of ``net``'s encoder, in state-dict order (see the module docstring:
    layers that run before the first one whose output grid is larger than the smallest so far); ``patch_zyx`` is
    an input size the network accepts."""
    leaves = [n for n, m in net.named_modules() if not list(m.children()) and list(m.state_dict())]
    order = [(name, math.prod(shape))
             for name, shape in forward_calls(net.eval(), leaves, (1, network_channels(net)[0] or 1, *patch_zyx))]
    encoder, smallest = set(), None
    for name, size in order:
        if smallest is not None and size > smallest:
            break
        smallest = size if smallest is None else min(smallest, size)
        encoder.add(name)
    return [k for k in net.state_dict() if k.rsplit(".", 1)[0] in encoder]


def load_source(source: str, whole_ensemble: bool = False) -> tuple[dict, dict, list[str] | None]:
    """(state dict (float32), parent record for the card, the source's encoder keys or None when unknown) of a
    model id / model folder / state-dict file; ModelError naming it when it cannot be read. From an ensemble: its
    first member, or every member (``members.<i>.`` keys) when ``whole_ensemble``."""
    import torch

    path = Path(source)
    if path.is_file():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # torch raises several types for non-checkpoint files
            raise ModelError(f"not a PyTorch state-dict file ({type(err).__name__})", path) from err
        for key in STATE_KEYS:
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
        if not isinstance(state, dict) or not all(hasattr(v, "shape") for v in state.values()):
            raise ModelError("file does not hold a state dict of tensors", path)
        return ({k: v.float() for k, v in without_wrapper_prefixes(state).items()},
                {"file": str(path.resolve()), "weights_sha256": sha256(path)}, None)
    from ai.registry import find_model, load_model

    model = load_model(source)
    if model.card.format != "builtin":
        raise ModelError(f"transfer learning copies from radview built-in models or state-dict files; "
                         f"{model.card.id} is a {model.card.format} model", model.folder)
    weights = model.folder / model.card.weights
    parent = {"id": model.card.id, "version": model.card.version, "folder": str(find_model(source).resolve()),
              "weights_sha256": sha256(weights)}
    net = model.network
    if model.card.network.get("class") == ENSEMBLE and not whole_ensemble:  # take the first member's weights
        net = net.members[0]
        runs = model.card.training.get("members") or [{}]
        first = model.card.network["args"]["members"][0]
        parent["member"] = {"index": 0, "id": runs[0].get("id", ""), "network": first}
    encoder = encoder_names(net, tuple(model.card.patch_size[::-1]))
    return net.state_dict(), parent, encoder


def copy_weights(net, state: dict, targets: list[str], sources: list[str] | None = None) -> list[tuple[str, str]]:
    """Copy ``state`` tensors into ``net``'s ``targets`` keys: by name where name and shape fit (see ``fits``), then
    by name under the one prefix that pairs the most tensors, then the remaining kernels (tensors of 2+ dimensions)
    by order: the longest order-keeping pairing of fitting shapes between them and the unused kernels of
    ``sources`` (default every key of ``state``), each with its sibling ``.bias``. Returns [(target key, source
    key)] in target order."""
    import torch

    own = net.state_dict()
    sources = list(state) if sources is None else sources
    pairs = {t: t for t in targets if t in state and t in sources and fits(state[t].shape, own[t].shape)}
    rest = [s for s in sources if s not in pairs]  # a pair by name is (key, key)
    for t, s in _under_one_prefix([t for t in targets if t not in pairs], rest).items():
        if fits(state[s].shape, own[t].shape):
            pairs[t] = s
    used = set(pairs.values())
    target_kernels = [t for t in targets if t not in pairs and own[t].ndim >= 2]
    source_kernels = [s for s in sources if s not in used and state[s].ndim >= 2]
    for i, j in ordered_matches([own[t].shape for t in target_kernels], [state[s].shape for s in source_kernels],
                                lambda target, source: fits(source, target)):
        t, s = target_kernels[i], source_kernels[j]
        pairs[t] = s
        t_bias, s_bias = _sibling(t, "bias"), _sibling(s, "bias")
        if (t_bias in targets and t_bias not in pairs and s_bias in state and s_bias not in used
                and state[s_bias].shape == own[t_bias].shape):
            pairs[t_bias] = s_bias
            used.add(s_bias)
    with torch.no_grad():
        for t, s in pairs.items():
            own[t].copy_(fitted(state[s], own[t].shape).to(own[t].dtype))
    return [(t, pairs[t]) for t in targets if t in pairs]


def fits(source_shape, target_shape) -> bool:
    """Whether a tensor of ``source_shape`` can fill one of ``target_shape``: the same shape, or a 2-D kernel
    (out, in, h, w) for a 3-D one (out, in, d, h, w), with the same input channels or RGB ones for one channel."""
    source, target = tuple(source_shape), tuple(target_shape)
    if source == target:
        return True
    return (len(source) == 4 and len(target) == 5 and source[0] == target[0] and source[2:] == target[3:]
            and (source[1] == target[1] or (source[1], target[1]) == (3, 1)))


def fitted(tensor, target_shape):
    """``tensor`` shaped as ``target_shape`` (see ``fits``). A 2-D kernel is inflated as I3D does: repeated over
    depth and divided by it, so that a volume constant in depth gives the 2-D response; RGB input weights are
    summed for a grey input, which gives the response to a grey image shown in all three colours."""
    if tuple(tensor.shape) == tuple(target_shape):
        return tensor
    if tensor.shape[1] != target_shape[1]:
        tensor = tensor.sum(1, keepdim=True)
    depth = target_shape[2]
    return tensor.unsqueeze(2).expand(-1, -1, depth, -1, -1) / depth


def _under_one_prefix(targets: list[str], sources: list[str]) -> dict[str, str]:
    """Target -> source keys equal but for one prefix on one side (``backbone.`` + a ResNet's own key, or the
    other way round): the prefix that pairs the most keys, at least two."""
    source_set, target_set = set(sources), set(targets)
    votes: Counter = Counter()
    for keys, other, side in ((targets, source_set, "target"), (sources, target_set, "source")):
        for key in keys:
            parts = key.split(".")
            for k in range(1, len(parts)):
                if ".".join(parts[k:]) in other:
                    votes[side, ".".join(parts[:k]) + "."] += 1
    if not votes or votes.most_common(1)[0][1] < 2:
        return {}
    (side, prefix), _ = votes.most_common(1)[0]
    if side == "target":
        return {t: t[len(prefix):] for t in targets if t.startswith(prefix) and t[len(prefix):] in source_set}
    return {s[len(prefix):]: s for s in sources if s.startswith(prefix) and s[len(prefix):] in target_set}


def ordered_matches(a: list, b: list, same=lambda x, y: x == y) -> list[tuple[int, int]]:
    """Index pairs (i, j) of the longest common subsequence of ``a`` and ``b`` (items where ``same(a[i], b[j])``,
    order kept)."""
    n, m = len(a), len(b)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = best[i + 1][j + 1] + 1 if same(a[i], b[j]) else max(best[i + 1][j], best[i][j + 1])
    pairs, i, j = [], 0, 0
    while i < n and j < m:
        if same(a[i], b[j]):
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i + 1][j] >= best[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _is_ensemble(net) -> bool:
    from ai.nets.ensemble import MeanEnsemble

    return isinstance(net, MeanEnsemble)


def _sibling(key: str, name: str) -> str:
    """``a.b.weight`` -> ``a.b.<name>``."""
    return f"{key.rsplit('.', 1)[0]}.{name}"


def initialise(net, source: str, part: str, patch_zyx) -> dict:
    """Copy ``part`` ("encoder" or "all") of ``source`` (see load_source) into ``net``; the parent record for
    the card, with how many tensors were copied. ModelError when nothing fits. An ensemble goes whole into an
    ensemble (member i into member i: fine-tuning one), otherwise its first member is the source."""
    state, parent, source_encoder = load_source(source, whole_ensemble=part == "all" and _is_ensemble(net))
    targets = encoder_names(net, patch_zyx) if part == "encoder" else list(net.state_dict())
    sources = source_encoder if part == "encoder" and source_encoder is not None else list(state)
    copied = copy_weights(net, state, targets, sources)
    if not copied:
        raise ModelError(f"no tensor of its {'encoder' if part == 'encoder' else 'weights'} fits the new network "
                         f"(no matching names or shapes)", parent.get("folder") or parent.get("file"))
    by_name = sum(t == s or t.endswith("." + s) or s.endswith("." + t) for t, s in copied)
    own = net.state_dict()
    inflated = sum(state[s].shape != own[t].shape for t, s in copied)
    log.info("transfer from %s: %d of %d %s tensors copied (%d by name)", source, len(copied), len(targets), part,
             by_name)
    return {**parent, "how": f"init {part}", "tensors_copied": len(copied), "tensors_target": len(targets),
            "copied_by_name": by_name, **({"inflated_from_2d": inflated} if inflated else {})}
