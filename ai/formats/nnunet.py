"""nnU-Net v2 trained-model folders (dataset.json, plans.json, fold_*/checkpoint_final.pth) as radview models.

The network is rebuilt from plans.json with ``dynamic_network_architectures`` exactly as nnunetv2's
``get_network_from_plans`` does (only classes from that package and ``torch.nn`` are accepted), checkpoints are
read with ``torch.load(weights_only=True)``, and inference replays nnU-Net's own preprocessing, sliding window
and export (``ai.formats.nnunet_preprocess`` / ``nnunet_predict`` / ``nnunet_resample``) on the image's own voxel
grid, as nnU-Net does: labels come out on the first input's grid. nnunetv2 itself is never imported.
"""

from __future__ import annotations

import copy
import inspect
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ai.model import LoadedModel, ModelCard, without_wrapper_prefixes
from viewer.core.errors import ModelError
from viewer.core.volume import Volume

log = logging.getLogger(__name__)
CHECKPOINT = "checkpoint_final.pth"
NETWORK_PACKAGE = "dynamic_network_architectures.architectures."
#: what builds the networks; not a dependency of radview: it declares timm, which pulls torchvision and replaces
#: the CPU torch, so it is installed with --no-deps (the Makefile's NO_DEPS_PACKAGES, same pin)
NETWORK_REQUIREMENT = "dynamic-network-architectures==0.4.4"
SUPPORTED_RESAMPLING = "resample_data_or_seg_to_shape"
_MODALITY = {"CT": "CT", "PET": "PT", "PT": "PT"}


def looks_like_nnunet(folder: Path) -> bool:
    """Does ``folder`` hold any part of an nnU-Net trained-model folder (dataset.json, plans.json or a
    fold_* folder)? A broken one is recognised too, so loading it names the missing file."""
    return ((folder / "dataset.json").is_file() or (folder / "plans.json").is_file()
            or any(p.is_dir() for p in folder.glob("fold_*")))


def nnunet_candidates(path: str | Path) -> list[Path]:
    """Trained-model folders (see looks_like_nnunet) at ``path`` or directly under it."""
    path = Path(path)
    if not path.is_dir():
        return []
    if looks_like_nnunet(path):
        return [path]
    return sorted(p for p in path.iterdir() if p.is_dir() and looks_like_nnunet(p))


def trained_folder(path: str | Path) -> Path:
    """The Trainer__Plans__Configuration folder ``path`` is or holds; ModelError if none or several."""
    found = nnunet_candidates(path)
    if not found:
        raise ModelError("not an nnU-Net trained-model folder (no dataset.json, plans.json or fold_*)", path)
    if len(found) > 1:
        raise ModelError(f"holds several nnU-Net trained models ({', '.join(p.name for p in found)}); "
                         "give the folder of one", path)
    return found[0]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelError(f"nnU-Net file {path.name} is missing", path)
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ModelError(f"not valid JSON ({err})", path) from err


def read_labels(dataset: dict, path: Path) -> tuple[dict[int, str], int | None]:
    """({value: name} of the network outputs, ignore label or None); region-based datasets raise ModelError."""
    raw = dataset.get("labels")
    if not isinstance(raw, dict) or not raw:
        raise ModelError("nnU-Net v2 dataset.json has no labels", path)
    regions = [name for name, value in raw.items() if isinstance(value, (list, tuple))]
    if regions:
        raise ModelError(f"region-based nnU-Net models are not supported (labels {', '.join(regions)} are regions: "
                         "overlapping sigmoid outputs, not one label per voxel)", path)
    ignore = raw.get("ignore")
    labels = {int(v): name for name, v in raw.items() if name != "ignore"}
    if sorted(labels) != list(range(len(labels))):
        raise ModelError(f"label values must be 0..{len(labels) - 1} without gaps, got {sorted(labels)}", path)
    return labels, None if ignore is None else int(ignore)


