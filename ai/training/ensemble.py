"""Ensembles of independently trained models: one YAML config names the member configs; ``radview train`` trains
each member, then writes one model folder whose network averages the members' logits (ai.nets.ensemble).

Shape (every key listed; unknown keys are refused with the file and the key named)::

    id: pet-lesion-detector                   # card fields of the ensemble
    version: 1.3.0
    name: PET lesion detector (2 ResNet centre-point heat maps, averaged)
    ensemble: [member-a.yaml, member-b.yaml]  # member training configs (ai.training.config), relative to this file
    detection: {kind: heatmap, threshold: 0.3, min_distance_mm: 12.0}   # default: the first member's
    data: {validation: [entries]}             # the ensemble's own validation cases (its metrics, its threshold)
    operating_point: validation               # detection: the threshold chosen on those cases (acceptance rule)
    postprocessing: {thresholds: [], min_component_mm3: [0], largest_component: [false, true]}
                                              # segmentation: chosen on those cases (ai.training.postprocessing)
    card: {intended_use: ..., limitations: ..., license: ..., authors: ..., changelog: {...}}

Members must agree on what the card promises users: task, inputs, normalisation, labels, grid spacing, patch size
and mirror axes. Each member's own model folder stays under OUT/members/<member id>/ (its checkpoint, training log
and card); with ``--resume`` a member whose folder already holds a model trained by the same config is used as it
is (continued from its checkpoint when ``--epochs`` changed), and an unfinished one continues from its checkpoint.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ai.formats.builtin import ENSEMBLE
from ai.model import ModelCard
from ai.training.config import CARD_FIELDS, PostprocessingSearch, TrainConfig, read_yaml
from viewer.core.errors import ConfigError
from viewer.core.progress import CancelToken, ProgressCallback, no_progress

#: card fields every member must share (the ensemble's card takes them from its members)
SHARED = ("task", "inputs", "normalization", "labels", "spacing", "patch_size", "mirror_axes", "multi_label",
          "orientation", "grid", "array_order", "window_padding")
#: keys of an ensemble config
KEYS = ("id", "version", "name", "ensemble", "detection", "data", "operating_point", "postprocessing", "card")
#: config keys that do not change how a member is trained (a member folder whose config differs only in these, or
#: in the keys a resumed run may change, is reused)
UNTRAINED_KEYS = ("id", "version", "name")
MEMBERS = "members"


@dataclass
class EnsembleConfig:
    """A parsed ensemble config (see the module docstring): the member TrainConfigs and the ensemble's own card
    fields, validation data and operating point; ``path`` / ``base`` / ``raw`` as in TrainConfig."""

    id: str
    version: str
    name: str
    members: list[TrainConfig]
    detection: dict = field(default_factory=dict)
    data: dict[str, list[dict]] = field(default_factory=dict)
    operating_point: str = ""
    postprocessing: PostprocessingSearch | None = None
    card: dict = field(default_factory=dict)
    path: Path | None = None
    base: Path = field(default_factory=Path.cwd)
    raw: dict = field(default_factory=dict)

    @property
    def labels(self) -> dict[int, str]:
        return self.members[0].labels

    @property
    def task(self) -> str:
        return self.members[0].task

    @classmethod
    def from_dict(cls, data: dict, base: Path, *, path: Path | None = None) -> EnsembleConfig:
        """An ensemble config from a mapping; ConfigError names ``path`` and the bad key."""
        def fail(problem):
            raise ConfigError(problem, path)

        unknown = sorted(set(map(str, data)) - set(KEYS))
        if unknown:
            fail(f"unknown key(s) {', '.join(unknown)} in an ensemble config (known: {', '.join(KEYS)})")
        missing = [k for k in ("id", "version", "name", "ensemble") if k not in data]
        if missing:
            fail(f"missing key(s) {', '.join(missing)}")
        if set(data.get("data") or {}) - {"validation"}:
            fail("data: an ensemble config has only validation cases (its members name their training data)")
        files = data["ensemble"]
        if not isinstance(files, list) or len(files) < 2 or not all(isinstance(f, str) for f in files):
            fail(f"ensemble must list at least 2 member training configs (YAML files), got {files!r}")
        members = []
        for name in files:
            member = read_config(base / name)
            if isinstance(member, EnsembleConfig):
                fail(f"member {name} is itself an ensemble: list its members instead")
            members.append(member)
        ids = [m.id for m in members]
        if len(set(ids)) != len(ids):
            fail(f"member ids must differ (each trains into {MEMBERS}/<id>), got {ids}")
        _check_agreement([m.model_card() for m in members], files, path)
        # the ensemble's own keys, checked as a training config checks them (the first member stands in for the rest)
        own = {**members[0].raw, "id": data["id"], "version": data["version"], "name": data["name"],
               "data": {"train": members[0].data["train"], "validation": (data.get("data") or {}).get("validation")},
               "detection": data.get("detection", members[0].detection), "card": data.get("card", {}),
               "operating_point": data.get("operating_point"), "postprocessing": data.get("postprocessing")}
        checked = TrainConfig.from_dict(own, base, path=path)
        return cls(id=checked.id, version=checked.version, name=checked.name, members=members,
                   detection=checked.detection, data={"validation": checked.data["validation"]},
                   operating_point=checked.operating_point, postprocessing=checked.postprocessing,
                   card=checked.card, path=path, base=base, raw=dict(data))

    def model_card(self, member_cards: list[ModelCard]) -> ModelCard:
        """The card of the ensemble: the members' shared fields, a MeanEnsemble of their networks, this config's
        id, version, name, detection settings and documentation; nothing measured yet."""
        first = member_cards[0]
        docs = {k: v for k, v in self.card.items() if k in CARD_FIELDS and k != "training_data"}
        return ModelCard(id=self.id, version=self.version, name=self.name,
                         **{k: copy.deepcopy(getattr(first, k)) for k in SHARED}, detection=dict(self.detection),
                         network={"class": ENSEMBLE, "args": {"members": [c.network for c in member_cards]}},
                         output=dict(first.output), anatomy=first.anatomy, **docs)


def read_config(path: str | Path) -> TrainConfig | EnsembleConfig:
    """The training config in YAML file ``path``: an EnsembleConfig when it has an ``ensemble`` key, else a
    TrainConfig. ConfigError names the file and what is wrong."""
    path = Path(path).expanduser()
    data = read_yaml(path)
    if isinstance(data, dict) and "ensemble" in data:
        return EnsembleConfig.from_dict(data, path.resolve().parent, path=path)
    return TrainConfig.from_dict(data, path.resolve().parent, path=path)


def _check_agreement(cards: list[ModelCard], files: list[str], path) -> None:
    """ConfigError naming the first member that differs from the first one in a SHARED card field."""
    for card, name in zip(cards[1:], files[1:], strict=True):
        for key in SHARED:
            if getattr(card, key) != getattr(cards[0], key):
                raise ConfigError(f"ensemble members must share {key}: {name} has {getattr(card, key)!r}, "
                                  f"{files[0]} {getattr(cards[0], key)!r}", path)


def train_ensemble(config: EnsembleConfig, out_dir: str | Path, *, device: str = "auto", resume: bool = False,
                   threads: int | None = None, progress: ProgressCallback | None = None,
                   cancel: CancelToken | None = None, amp: bool | None = None) -> Path:
    """Train every member of ``config`` into ``out_dir``/members/<id> (ai.training.loop.train), then write the
    ensemble's model folder ``out_dir`` (assemble); returns it. ``resume``: reuse members already trained by
    the same config, continue unfinished ones (or finished ones given other ``epochs``) from their checkpoints;
    ConfigError for a member folder another config trained. Errors as ai.training.loop.train."""
    from ai.training.loop import CHECKPOINT, train

    progress = progress or no_progress
    out = Path(out_dir)
    folders = []
    n = len(config.members)
    for i, member in enumerate(config.members):
        folder = out / MEMBERS / member.id

        def member_progress(fraction, message, i=i, member=member):
            progress(0.95 * (i + fraction) / n, f"member {i + 1}/{n} ({member.id}): {message}")

        finished = resume and (folder / "model.json").is_file()  # a finished member found on --resume
        if finished and not trained_by(folder, member):
            raise ConfigError(f"holds a model trained by another config than {member.path or member.id}: "
                              "train without --resume, or remove that folder to train this member again", folder)
        if not (finished and recorded_config(folder).get("epochs") == member.raw.get("epochs")):
            # a finished member given other --epochs goes on from its checkpoint, as an unfinished one does
            train(member, folder, device=device, resume=finished or (resume and (folder / CHECKPOINT).is_file()),
                  threads=threads, progress=member_progress, cancel=cancel, amp=amp)
        folders.append(folder)
    return assemble(config, folders, out, device=device, threads=threads, progress=progress)


def recorded_config(folder: Path) -> dict:
    """The training config (as written) recorded in the card of model folder ``folder``."""
    return ModelCard.from_file(folder / "model.json").training.get("config") or {}


def trained_by(folder: Path, member: TrainConfig) -> bool:
    """Whether the finished model in folder ``folder`` was trained by ``member``'s config (see same_recipe)."""
    return same_recipe(recorded_config(folder), member)


