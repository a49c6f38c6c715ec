"""The in-memory model interface every format loads into: a model card plus a torch network."""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ai.numbers import is_number, is_whole
from ai.postprocess import postprocessing_problem
from viewer.core.errors import ModelError

TASKS = ("segmentation", "detection", "translation")
DETECTION_FIELDS = ("min_voxels", "kind", "threshold", "min_distance_mm")  # what a card's ``detection`` may state
DETECTION_KINDS = ("components", "heatmap")  # findings from label components, or from heat-map peaks
#: how sliding windows may pad an input thinner than the patch (ModelCard.window_padding)
WINDOW_PADDINGS = ("constant", "replicate")
_POSITIVE_LPS = ("LR", "PA", "SI")  # per world LPS axis: (code of +direction, code of -direction)


def axis_codes(codes: str) -> list[tuple[int, int]] | None:
    """[(world LPS axis, sign)] per grid axis for axis codes such as "RAS" (nibabel/MONAI meaning: the
    axis runs towards R, A, S), or None if ``codes`` is not a permutation of one code per world axis."""
    out = []
    for c in codes.upper():
        hit = [(w, 1 if pair[0] == c else -1) for w, pair in enumerate(_POSITIVE_LPS) if c in pair]
        if not hit:
            return None
        out.append(hit[0])
    return out if len(out) == 3 and sorted(w for w, _ in out) == [0, 1, 2] else None


