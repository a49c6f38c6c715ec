"""A training run described by a YAML file: the model card fields plus data, sampling, augmentation and optimiser.

Shape (every key listed here; unknown keys are refused with the file and the key named)::

    id: ct-abdomen-organs                     # card fields, same meaning as in model.json (ai.model.ModelCard)
    version: 1.0.0
    name: Abdominal CT organs (3D U-Net)
    task: segmentation                        # a key of ai.training.tasks.TASKS
    inputs: [{modality: CT, name: ct}]
    normalization: [{kind: ct_window, min: -200, max: 300}]
    labels: {0: background, 1: liver, 2: spleen}
    spacing: [3.0, 3.0, 3.0]                  # model grid (x, y, z) mm
    patch_size: [64, 64, 32]                  # (x, y, z) voxels
    network: {class: UNet, args: {...}}       # ai.formats.builtin.build_network
    mirror_axes: []                           # default [] (no flips trained: no mirroring TTA)
    detection: {}                             # detection thresholds of the card
    data:                                     # entries resolved by ai.training.datasets.load_dataset
      train: [{kind: files, images: [ct.nii.gz], labels: ct_labels.nii.gz, names: names.json}]
      validation: [{kind: abdomen_ct_phantom, seeds: [1000, 1006]}]
    sampling: {foreground_fraction: 0.7, balance_labels: true}
    augmentation: {rotate_deg: [15, 15, 15], scale: [0.85, 1.2], elastic: true, intensity_shift: 0.1,
                   intensity_scale: 0.1, gamma: [0.7, 1.5], noise_std: 0.03, blur_sigma: [0.0, 1.0],
                   flip_axes: [], probability: 0.5}
    loss: dice_ce                             # ai.training.losses.LOSSES
    edge_weight: 0.5                          # + edge_weight x boundary loss of an edge head (default 0: none)
    adversarial: {mode: pix2pix, critic: patchgan, weight: 0.05}   # a critic trained against the network
    output: {modality: CT, units: HU, kind: linear, scale: 1000, offset: -1000}  # translation cards
    anatomy: brain                            # translation cards: the region trained on
    optimizer: {name: adamw, lr: 0.002, weight_decay: 0.00001}
    epochs: 40
    iterations_per_epoch: 50
    batch_size: 2
    seed: 0
    early_stopping: {patience: 8, metric: mean_dice, mode: max}
    postprocessing: {thresholds: [0.5, 0.7], min_component_mm3: [0, 500], min_component_confidence: [0, 0.8],
                     largest_component: [false, true]}  # chosen on validation at the end (ai.training.postprocessing)
    operating_point: validation               # detection: the card's threshold chosen on validation at the end
    init: {from: ID|PATH|state_dict.pt, part: encoder}   # transfer learning (optional)
    card: {intended_use: ..., limitations: ..., license: ..., authors: ..., changelog: {...}}

Paths (data entries, ``init.from``) are relative to the config file's folder; ``~`` and ``$VARS`` are expanded.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ai.model import ModelCard
from ai.numbers import is_number, is_whole
from viewer.core.errors import ConfigError


@dataclass
class Sampling:
    """Where training patches are centred: on a labelled voxel with ``foreground_fraction``, the label chosen
    uniformly among those present when ``balance_labels`` (else in proportion to their voxel counts)."""

    foreground_fraction: float = 0.7
    balance_labels: bool = True


@dataclass
class Augmentation:
    """Random patch transforms (MONAI), each applied with ``probability``; a zero / empty value turns one off.

    ``rotate_deg`` (x, y, z) degrees, ``scale`` [min, max] zoom, ``elastic`` deformation, ``intensity_shift`` /
    ``intensity_scale`` (fractions of the normalised range), ``gamma`` [min, max], ``noise_std``,
    ``blur_sigma`` [min, max] voxels, ``flip_axes`` model-grid axes (x=0, y=1, z=2) that anatomy allows."""

    rotate_deg: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    scale: list[float] = field(default_factory=lambda: [1.0, 1.0])
    elastic: bool = False
    intensity_shift: float = 0.0
    intensity_scale: float = 0.0
    gamma: list[float] = field(default_factory=lambda: [1.0, 1.0])
    noise_std: float = 0.0
    blur_sigma: list[float] = field(default_factory=lambda: [0.0, 0.0])
    flip_axes: list[int] = field(default_factory=list)
    probability: float = 0.5


@dataclass
class Optimizer:
    """AdamW (``adamw``) or Adam (``adam``) with learning rate ``lr``, weight decay, and a cosine decay of the
    learning rate over the run when ``schedule`` is ``cosine`` (``constant``: none)."""

    name: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 1e-5
    schedule: str = "cosine"


@dataclass
class EarlyStopping:
    """Stop when validation ``metric`` has not improved for ``patience`` epochs (``mode`` max or min);
    patience 0 never stops early."""

    patience: int = 0
    metric: str = "mean_dice"
    mode: str = "max"


@dataclass
class Adversarial:
    """Adversarial training (ai.training.adversarial): a critic trained against the network, alternating steps.

    ``mode`` pix2pix (the critic judges (input, output) pairs; translation and segmentation) or cyclegan
    (translation from unpaired images: two generators, two critics, cycle and identity losses); ``critic``
    patchgan (least-squares PatchGAN) or multiscale_l1 (SegAN: L1 between the critic's multi-scale features of
    the input masked by the prediction and by the truth); ``weight`` of the adversarial term against the
    supervised loss; ``cycle_weight`` / ``identity_weight`` (cyclegan); the critic's Adam ``critic_lr`` and
    feature ``critic_channels`` per level."""

    mode: str = "pix2pix"
    critic: str = "patchgan"
    weight: float = 0.05
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    critic_lr: float = 2e-4
    critic_channels: list[int] = field(default_factory=lambda: [16, 32, 64])


@dataclass
class PostprocessingSearch:
    """The grid ai.training.postprocessing searches on the validation cases at the end of a segmentation run:
    per label, the argmax or a probability threshold (``thresholds``; [] = the argmax only) x smallest kept
    component volumes ``min_component_mm3`` x smallest kept component median probabilities
    ``min_component_confidence`` (0: every component) x keeping only the largest component or not
    (``largest_component``: [false, true] for organs that are one object). Few validation cases call for a small
    grid."""

    thresholds: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    min_component_mm3: list[float] = field(default_factory=lambda: [0, 100, 250, 500, 1000, 2000])
    min_component_confidence: list[float] = field(default_factory=lambda: [0])
    largest_component: list[bool] = field(default_factory=lambda: [False])


@dataclass
class Init:
    """Transfer learning: copy the ``part`` (``encoder`` or ``all``) of another model (an id, a model folder, or
    a state-dict file) into the new network before training."""

    source: str
    part: str = "encoder"


@dataclass
class TrainConfig:
    """A parsed training config (see the module docstring); ``path`` is the file it was read from (None when
    built in code), ``base`` the folder its relative paths start from, ``raw`` the mapping as written."""

    id: str
    version: str
    name: str
    task: str
    inputs: list[dict]
    normalization: list[dict]
    labels: dict[int, str]
    network: dict
    spacing: list[float] | None = None
    patch_size: list[int] = field(default_factory=lambda: [64, 64, 32])
    mirror_axes: list[int] = field(default_factory=list)
    detection: dict = field(default_factory=dict)
    data: dict[str, list[dict]] = field(default_factory=dict)
    sampling: Sampling = field(default_factory=Sampling)
    augmentation: Augmentation = field(default_factory=Augmentation)
    loss: str = "dice_ce"
    edge_weight: float = 0.0
    adversarial: Adversarial | None = None
    output: dict = field(default_factory=dict)
    anatomy: str = ""
    optimizer: Optimizer = field(default_factory=Optimizer)
    epochs: int = 10
    iterations_per_epoch: int = 50
    batch_size: int = 2
    seed: int = 0
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    postprocessing: PostprocessingSearch | None = None
    operating_point: str = ""
    init: Init | None = None
    card: dict = field(default_factory=dict)
    path: Path | None = None
    base: Path = field(default_factory=Path.cwd)
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        """Read and validate a YAML config; ConfigError names the file and the bad key or value."""
        path = Path(path).expanduser()
        return cls.from_dict(read_yaml(path), path.resolve().parent, path=path)

    @classmethod
    def from_dict(cls, data: Any, base: str | Path, *, path: str | Path | None = None) -> TrainConfig:
        """A config from a mapping (as a YAML file holds it); relative paths start at ``base``. ConfigError names
        ``path`` (or nothing) and the bad key."""
        return _Parser(path).config(data, Path(base).expanduser())

    def model_card(self) -> ModelCard:
        """The card of the model this config trains (documentation fields from ``card``, nothing measured yet)."""
        docs = {k: v for k, v in self.card.items() if k != "training_data"}
        return ModelCard(id=self.id, version=self.version, name=self.name, task=self.task, inputs=self.inputs,
                         normalization=self.normalization, labels=dict(self.labels), spacing=self.spacing,
                         patch_size=list(self.patch_size), network=self.network, mirror_axes=list(self.mirror_axes),
                         detection=dict(self.detection), output=dict(self.output), anatomy=self.anatomy, **docs)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (e.g. ``epochs=2``); ``raw`` records them so the card shows what ran."""
        raw = dict(self.raw)
        for key, value in changes.items():
            raw[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return dataclasses.replace(self, raw=raw, **changes)


#: card documentation fields a config's ``card`` may set
CARD_FIELDS = ("intended_use", "limitations", "license", "authors", "changelog", "training_data")
SECTIONS = {"sampling": Sampling, "augmentation": Augmentation, "optimizer": Optimizer,
            "early_stopping": EarlyStopping}
REQUIRED = ("id", "version", "name", "task", "inputs", "normalization", "labels", "network", "data")


class _Parser:
    """Checks one config mapping key by key, raising ConfigError that names the file and the key."""

    def __init__(self, path):
        self.path = path

    def fail(self, problem: str):
        raise ConfigError(problem, self.path)

    def config(self, data: Any, base: Path) -> TrainConfig:
        if not isinstance(data, dict):
            self.fail("a training config is a mapping of keys (id, task, network, data, ...)")
        fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"path", "base", "raw"}
        unknown = sorted(set(map(str, data)) - fields)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})")
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            self.fail(f"missing key(s) {', '.join(missing)}")
        values = {"id": self.text(data, "id"), "version": str(data["version"]), "name": self.text(data, "name"),
                  "task": self.text(data, "task"), "inputs": self.dicts(data, "inputs"),
                  "normalization": self.dicts(data, "normalization"),
                  "labels": self.labels(data["labels"], translation=data["task"] == "translation"),
                  "network": self.network(data["network"]), "data": self.data(data["data"])}
        if len(values["normalization"]) != len(values["inputs"]):
            self.fail("normalization needs one entry per input channel")
        if "spacing" in data:
            values["spacing"] = None if data["spacing"] is None else self.numbers(data, "spacing", 3, float)
        if "patch_size" in data:
            values["patch_size"] = self.numbers(data, "patch_size", 3, int)
        if "mirror_axes" in data:
            values["mirror_axes"] = self.axes(data["mirror_axes"], "mirror_axes")
        if "detection" in data:
            values["detection"] = self.mapping(data, "detection")
        for key, section in SECTIONS.items():
            if key in data:
                values[key] = self.section(data[key], key, section)
        if "augmentation" in data:
            values["augmentation"].flip_axes = self.axes(values["augmentation"].flip_axes, "augmentation.flip_axes")
        if "loss" in data:
            values["loss"] = self.text(data, "loss")
        if "edge_weight" in data:
            values["edge_weight"] = self.number(data["edge_weight"], "edge_weight")
        if data.get("adversarial") is not None:
            values["adversarial"] = self.section(data["adversarial"], "adversarial", Adversarial)
        if "output" in data:
            values["output"] = self.mapping(data, "output")
        if "anatomy" in data:
            values["anatomy"] = self.text(data, "anatomy")
        for key, minimum in (("epochs", 1), ("iterations_per_epoch", 1), ("batch_size", 1), ("seed", 0)):
            if key in data:
                values[key] = self.integer(data[key], key, minimum)
        if data.get("init") is not None:
            values["init"] = self.init(data["init"], base)
        if data.get("postprocessing") is not None:
            values["postprocessing"] = self.postprocessing(data["postprocessing"], values["task"])
        if data.get("operating_point") is not None:
            values["operating_point"] = self.operating_point(data["operating_point"], values["task"])
        if "card" in data:
            values["card"] = self.mapping(data, "card")
            bad = sorted(set(values["card"]) - set(CARD_FIELDS))
            if bad:
                self.fail(f"card: unknown key(s) {', '.join(bad)} (known: {', '.join(CARD_FIELDS)})")
        return TrainConfig(**values, path=Path(self.path) if self.path else None, base=base, raw=dict(data))

    # ------------------------------------------------------------------ one check per kind of value
    def text(self, data: dict, key: str) -> str:
        if not isinstance(data[key], str) or not data[key].strip():
            self.fail(f"{key} must be a non-empty string, got {data[key]!r}")
        return data[key]

    def mapping(self, data: dict, key: str) -> dict:
        value = data[key] if data[key] is not None else {}
        if not isinstance(value, dict):
            self.fail(f"{key} must be a mapping, got {value!r}")
        return dict(value)

    def dicts(self, data: dict, key: str) -> list[dict]:
        value = data[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, dict) for v in value):
            self.fail(f"{key} must be a non-empty list of mappings, got {value!r}")
        return [dict(v) for v in value]

    def integer(self, value, key: str, minimum: int) -> int:
        if not is_whole(value) or value < minimum:
            self.fail(f"{key} must be a whole number >= {minimum}, got {value!r}")
        return value

    def number(self, value, key: str) -> float:
        if not is_number(value) or value < 0:
            self.fail(f"{key} must be a number >= 0, got {value!r}")
        return float(value)

    def numbers(self, data: dict, key: str, n: int, kind: type) -> list:
        value = data[key]
        ok = isinstance(value, list) and len(value) == n and all(is_number(v) and v > 0 for v in value)
        if not ok or (kind is int and not all(isinstance(v, int) for v in value)):
            self.fail(f"{key} must be {n} positive {'whole ' if kind is int else ''}numbers (x, y, z), got {value!r}")
        return [kind(v) for v in value]

    def axes(self, value, key: str) -> list[int]:
        if not isinstance(value, list) or not all(is_whole(v) and v in (0, 1, 2) for v in value):
            self.fail(f"{key} must list model-grid axes 0 (x), 1 (y), 2 (z), got {value!r}")
        return sorted(set(value))

    def labels(self, value, translation: bool = False) -> dict[int, str]:
        try:
            labels = {int(k): str(v) for k, v in dict(value or {}).items()}
        except (TypeError, ValueError):
            self.fail(f"labels must map whole-number ids to names, e.g. {{0: background, 1: liver}}, got {value!r}")
        if translation:  # a translation model gives an image, not labels (ai.translation)
            if labels:
                self.fail(f"labels of a translation model must be {{}} (it gives an image), got {value!r}")
            return labels
        if 0 not in labels or any(k < 0 or k > 255 for k in labels) or len(labels) < 2:
            self.fail(f"labels need 0 (background) and at least one label id 1..255, got {value!r}")
        return labels

    def network(self, value) -> dict:
        if not isinstance(value, dict) or not isinstance(value.get("class"), str):
            self.fail(f"network must be {{class: UNet, args: {{...}}}}, got {value!r}")
        bad = sorted(set(value) - {"class", "args"})
        if bad:
            self.fail(f"network: unknown key(s) {', '.join(bad)} (known: class, args)")
        if not isinstance(value.get("args", {}), dict):
            self.fail(f"network.args must be a mapping, got {value.get('args')!r}")
        return {"class": value["class"], "args": dict(value.get("args", {}))}

    def data(self, value) -> dict[str, list[dict]]:
        if not isinstance(value, dict) or "train" not in value:
            self.fail("data must be {train: [entries], validation: [entries]} (validation optional)")
        bad = sorted(set(value) - {"train", "validation"})
        if bad:
            self.fail(f"data: unknown key(s) {', '.join(bad)} (known: train, validation)")
        out = {}
        for split in ("train", "validation"):
            entries = value.get(split) or []
            if not isinstance(entries, list) or not all(isinstance(e, dict) and "kind" in e for e in entries):
                self.fail(f"data.{split} must be a list of entries each with a 'kind', got {entries!r}")
            out[split] = [{k: _expand(v) for k, v in e.items()} for e in entries]
        if not out["train"]:
            self.fail("data.train lists no entries")
        return out

    def section(self, value, key: str, cls: type):
        if not isinstance(value, dict):
            self.fail(f"{key} must be a mapping, got {value!r}")
        known = {f.name: f for f in dataclasses.fields(cls)}
        bad = sorted(set(value) - set(known))
        if bad:
            self.fail(f"{key}: unknown key(s) {', '.join(bad)} (known: {', '.join(known)})")
        defaults = cls()
        for name, v in value.items():
            default = getattr(defaults, name)
            if isinstance(default, bool):
                ok = isinstance(v, bool)
            elif isinstance(default, int | float):
                ok = is_number(v) and v >= 0
            elif isinstance(default, list):
                ok = isinstance(v, list) and (not default or len(v) == len(default)) and all(map(is_number, v))
            else:
                ok = isinstance(v, str)
            if not ok:
                self.fail(f"{key}.{name} must be like {default!r}, got {v!r}")
        return cls(**value)

    def postprocessing(self, value, task: str) -> PostprocessingSearch:
        if task != "segmentation":
            self.fail(f"postprocessing is chosen for segmentation models only, not {task!r}")
        known = {"thresholds", "min_component_mm3", "min_component_confidence", "largest_component"}
        if not isinstance(value, dict) or set(value) - known:
            self.fail("postprocessing must be {thresholds: [0.5, ...], min_component_mm3: [0, ...], "
                      f"min_component_confidence: [0, ...], largest_component: [false, true]}}, got {value!r}")
        search = PostprocessingSearch(**value)
        if not all(is_number(t) and 0 < t < 1 for t in search.thresholds):  # none: the argmax only
            self.fail(f"postprocessing.thresholds must be numbers in (0, 1), got {search.thresholds!r}")
        if not search.min_component_mm3 or not all(is_number(v) and v >= 0 for v in search.min_component_mm3):
            self.fail(f"postprocessing.min_component_mm3 must be volumes >= 0, got {search.min_component_mm3!r}")
        if not search.min_component_confidence or not all(is_number(c) and 0 <= c < 1
                                                          for c in search.min_component_confidence):
            self.fail(f"postprocessing.min_component_confidence must be median probabilities in [0, 1), got "
                      f"{search.min_component_confidence!r}")
        if not search.largest_component or not all(isinstance(v, bool) for v in search.largest_component):
            self.fail(f"postprocessing.largest_component must be a list of true / false, got "
                      f"{search.largest_component!r}")
        return search

    def operating_point(self, value, task: str) -> str:
        if task != "detection":
            self.fail(f"operating_point is chosen for detection models only, not {task!r}")
        if value != "validation":
            self.fail(f"operating_point must be 'validation' (the threshold that best meets the acceptance rule on "
                      f"the validation cases), got {value!r}")
        return value

    def init(self, value, base: Path) -> Init:
        if not isinstance(value, dict) or "from" not in value:
            self.fail(f"init must be {{from: MODEL_ID|FOLDER|state_dict.pt, part: encoder}}, got {value!r}")
        bad = sorted(set(value) - {"from", "part"})
        if bad:
            self.fail(f"init: unknown key(s) {', '.join(bad)} (known: from, part)")
        part = value.get("part", "encoder")
        if part not in ("encoder", "all"):
            self.fail(f"init.part must be 'encoder' or 'all', got {part!r}")
        source = _expand(str(value["from"]))
        resolved = base / source
        return Init(str(resolved.resolve()) if resolved.exists() else source, part)


def read_yaml(path: Path) -> Any:
    """The contents of the YAML file ``path``; ConfigError when it is missing or not YAML."""
    import yaml

    if not path.is_file():
        raise ConfigError("training config does not exist", path)
    try:
        return yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ConfigError(f"not valid YAML ({str(err).splitlines()[0]})", path) from err


def _expand(value):
    """A string with ``~`` and ``$VARS`` expanded (lists element-wise); other values unchanged."""
    if isinstance(value, str):
        return os.path.expanduser(os.path.expandvars(value))
    if isinstance(value, list):
        return [_expand(v) for v in value]
    return value