def find_folds(folder: Path, checkpoint: str) -> list[str]:
    """Folds with a checkpoint, as nnU-Net auto-detects them (fold_all excluded)."""
    folds = [p.name[5:] for p in folder.glob("fold_*") if p.name != "fold_all" and (p / checkpoint).is_file()]
    if not folds:
        raise ModelError(f"no fold_*/{checkpoint} found", folder)
    return sorted(folds, key=lambda f: (not f.isdigit(), int(f) if f.isdigit() else 0, f))


def load_checkpoint(path: Path) -> dict:
    """An nnU-Net checkpoint read with weights_only=True (numpy scalars in its training log allow-listed)."""
    import torch

    if not path.is_file():
        raise ModelError(f"{path.parent.name}/{path.name} is missing", path)
    allowed = [np.dtype, *(type(np.dtype(t)) for t in ("f2", "f4", "f8", "i4", "i8", "u1", "b1"))]
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / numpy 1
    # numpy scalars (floats in the training log) under both module names: checkpoints written with numpy 1
    # (e.g. TotalSegmentator's) say numpy.core.multiarray.scalar
    allowed += [(core.multiarray.scalar, f"numpy.{mod}.multiarray.scalar") for mod in ("core", "_core")]
    try:
        with torch.serialization.safe_globals(allowed):
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError (zip), EOFError ...: the file cannot be read safely
        raise ModelError(f"cannot be read as a safe PyTorch checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]})", path) from err
    if not isinstance(ckpt, dict) or "network_weights" not in ckpt:
        raise ModelError("not an nnU-Net checkpoint (no network_weights)", path)
    return ckpt


def require_network_package(path: Path) -> None:
    """ModelError, one line saying what to install and how, if dynamic_network_architectures is not installed."""
    try:
        import dynamic_network_architectures  # noqa: F401
    except ImportError as err:
        raise ModelError("nnU-Net models need the dynamic-network-architectures package: pip install --no-deps "
                         f"{NETWORK_REQUIREMENT} (--no-deps keeps the CPU torch; make venv does this)", path) from err


def build_network(architecture: dict, in_channels: int, out_channels: int, path: Path):
    """The network plans.json describes (get_network_from_plans), restricted to dynamic_network_architectures."""
    import pydoc

    name = architecture.get("network_class_name", "")
    if not name.startswith(NETWORK_PACKAGE):
        raise ModelError(f"network class {name!r} is not from dynamic_network_architectures", path)
    kwargs = dict(architecture.get("arch_kwargs", {}))
    for key in architecture.get("_kw_requires_import", ()):
        if kwargs.get(key) is None:
            continue
        if not str(kwargs[key]).startswith("torch.nn."):
            raise ModelError(f"plans.json {key} {kwargs[key]!r} is not a torch.nn class", path)
        kwargs[key] = pydoc.locate(kwargs[key])
        if kwargs[key] is None:
            raise ModelError(f"plans.json {key}: class not found in torch", path)
    try:
        cls = pydoc.locate(name)
    except pydoc.ErrorDuringImport as err:  # the class's module imports a package radview does not install
        raise ModelError(f"network class {name} cannot be imported ({type(err.value).__name__}: {err.value})",
                         path) from err
    if cls is None:
        raise ModelError(f"network class {name} not found (dynamic_network_architectures too old?)", path)
    if "deep_supervision" in inspect.signature(cls.__init__).parameters:
        kwargs["deep_supervision"] = False
    try:
        return cls(input_channels=in_channels, num_classes=out_channels, **kwargs)
    except TypeError as err:
        raise ModelError(f"cannot build {name} from plans.json ({err})", path) from err