def same_recipe(recorded: dict, member: TrainConfig) -> bool:
    """Whether the training config ``recorded`` in a card is ``member``'s config: the keys that change training as
    they were; id, version, name, card and the keys a resumed run may change, e.g. epochs, aside."""
    from ai.training.loop import config_identity

    def identity(raw: dict) -> str:
        return config_identity({k: v for k, v in raw.items() if k not in UNTRAINED_KEYS})

    return identity(recorded) == identity(json.loads(json.dumps(member.raw, default=str)))


def assemble(config: EnsembleConfig, folders: list[Path], out_dir: str | Path, *, device: str = "auto",
             threads: int | None = None, progress: ProgressCallback | None = None) -> Path:
    """Write the ensemble model folder ``out_dir`` from trained member folders (in ``config.members`` order): one
    weights file holding every member (MeanEnsemble keys), a card with the members' runs and the ensemble's
    validation metrics; with ``postprocessing`` (segmentation) the post-processing, with ``operating_point:
    validation`` (detection) the threshold is chosen on those cases."""
    from ai.formats.builtin import build_network
    from ai.model import LoadedModel
    from ai.registry import load_model
    from ai.training.datasets import load_dataset
    from ai.training.loop import prepare_run
    from ai.training.model_folder import save_weights, write_card
    from ai.training.tasks import task_for, with_card_inputs

    progress = progress or no_progress
    out, threads, dev = prepare_run(out_dir, device, threads)
    members = [load_model(str(f)) for f in folders]
    _check_agreement([m.card for m in members], [str(f) for f in folders], config.path)
    card = config.model_card([m.card for m in members])
    state = {f"{MEMBERS}.{i}.{k}": v for i, m in enumerate(members) for k, v in m.network.state_dict().items()}
    net = build_network(card.network)
    net.load_state_dict(state)
    net = net.to(dev).eval()
    progress(0.96, "measuring the ensemble on its validation cases")
    validation = [with_card_inputs(c, card) for c in load_dataset(config.data.get("validation", []), config.labels,
                                                                  config.base)]
    task = task_for(config.members[0])
    if validation:
        card.metrics = [{**m, "data": f"validation: {m['data']}"}
                        for m in task.evaluate(LoadedModel(card, net), validation, device=dev)]
    card.training = training_record(config, members, folders, out, validation, dev.type, threads)
    card.training_data = (f"{config.card['training_data']} " if config.card.get("training_data") else "") + (
        f"an ensemble of {len(members)} models trained separately by radview train: " + "; ".join(
            f"{c.id} ({m.card.training_data})" for c, m in zip(config.members, members, strict=True)))
    if config.postprocessing is not None and validation:
        from ai.training.postprocessing import postprocessed_card

        progress(0.98, "choosing post-processing on the validation cases")
        card = postprocessed_card(card, net, task, validation, config.postprocessing, device=dev)
    if config.operating_point and validation:
        from ai.training.detection_task import operating_point_card

        progress(0.98, "choosing the detection threshold on the validation cases")
        card = operating_point_card(card, net, validation, device=dev)
    save_weights(state, out / card.weights)
    write_card(card, out)
    progress(1.0, f"wrote {out}")
    return out


def training_record(config: EnsembleConfig, members, folders: list[Path], out: Path, validation, device: str,
                    threads: int) -> dict:
    """The card's ``training``: the ensemble config, each member's run (its card's training record, minus the
    per-case lists, and where its folder was) and the ensemble's validation cases."""
    from ai.training.tasks import describe_cases

    runs = []
    for member_config, member, folder in zip(config.members, members, folders, strict=True):
        run = copy.deepcopy(member.card.training)
        for split in run.get("data", {}).values():
            split.pop("cases", None)
        runs.append({"id": member_config.id, "model": f"{member.card.id} {member.card.version}",
                     "folder": str(folder.relative_to(out)) if folder.is_relative_to(out) else str(folder),
                     "network": member.card.network, **run})
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "config_file": str(config.path) if config.path else None,
            "config": json.loads(json.dumps(config.raw, default=str)), "members": runs,
            "data": {"validation": {"entries": config.data.get("validation", []),
                                    "described": describe_cases(validation) if validation else "none"}},
            "seconds": round(sum(r.get("seconds") or 0 for r in runs), 1), "device": device, "threads": threads}