@dataclass
class ModelCard:
    """What ``model.json`` says about a model (fields borrowed from MONAI bundle metadata).

    ``inputs``: one dict per channel, e.g. ``{"modality": "CT", "name": "ct"}``;
    ``normalization``: one dict per channel, e.g. ``{"kind": "ct_window", "min": -250, "max": 350}``
    (kinds: ct_window or its alias ct_clip, zscore, percentile_zscore, suv, none: see ai.normalize; MONAI
    bundles may state ``{"kind": "bundle", "transforms": [...]}``: only the bundle's own pipeline applies them);
    ``spacing`` and ``patch_size``: per model-grid axis (x, y, z) in mm and voxels;
    ``labels``: {id: name} with 0 = background (a ``translation`` card has none: ``{}``);
    ``output`` (translation): how the network's one output channel becomes an image, e.g. ``{"modality": "CT",
    "units": "HU", "kind": "linear", "scale": 1000, "offset": -1000, "clip": [-1024, 3071]}`` (value = network
    output * scale + offset; see ai.translation); ``anatomy``: the body region it was trained on, e.g. "brain".
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
    #: the model grid's layout (see ai.engine.model_grid): ``orientation`` = axis codes of its axes
    #: ("LPS", "RAS", ...; "" = the image's stored axes), ``grid`` = "axis_aligned" (radview: resampled
    #: onto exactly those world axes, covering the image's extent) or "monai" (MONAI Orientationd +
    #: Spacingd: the stored axes permuted/flipped to the nearest codes, starting at the first voxel
    #: centre), ``array_order`` = the network's axis order: "zyx" (SimpleITK) or "xyz" (MONAI LoadImage)
    orientation: str = "LPS"
    grid: str = "axis_aligned"
    array_order: str = "zyx"
    #: how sliding windows pad an input thinner than the patch (ai.engine.predict): "constant" (zeros, MONAI's
    #: default) or "replicate" (the image's edge repeated, as ``radview train`` cuts its training patches)
    window_padding: str = "constant"
    network_data_format: dict = field(default_factory=dict)  # MONAI bundle style inputs/outputs description
    #: how findings are taken from the label map (ai.detection): ``{"min_voxels": n}`` drops components of
    #: fewer than n voxels; a field left out takes ai.detection's default. ``{"kind": "heatmap", "threshold": t,
    #: "min_distance_mm": d}``: a centre-point detector's heat-map peaks >= t, d mm apart (ai.detection_heatmap)
    detection: dict = field(default_factory=dict)
    #: the network gives one independent (sigmoid) channel per label 1.. (no background channel): MONAI
    #: bundles whose postprocessing takes a sigmoid; overlapping masks become labels in channel order
    multi_label: bool = False
    #: the model this one was initialised or fine-tuned from: ``{"id", "version", "folder", "weights_sha256",
    #: "how": "finetune" | "init encoder" | ...}`` ({} = trained from scratch)
    parent: dict = field(default_factory=dict)
    #: how ``radview train`` made it (ai.training.model_folder): data entries and cases, date, seconds, device,
    #: epochs run, best epoch, per-epoch history, the config itself
    training: dict = field(default_factory=dict)
    #: measured comparisons with other runs, e.g. transfer learning against training from scratch
    #: ``[{"name", "data", "runs": [{"label", "metrics"}], "gain"}]``
    comparisons: list[dict] = field(default_factory=list)
    output: dict = field(default_factory=dict)
    anatomy: str = ""
    #: segmentation post-processing chosen on validation data (ai.postprocess): per-label probability thresholds
    #: and smallest components kept, ``{"labels": {"lesion": {"threshold": 0.8, "min_component_mm3": 1000}}, ...}``
    postprocessing: dict = field(default_factory=dict)

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
        problem = card.layout_problem() or card.detection_problem() or (
            postprocessing_problem(card.postprocessing, card.labels) if card.postprocessing else None)
        if problem:
            raise ModelError(problem, path)
        return card

    def layout_problem(self) -> str | None:
        """Why ``orientation`` / ``grid`` / ``array_order`` / ``window_padding`` are not valid, or None."""
        if self.orientation and axis_codes(self.orientation) is None:
            return f"orientation {self.orientation!r} is not three axis codes (e.g. LPS, RAS) or ''"
        if self.grid not in ("axis_aligned", "monai"):
            return f"grid {self.grid!r} is not 'axis_aligned' or 'monai'"
        if self.array_order not in ("zyx", "xyz"):
            return f"array_order {self.array_order!r} is not 'zyx' or 'xyz'"
        if self.window_padding not in WINDOW_PADDINGS:
            return f"window_padding {self.window_padding!r} is not one of {', '.join(WINDOW_PADDINGS)}"
        return None

    def detection_problem(self) -> str | None:
        """Why ``detection`` is not an object of known thresholds (``min_voxels``: a whole number >= 1; ``kind``: one
        of DETECTION_KINDS; ``threshold``: in (0, 1); ``min_distance_mm``: > 0), or None."""
        if not isinstance(self.detection, dict):
            return f"detection {self.detection!r} is not an object such as {{\"min_voxels\": 5}}"
        unknown = sorted(set(self.detection) - set(DETECTION_FIELDS))
        if unknown:
            return f"detection has unknown field(s) {', '.join(unknown)} (known: {', '.join(DETECTION_FIELDS)})"
        n = self.detection.get("min_voxels", 1)
        if not is_whole(n) or n < 1:
            return f"detection min_voxels {n!r} is not a whole number >= 1"
        if self.detection.get("kind", "components") not in DETECTION_KINDS:
            return f"detection kind {self.detection['kind']!r} is not one of {', '.join(DETECTION_KINDS)}"
        t, d = self.detection.get("threshold", 0.5), self.detection.get("min_distance_mm", 1.0)
        if not is_number(t) or not 0 < t < 1:
            return f"detection threshold {t!r} is not a number between 0 and 1"
        if not is_number(d) or d <= 0:
            return f"detection min_distance_mm {d!r} is not a positive number"
        return None

    @property
    def modalities(self) -> list[str]:
        return [c["modality"] for c in self.inputs]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = {str(k): v for k, v in self.labels.items()}
        return d


def network_channels(network) -> tuple[int | None, int | None]:
    """(in_channels of the first convolution, out_channels of the last) of a torch module, TorchScript
    ones included; (None, None) when it has no convolution."""
    convs = [m for m in network.modules()
             if isinstance(getattr(m, "in_channels", None), int) and isinstance(getattr(m, "out_channels", None), int)
             and (type(m).__name__.startswith("Conv") or
                  str(getattr(m, "original_name", "")).startswith("Conv"))]
    return (convs[0].in_channels, convs[-1].out_channels) if convs else (None, None)


def without_wrapper_prefixes(weights: dict) -> dict:
    """A state dict with its keys freed of the prefixes torch.compile (``_orig_mod.``) and DataParallel
    (``module.``) add, so they match the plain network's names."""
    out = {}
    for key, value in weights.items():
        for prefix in ("_orig_mod.", "module."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def forward_calls(network, names: list[str], input_shape) -> list[tuple[str, tuple[int, ...]]]:
    """(name, output spatial shape) of each call of the modules ``names`` of ``network`` while it runs once on
    zeros of ``input_shape`` (B, C, ...), in the order they run: for a nested network (MONAI's UNet and
    AttentionUnet register the deeper levels after the layers that run after them) not the order of its modules."""
    import torch

    modules = dict(network.named_modules())
    calls: list[tuple[str, tuple[int, ...]]] = []

    def recorder(name):
        def record(module, inputs, output):
            out = output[0] if isinstance(output, tuple | list) else output
            calls.append((name, tuple(out.shape[2:])))
        return record

    handles = [modules[n].register_forward_hook(recorder(n)) for n in names]
    weight = next(network.parameters(), None)
    try:
        with torch.no_grad():
            network(torch.zeros(*input_shape, device=weight.device if weight is not None else "cpu",
                                dtype=weight.dtype if weight is not None else torch.float32))
    finally:
        for handle in handles:
            handle.remove()
    return calls


def mirror_combinations(axes) -> list[tuple[int, ...]]:
    """The identity and every non-empty combination of the mirror ``axes`` (2^k runs), in nnU-Net's order."""
    axes = sorted(set(axes))
    return [c for n in range(len(axes) + 1) for c in itertools.combinations(axes, n)]


@dataclass
class LoadedModel:
    """A model ready to run: its card, a torch module mapping (B, C, *patch) to logits, and its folder."""

    card: ModelCard
    network: Any  # torch.nn.Module
    folder: Path | None = None
    _cpu_copy: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_classes(self) -> int:
        return max(self.card.labels, default=0) + 1

    @property
    def card_path(self) -> Path | None:
        """The file the card was read from (model.json, or a bundle's metadata.json / nnU-Net's dataset.json)."""
        if self.folder is None:
            return None
        for name in ("model.json", "configs/metadata.json", "dataset.json"):
            if (self.folder / name).is_file():
                return self.folder / name
        return self.folder

    @property
    def mirror_axes(self) -> list[int]:
        """Axes (x=0, y=1, z=2) the model may be mirrored along for test-time augmentation."""
        return list(self.card.mirror_axes)

    def explained(self) -> LoadedModel:
        """The model as explanations (ai.explain) run it, one network giving its logits in one forward pass:
        this one (a model whose prediction combines several networks in another way overrides it)."""
        return self

    def inference_network(self, device):
        """The module to call on ``device``: on a CPU the network's channels-last copy (ai.cpu_network), made
        once per network object; elsewhere the network itself."""
        if device.type != "cpu":
            return self.network
        if self._cpu_copy is None or self._cpu_copy[0] is not self.network:
            from ai.cpu_network import cpu_inference_network

            self._cpu_copy = (self.network, cpu_inference_network(self.network))
        return self._cpu_copy[1]

    def to_network_order(self, x):
        """A (B, C, z, y, x) array or tensor of the model grid in the network's axis order (a view), and
        back again (the permutation is its own inverse)."""
        if self.card.array_order == "zyx":
            return x
        return x.permute(0, 1, 4, 3, 2) if hasattr(x, "permute") else x.transpose(0, 1, 4, 3, 2)

    def mirror_dims(self, axes) -> list[int]:
        """Dimensions of a (B, C, ...) network-order tensor for model-grid axes (x=0, y=1, z=2)."""
        return [2 + (a if self.card.array_order == "xyz" else 2 - a) for a in axes]

    def check_network(self) -> None:
        """ModelError naming the card file unless the network's first convolution takes one channel per
        card input and its last one gives one channel per label (per label but background for a
        ``multi_label`` card; networks without convolutions pass)."""
        first, last = network_channels(self.network)
        n_inputs = len(self.card.inputs)
        n_out = self.num_classes - 1 if self.card.multi_label else self.num_classes
        if self.card.task == "translation":  # one image channel out (ai.translation)
            n_out = 1
        if first is not None and first != n_inputs:
            raise ModelError(f"the card lists {n_inputs} input channel(s) ({' + '.join(self.card.modalities)}) but "
                             f"the network takes {first}", self.card_path)
        if last is not None and last != n_out and self.card.task == "translation":
            raise ModelError(f"a translation model gives one image channel but the network gives {last}",
                             self.card_path)
        if last is not None and last != n_out:
            raise ModelError(f"the card's labels 0..{self.num_classes - 1} need {n_out} output channels but "
                             f"the network gives {last}", self.card_path)

    def to(self, device) -> LoadedModel:
        self.network = self.network.to(device)
        return self