def _configuration(plans: dict, name: str, path: Path) -> dict:
    """A plans.json configuration with ``inherits_from`` resolved."""
    configs = plans.get("configurations", {})
    seen = []
    while True:
        if name not in configs:
            raise ModelError(f"plans.json has no configuration {name!r} (has {', '.join(configs)})", path)
        if name in seen:
            raise ModelError(f"plans.json configurations inherit in a circle ({' -> '.join(seen)})", path)
        seen.append(name)
        parent = configs[name].get("inherits_from")
        if parent is None:
            break
        name = parent
    config: dict = {}
    for n in reversed(seen):
        config.update(copy.deepcopy(configs[n]))
    return config


@dataclass
class NnUNetModel(LoadedModel):
    """A loaded nnU-Net v2 model: ``network`` holds the first fold's weights; ``segment_volumes`` runs the
    whole nnU-Net pipeline (preprocess -> sliding window over every fold -> export) on the image's grid."""

    plans: dict = field(default_factory=dict)
    configuration: dict = field(default_factory=dict)
    fold_weights: list = field(default_factory=list)
    folds: list = field(default_factory=list)
    allowed_mirror_axes: tuple | None = None  # nnU-Net's axes of the transposed array, from the checkpoint
    use_mirroring: bool = True
    precision: str = "float32"  # or "bfloat16": network under bf16 autocast (faster, labels may differ slightly)
    _fold_ensemble: LoadedModel | None = field(default=None, init=False, repr=False, compare=False)

    def to(self, device) -> NnUNetModel:
        self.network = self.network.to(device)
        return self

    def explained(self) -> LoadedModel:
        """This model as explanations run it: one network whose logits are the mean of every fold's, as
        nnU-Net's prediction averages them (ai.nets.ensemble.MeanEnsemble, fold i = member i; Grad-CAM then sums
        over the folds); itself when it has one fold. Built once (a copy of the network per fold)."""
        if len(self.fold_weights) < 2:
            return self
        if self._fold_ensemble is None:
            from ai.nets.ensemble import MeanEnsemble

            folds = []
            for weights in self.fold_weights:
                fold = copy.deepcopy(self.network)
                fold.load_state_dict(weights)
                folds.append(fold.eval())
            self._fold_ensemble = LoadedModel(self.card, MeanEnsemble(folds), self.folder)
        return self._fold_ensemble

    def preprocess_array(self, data: np.ndarray, spacing_zyx):
        """nnU-Net preprocessing of (C, z, y, x) data: (float32 array, CaseGeometry)."""
        from ai.formats.nnunet_preprocess import preprocess_case
        from ai.formats.nnunet_resample import ResampleSpec

        cfg = self.configuration
        return preprocess_case(
            data, spacing_zyx, transpose_forward=self.plans["transpose_forward"], target_spacing=cfg["spacing"],
            schemes=cfg["normalization_schemes"], use_mask_for_norm=cfg["use_mask_for_norm"],
            intensity_properties=_intensity_properties(self.plans),
            resample=ResampleSpec.from_kwargs(cfg.get("resampling_fn_data_kwargs", {})))

    def predict_labels(self, data: np.ndarray, spacing_zyx, *, device="cpu", mirror: bool | None = None,
                       with_max_probability: bool = False, progress=None, cancel=None):
        """Labels (z, y, x) of (C, z, y, x) data with voxel size ``spacing_zyx`` (mm), and optionally the
        probability of each chosen label: nnU-Net's predict_single_npy_array, exported slab by slab (never
        all classes at full resolution). ``mirror``: None = the model's ``use_mirroring``."""
        import torch

        from ai.formats.nnunet_predict import sliding_window_logits
        from ai.formats.nnunet_resample import ResampleSpec, resample_logits_to_labels
        from viewer.core.progress import no_progress

        progress = progress or no_progress
        cfg = self.configuration
        progress(0.0, "nnU-Net preprocessing")
        x, geo = self.preprocess_array(data, spacing_zyx)
        device = torch.device(device)
        if device.type == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
        self.network.to(device).eval()
        mirror = self.use_mirroring if mirror is None else mirror
        axes = self.allowed_mirror_axes if mirror else None
        logits = sliding_window_logits(self.network, torch.from_numpy(x), tuple(cfg["patch_size"]),
                                       fold_weights=self.fold_weights, mirror_axes=axes, device=device,
                                       precision=self.precision,
                                       progress=lambda f, m: progress(0.05 + 0.85 * f, m), cancel=cancel)
        del x
        progress(0.9, "nnU-Net export")
        current = list(cfg["spacing"])
        if len(current) < len(geo.spacing):
            current = [geo.spacing[0], *current]
        spec = ResampleSpec.from_kwargs(cfg.get("resampling_fn_probabilities_kwargs", {"order": 1}))
        dtype = np.uint8 if self.num_classes <= 255 else np.uint16
        cropped, top = resample_logits_to_labels(logits, geo.shape_after_cropping, current, geo.spacing, spec,
                                                 dtype, with_max_probability)
        del logits
        labels = np.zeros(geo.shape_before_cropping, dtype)
        box = tuple(slice(lo, hi) for lo, hi in geo.bbox)
        labels[box] = cropped
        back = self.plans["transpose_backward"]
        prob = None
        if top is not None:
            prob = np.ones(geo.shape_before_cropping, np.float32)  # outside the crop: background, certain
            prob[box] = top
            prob = np.ascontiguousarray(prob.transpose(back))
        return np.ascontiguousarray(labels.transpose(back)), prob

    def segment_volumes(self, volumes: list[Volume], *, device="cpu", tta: bool = False, progress=None,
                        cancel=None, return_probabilities: bool = False, roi=None):
        """ai.engine.run_segmentation for nnU-Net: labels on the first volume's grid (its own voxel order, as
        nnU-Net reads images); other channels are resampled onto that grid; ``roi`` limits the work to a box;
        mirroring runs when the model's ``use_mirroring`` or ``tta`` asks and the checkpoint allows it."""
        from ai.engine import SegmentationResult, check_inputs
        from viewer.core.resample import resample_to

        check_inputs(self, volumes)
        ref = volumes[0]
        arrays = [ref.array] + [(v if v.same_grid(ref) else resample_to(v, ref)).array for v in volumes[1:]]
        box = index_box(ref, roi) if roi is not None else tuple(slice(0, n) for n in ref.array.shape)
        data = np.stack([a[box] for a in arrays])
        labels, top = self.predict_labels(data, ref.spacing[::-1], device=device,
                                          mirror=self.use_mirroring or tta, with_max_probability=return_probabilities,
                                          progress=progress, cancel=cancel)
        if cancel is not None:
            cancel.raise_if_cancelled()
        full = np.zeros(ref.array.shape, labels.dtype)
        full[box] = labels
        out = ref.with_array(full, units="label", modality="SEG", description=f"{self.card.id} labels")
        prob = unc = None
        if top is not None:
            p = np.ones(ref.array.shape, np.float32)
            p[box] = top
            prob = ref.with_array(p, units="arbitrary", modality="OT")
            unc = ref.with_array((1.0 - p).astype(np.float32), units="arbitrary", modality="OT")
        if progress is not None:
            progress(1.0, "done")
        names = {k: v for k, v in self.card.labels.items() if k}
        return SegmentationResult(out, names, prob, unc, self.card.id, self.card.version)


