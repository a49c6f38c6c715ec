"""Training data from a config's ``data`` entries: labelled files and generated cases, labels mapped by name.

A config lists entries such as::

    data:
      - {kind: files, images: [ct.nii.gz], labels: ct_labels.nii.gz, names: labels.json}
      - {kind: abdomen_ct_phantom, seeds: [0, 40]}
      - {kind: real_ct_synth, seeds: [0, 60], image: ct.nii.gz, labels: ct_labels.nii.gz, names: labels.json}

Each ``kind`` is a function ``(entry, labels, base) -> list[Case]`` named in KINDS and imported only when an
entry uses it (generators pull in scipy / SimpleITK). ``labels`` is the config's ``{id: name}`` table: every
source's label ids are mapped to it BY NAME, names it does not hold become background. Paths are relative to
``base`` (the config's folder). Generated kinds are deterministic per seed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ai.training.cases import Case
from viewer.core.errors import InputError, LabelMapError
from viewer.core.volume import Volume

#: (entry, config labels {id: name}, base folder) -> cases
CaseLoader = Callable[[dict, dict[int, str], Path], list[Case]]

#: kind -> "module:function" of its CaseLoader
KINDS = {
    "files": "ai.training.datasets:file_cases",
    "abdomen_ct_phantom": "ai.training.abdomen_phantom:phantom_cases",
    "real_ct_synth": "ai.training.ct_synthesis:synth_cases",
    "pet_ct_phantom": "ai.training.pet_phantom:pet_ct_cases",
    "ct_label_pet": "ai.training.pet_phantom:ct_label_pet_cases",
    "brain_mr_ct": "ai.training.brain_pair_cases:brain_pair_cases",
    "pet_ct_lesions": "ai.training.pet_ct_lesions:pet_ct_lesion_cases",
}


def load_dataset(entries: list[dict], labels: dict[int, str], base: Path) -> list[Case]:
    """All cases of a config's ``data`` entries, in order; ``labels`` {id: name} is the config's label table.

    Raises InputError naming the entry (its position and kind) or the file at fault."""
    cases: list[Case] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or "kind" not in entry:
            raise InputError(f"data entry {i + 1} needs a 'kind' (one of {', '.join(KINDS)}), got {entry!r}", base)
        cases.extend(case_loader(entry["kind"], i, base)(entry, labels, Path(base)))
    return cases


def case_loader(kind: str, index: int, base: Path) -> CaseLoader:
    """The CaseLoader registered for ``kind`` (InputError naming data entry ``index`` + 1 if none)."""
    if kind not in KINDS:
        raise InputError(f"data entry {index + 1}: unknown kind {kind!r} (known: {', '.join(KINDS)})", base)
    module, function = KINDS[kind].split(":")
    try:
        return getattr(importlib.import_module(module), function)
    except (ImportError, AttributeError) as err:
        raise InputError(f"data entry {index + 1}: kind {kind!r} is not available ({err})", base) from err


# --------------------------------------------------------------------------- helpers for every kind
def entry_path(entry: dict, key: str, base: Path) -> Path:
    """``entry[key]`` as an existing path relative to ``base``; InputError naming the entry otherwise."""
    if key not in entry:
        raise InputError(f"data entry of kind {entry.get('kind')!r} needs '{key}'", base)
    return existing_path(entry[key], f"'{key}' of a {entry.get('kind')!r} data entry", base)


def existing_path(value, what: str, base: Path) -> Path:
    """``value`` resolved against ``base``; InputError saying ``what`` does not exist otherwise."""
    path = (Path(base) / str(value)).resolve()
    if not path.exists():
        raise InputError(f"{what} does not exist", path)
    return path


def seed_range(entry: dict, base: Path) -> range:
    """The seeds of a generated kind: ``seeds: [start, stop]`` (stop excluded)."""
    seeds = entry.get("seeds")
    if not (isinstance(seeds, list | tuple) and len(seeds) == 2 and all(isinstance(s, int) for s in seeds)
            and seeds[0] < seeds[1]):
        raise InputError(f"data entry of kind {entry.get('kind')!r} needs 'seeds: [start, stop]' "
                         f"(integers, start < stop), got {seeds!r}", base)
    return range(seeds[0], seeds[1])


def slice_range(volume: Volume, entry: dict, base: Path) -> Volume:
    """``volume`` cut to the slices (third index axis) ``entry['slices']`` = [start, stop] when given (e.g. to hold
    out part of a real CT for an honest validation), else unchanged."""
    if "slices" not in entry:
        return volume
    span = entry["slices"]
    depth = volume.array.shape[0]
    if not (isinstance(span, list | tuple) and len(span) == 2 and all(isinstance(s, int) for s in span)
            and 0 <= span[0] < span[1] <= depth):
        raise InputError(f"'slices' of a {entry.get('kind')!r} data entry must be [start, stop] within 0..{depth}, "
                         f"got {span!r}", base)
    origin = volume.index_to_world([0, 0, span[0]])
    return Volume(volume.array[span[0]:span[1]].copy(), volume.spacing, tuple(origin), volume.direction,
                  volume.modality, volume.units, volume.description, dict(volume.meta))


def label_lookup(source_names: dict[int, str], labels: dict[int, str]) -> np.ndarray:
    """A uint8 table mapping source label ids to the config's ids by name (case-insensitive); others -> 0."""
    wanted = {name.lower(): k for k, name in labels.items() if k}
    lut = np.zeros(max([255, *source_names]) + 1, np.uint8)
    for k, name in source_names.items():
        lut[k] = wanted.get(str(name).lower(), 0)
    return lut


def relabel(labels: Volume, source_names: dict[int, str], target: dict[int, str]) -> Volume:
    """``labels`` with its ids (named by ``source_names``) mapped by name to ``target``'s ids, as uint8."""
    return labels.with_array(label_lookup(source_names, target)[labels.array], units="label")


# --------------------------------------------------------------------------- kind: files
def file_cases(entry: dict, labels: dict[int, str], base: Path) -> list[Case]:
    """One labelled case from files: ``images`` [paths] (the first defines the grid), ``labels`` (a label map,
    resampled onto the first image by world geometry), ``names`` (optional {id: name} JSON or colour table;
    default: the table stored beside the label file, as ``radview stats`` reads it) and ``slices`` (optional
    [start, stop] of the first image's slices to keep)."""
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import label_table, load_labelmap

    images_given = entry.get("images")
    if not isinstance(images_given, list) or not images_given:
        raise InputError("a 'files' data entry needs 'images: [path, ...]'", base)
    images = [load_volume(existing_path(p, "an image of a 'files' data entry", base)) for p in images_given]
    label_path = entry_path(entry, "labels", base)
    names_path = entry_path(entry, "names", base) if "names" in entry else None
    names, _ = label_table(label_path, names_path)
    if not names:
        raise LabelMapError("no label names: give 'names' (a JSON {id: name} or colour table) in the data entry, or "
                            "store them beside the label file", label_path)
    lab = relabel(load_labelmap(label_path, reference=images[0]), names, labels)
    images[0], lab = slice_range(images[0], entry, base), slice_range(lab, entry, base)
    if not lab.array.any():
        raise LabelMapError(f"none of the config's labels ({', '.join(n for k, n in labels.items() if k)}) is in "
                            "this label map", label_path)
    return [Case(entry.get("name", label_path.name), images, lab, source=f"files {[str(p) for p in images_given]} "
                 f"labels {entry['labels']}")]
