"""Data kind ``brain_mr_ct``: MR -> CT translation cases from the registered brain pair (ai.training.brain_mr_ct).

A config entry::

    {kind: brain_mr_ct, dir: PAIR_DIR, slices: [0, 40], mr_background: 0}     # paired (pix2pix, validation)
    {kind: brain_mr_ct, dir: PAIR_DIR, slices: [0, 40], ct_slices: [51, 91]}  # unpaired (cyclegan)
    {kind: brain_mr_ct, dir: PAIR_DIR, slices: [0, 95], region_slices: [42, 52], mr_background: 0}  # validation

``region_slices`` limits the region measured to those slices of the case while the model still sees the whole
slab around them: a held-out slab validated alone is mostly padding for a 32-slice patch, so its error measures
the padding, not the translation (the reference there is still never trained on).

``dir`` holds what ``python -m ai.training.brain_mr_ct PAIR_DIR`` writes (the MNI152 T1 and the CT atlas
registered onto its grid). The whole pair is ONE subject (one template, one atlas), so training and validation
are split by axial slabs: ``slices`` [start, stop] of the T1 grid's slices (third index axis) give the MR.
The CT comes from the same slices (paired) or, with ``ct_slices`` (as many slices), from another slab laid
onto the MR's slab: different anatomy, so MR and CT are drawn independently as CycleGAN needs.

Each case is ``images`` [MR, reference CT (HU)] and ``labels`` the head mask (1 where the slab's own registered
CT is not ``ct_background``: the atlas stores 0 outside the brain; the tiny test heads store -1000). With
``mr_background`` (0 for the skull-stripped MNI152 template) the mask also excludes where the MR equals it, and a
paired reference is air there: the two skull strips differ by registration (13% of the atlas brain lies outside
the template's), and no model can tell tissue from an MR that shows none, so leaving that rim in would measure
the registration, not the translation. The CT
beyond the card's one input is the translation target (ai.training.translation_task), not a model input;
outside the head it is set to air (AIR_HU): both template and atlas are skull-stripped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ai.training.brain_mr_ct import OUTPUTS
from ai.training.cases import Case
from ai.training.datasets import entry_path, slice_range
from viewer.core.errors import InputError

AIR_HU = -1000.0


def brain_pair_cases(entry: dict, labels: dict[int, str], base: Path) -> list[Case]:
    """One case of the entry's slab (see the module docstring); ``labels`` is unused (translation has none)."""
    from viewer.core.io import load_volume

    folder = entry_path(entry, "dir", base)
    paths = {k: folder / OUTPUTS[k] for k in ("mr", "ct")}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise InputError(f"the brain pair folder lacks {', '.join(missing)}: prepare it with "
                         f"python -m ai.training.brain_mr_ct {folder}", folder)
    mr, ct = (load_volume(p) for p in paths.values())
    if mr.array.shape != ct.array.shape:
        raise InputError(f"{OUTPUTS['ct']} is not on the T1 grid ({ct.array.shape} vs {mr.array.shape})", folder)
    mr = mr.with_array(mr.array.astype(np.float32, copy=False), modality="MR", units="arbitrary")
    ct = ct.with_array(ct.array.astype(np.float32, copy=False), modality="CT", units="HU")
    background = float(entry.get("ct_background", 0.0))
    mr_slab = slice_range(mr, entry, base)
    head = slice_range(ct, entry, base).array != background
    if "mr_background" in entry:  # a skull-stripped MR: its outline bounds what a model can know
        head &= mr_slab.array != float(entry["mr_background"])
    name = f"brain_mr_ct slices {_span(entry, mr)}"
    if "region_slices" in entry:
        slice_range(mr, {**entry, "slices": entry["region_slices"]}, base)  # checks the span
        head &= _in_slices(entry, mr_slab)
        name += f" measured on slices {_span({'slices': entry['region_slices']}, mr)}"
    if "ct_slices" in entry:
        ct_slab = slice_range(ct, {**entry, "slices": entry["ct_slices"]}, base)
        if ct_slab.array.shape != mr_slab.array.shape:
            raise InputError(f"ct_slices {entry['ct_slices']} must span as many slices as slices {entry['slices']}",
                             base)
        name += f" with CT of slices {_span({'slices': entry['ct_slices']}, ct)} (unpaired)"
    else:
        ct_slab = slice_range(ct, entry, base)
    tissue = (ct_slab.array != background) & (head if "ct_slices" not in entry else True)
    hu = np.where(tissue, ct_slab.array, AIR_HU).astype(np.float32)
    reference = mr_slab.with_array(hu, modality="CT", units="HU", description="registered CT atlas")
    mask = mr_slab.with_array(head.astype(np.uint8), modality="SEG", units="label", description="head")
    return [Case(entry.get("name", name), [mr_slab, reference], mask,
                 source=f"brain_mr_ct {folder} ({OUTPUTS['mr']} + {OUTPUTS['ct']})")]


def _in_slices(entry: dict, slab) -> np.ndarray:
    """Boolean array on ``slab``'s grid: True on the T1 slices ``entry['region_slices']`` [start, stop)."""
    first = entry.get("slices", [0])[0]
    start, stop = entry["region_slices"]
    z = np.arange(slab.array.shape[0]) + first
    return ((z >= start) & (z < stop))[:, None, None]


def _span(entry: dict, vol) -> str:
    start, stop = entry.get("slices", [0, vol.array.shape[0]])
    return f"{start}-{stop - 1}"