def index_box(ref: Volume, roi) -> tuple[slice, ...]:
    """(z, y, x) slices of ``ref`` covering the world box ``roi`` = ((x0, y0, z0), (x1, y1, z1)) mm."""
    box = np.asarray(roi, float)
    corners = np.array([[box[i, 0], box[j, 1], box[k, 2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    ijk = ref.world_to_index(corners)
    lo = np.maximum(np.floor(ijk.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(ijk.max(axis=0)).astype(int) + 1, ref.size)
    if np.any(hi <= lo):
        raise ModelError(f"the region {box.tolist()} mm does not overlap the image")
    return tuple(slice(int(a), int(b)) for a, b in zip(lo[::-1], hi[::-1], strict=True))


def _intensity_properties(plans: dict) -> dict:
    return plans.get("foreground_intensity_properties_per_channel",
                     plans.get("foreground_intensity_properties_by_modality", {}))


def _card(folder: Path, dataset: dict, plans: dict, cfg: dict, config_name: str, labels: dict, folds: list,
          checkpoint: str, mirror_axes_xyz: list[int]) -> ModelCard:
    """A radview model card from dataset.json and plans.json (geometry in x, y, z order)."""
    back = plans["transpose_backward"]

    def xyz(values):  # transposed order -> stored (z, y, x) -> (x, y, z)
        values = list(values)
        if len(values) == 2:
            return None
        return [values[back[i]] for i in range(3)][::-1]

    channels = dataset.get("channel_names", dataset.get("modality", {}))
    props = _intensity_properties(plans)
    norm = [{"kind": scheme, **({k: props.get(str(c), {}).get(k) for k in ("mean", "std", "percentile_00_5",
                                                                             "percentile_99_5")}
                                if scheme == "CTNormalization" else {})}
            for c, scheme in enumerate(cfg["normalization_schemes"])]
    inputs = [{"modality": "CT" if cfg["normalization_schemes"][int(c)] == "CTNormalization"
               else _MODALITY.get(str(name).upper(), "any"), "name": str(name)} for c, name in sorted(channels.items())]
    return ModelCard(
        id=f"{plans.get('dataset_name', folder.parent.name)}__{folder.name}",
        version=f"{checkpoint} folds {','.join(folds)}", name=str(dataset.get("name", plans.get("dataset_name", ""))),
        task="segmentation", inputs=inputs, normalization=norm, labels=labels,
        spacing=xyz(cfg["spacing"]), patch_size=xyz(cfg["patch_size"]) or list(cfg["patch_size"]),
        format="nnunetv2", network={"class": cfg["architecture"]["network_class_name"],
                                    "args": cfg["architecture"].get("arch_kwargs", {})},
        training_data=str(dataset.get("description", "")) + (f" ({dataset['numTraining']} training cases)"
                                                             if "numTraining" in dataset else ""),
        intended_use="nnU-Net v2 model from " + str(folder) + "; see the model's own documentation",
        limitations=f"{config_name}: nnU-Net's default preprocessing replayed; custom trainers or preprocessors "
                    "are not; predictions are on the image's stored voxel grid (nnU-Net semantics)",
        license=str(dataset.get("licence", dataset.get("license", ""))), authors=str(dataset.get("reference", "")),
        weights=f"fold_*/{checkpoint}", mirror_axes=mirror_axes_xyz,
    )


def _describe(folder: Path) -> tuple[dict, dict, dict[int, str], str | None]:
    """(dataset.json, plans.json, labels, configuration name from the folder name Trainer__Plans__Configuration
    or None) of a trained-model folder."""
    dataset = _read_json(folder / "dataset.json")
    plans = _read_json(folder / "plans.json")
    labels, _ignore = read_labels(dataset, folder / "dataset.json")
    parts = folder.name.split("__")
    return dataset, plans, labels, parts[2] if len(parts) == 3 else None


def _configuration_of(folder: Path, plans: dict, config_name: str | None) -> dict:
    if not config_name:
        raise ModelError("cannot tell the configuration (folder name is not Trainer__Plans__Configuration)", folder)
    return _configuration(plans, config_name, folder / "plans.json")


def read_nnunet_card(path: str | Path, checkpoint: str = CHECKPOINT) -> ModelCard:
    """The card of an nnU-Net folder without loading its weights (for model lists; mirroring axes, which
    only the checkpoints know, are left empty)."""
    folder = trained_folder(path)
    dataset, plans, labels, config_name = _describe(folder)
    cfg = _configuration_of(folder, plans, config_name)
    return _card(folder, dataset, plans, cfg, config_name, labels, find_folds(folder, checkpoint), checkpoint, [])


def load_nnunet_folder(path: str | Path, folds=None, checkpoint: str = CHECKPOINT, use_mirroring: bool = True,
                       device: str = "cpu", precision: str = "float32") -> NnUNetModel:
    """Load an nnU-Net v2 trained-model folder (Trainer__Plans__Configuration, or the dataset folder holding one).

    ``folds``: fold ids (ints or 'all'); None = every fold_* with ``checkpoint`` (logits averaged at inference).
    Mirroring axes come from the checkpoint (``inference_allowed_mirroring_axes``); ``use_mirroring=False``
    turns the mirroring test-time augmentation off. ``precision``: 'float32' (nnU-Net's arithmetic, its labels)
    or 'bfloat16' (network under bf16 autocast: faster on CPUs with bf16 units, labels may differ at edges).
    ModelError names a missing or unreadable file.
    """
    if precision not in ("float32", "bfloat16"):
        raise ModelError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
    folder = trained_folder(path)
    require_network_package(folder)
    dataset, plans, labels, config_name = _describe(folder)
    folds = [str(f) for f in folds] if folds is not None else find_folds(folder, checkpoint)
    ckpts = [load_checkpoint(folder / f"fold_{f}" / checkpoint) for f in folds]
    config_name = config_name or ckpts[0].get("init_args", {}).get("configuration")
    cfg = _configuration_of(folder, plans, config_name)
    if cfg.get("previous_stage"):
        raise ModelError(f"{config_name} is a cascade stage (needs {cfg['previous_stage']}'s segmentation as input); "
                         "cascades are not supported", folder / "plans.json")
    for key in ("resampling_fn_data", "resampling_fn_probabilities"):
        if cfg.get(key, SUPPORTED_RESAMPLING) != SUPPORTED_RESAMPLING:
            raise ModelError(f"{key} {cfg[key]!r} is not supported (only {SUPPORTED_RESAMPLING})",
                             folder / "plans.json")
    channels = dataset.get("channel_names", dataset.get("modality", {}))
    if len(cfg["normalization_schemes"]) != len(channels):
        raise ModelError("plans.json normalization_schemes and dataset.json channel_names disagree", folder)
    if "architecture" not in cfg:
        raise ModelError("plans.json predates nnU-Net v2.2 (no 'architecture'); re-plan it with nnunetv2",
                         folder / "plans.json")
    network = build_network(cfg["architecture"], len(channels), len(labels), folder / "plans.json")
    weights = [without_wrapper_prefixes(c["network_weights"]) for c in ckpts]
    for f, w in zip(folds, weights, strict=True):
        try:
            network.load_state_dict(w)
        except RuntimeError as err:
            raise ModelError(f"weights do not fit the network in plans.json ({str(err).splitlines()[0]})",
                             folder / f"fold_{f}" / checkpoint) from err
    network.load_state_dict(weights[0])
    allowed = ckpts[0].get("inference_allowed_mirroring_axes")
    allowed = tuple(int(a) for a in allowed) if allowed is not None else None
    trainer = ckpts[0].get("trainer_name", folder.name.split("__")[0])
    log.info("nnU-Net %s: trainer %s, configuration %s, folds %s, mirroring %s", folder, trainer, config_name,
             folds, allowed if use_mirroring else "off")
    fwd = plans["transpose_forward"]
    mirror_xyz = sorted(2 - fwd[a] for a in allowed) if allowed and len(cfg["patch_size"]) == 3 else []
    card = _card(folder, dataset, plans, cfg, config_name, labels, folds, checkpoint,
                 mirror_xyz if use_mirroring else [])
    model = NnUNetModel(card, network.eval(), folder, plans=plans, configuration=cfg, fold_weights=weights,
                        folds=folds, allowed_mirror_axes=allowed, use_mirroring=use_mirroring, precision=precision)
    return model.to(device)
