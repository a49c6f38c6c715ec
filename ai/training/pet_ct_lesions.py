"""PET/CT lesion cases (data kind ``pet_ct_lesions``): a CT in HU and a PET in SUVbw of one anatomy, lesion masks.

Per seed (deterministic): an anatomy (ai.training.pet_phantom: a synthetic body, or the shared real CT's tissue
map deformed), 0-5 lesions (8-35 mm ellipsoids in liver, lung, bone, lymph-node sites near vessels or any soft
tissue) with their own masks, then

- the PET: pet_phantom.pet_from_anatomy without its own lesions (per-case uptake of liver, kidneys, bladder,
  heart, brain ...; PSF FWHM 5-8 mm; its own coarser grid: PET_VOXEL_MM; count-like noise) plus each lesion's
  uptake (SUV 2.5-15 and at least 1.4-3x its surroundings) through the same PSF, grid and noise model;
- the CT, on its own finer grid (in-plane 1.8-3 mm, slices 1.5-5 mm): the tissue map rendered in HU with a random
  contrast phase, texture, blur and noise (ai.training.ct_synthesis), lesions as they look on CT: liver lesions
  mostly hypodense (some isodense: invisible), lung nodules solid, bone lesions lytic, sclerotic or occult,
  nodes of soft-tissue density (seen in fat, not in muscle), soft-tissue lesions near-isodense.

A Case holds ``images`` [CT, PET] (the fusion models' order; both in the same world frame, as a PET/CT scanner
gives them), ``labels`` the lesion mask on the CT grid (the config's id of "lesion") and ``lesions`` [{center_mm,
diameter_mm, suv, site, ct_visible}] for lesion-wise metrics (centre and equivalent-sphere diameter of the mask).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ai.training.cases import Case
from ai.training.ct_synthesis import acquire, draw_hu, render_labels, scan_grid
from ai.training.pet_phantom import (
    TISSUES,
    WORK_MM,
    Anatomy,
    T,
    pet_from_anatomy,
    phantom_anatomy,
    phantom_entry,
    real_files,
)
from viewer.core.resample import resample_to
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: PET voxel size (mm) ranges: in-plane, slices (the CT's: in-plane 1.8-3, slices 1.5-5, ct_synthesis.scan_grid)
PET_VOXEL_MM = ((3.0, 5.5), (2.5, 5.0))
#: lesion sites and their probabilities
SITES = {"liver": 0.25, "lung": 0.15, "bone": 0.15, "node": 0.25, "soft": 0.2}
DIAMETER_MM = (8.0, 35.0)
MAX_LESIONS = 5
#: lesion SUV: drawn in this range, raised to at least CONTRAST x the local background
SUV_RANGE = (2.5, 15.0)
CONTRAST = (1.4, 3.0)
#: pet_phantom tissue -> CT tissue group of ai.training.ct_synthesis (its HU priors per contrast phase)
CT_GROUPS = {"air": "outside", "fat": "fat", "soft": "soft", "muscle": "muscle", "bone": "bone", "lung": "lung",
             "liver": "liver", "spleen": "spleen", "kidney_cortex": "kidney", "kidney_pelvis": "fluid",
             "bladder": "fluid", "myocardium": "muscle", "blood": "artery", "brain": "soft", "bowel": "bowel",
             "stomach": "bowel", "other_organ": "soft", "injection": "soft"}
#: CT tissue class of lesion i (1-based) is LESION_CLASS + i
LESION_CLASS = 100
#: the label name lesions carry (a config's labels map to it by name)
LESION = "lesion"


@dataclass
class PetCtCase:
    """One generated PET/CT study: CT (HU), PET (SUVbw) on its own grid, lesion mask on the CT grid, lesion list."""

    ct: Volume
    pet: Volume
    mask: Volume
    lesions: list[dict]
    settings: dict


def site_voxels(tissue: np.ndarray, site: str) -> np.ndarray:
    """Boolean map of where a lesion at ``site`` (SITES) may be centred in a tissue map."""
    if site in ("liver", "lung", "bone"):
        where = tissue == T[site]
    elif site == "node":  # fat / soft tissue within 25 mm of the vessels
        soft = np.isin(tissue, [T["soft"], T["fat"]])
        where = soft & ndimage.binary_dilation(tissue == T["blood"], iterations=int(25 / WORK_MM))
    else:
        where = np.isin(tissue, [T["soft"], T["muscle"], T["fat"], T["other_organ"], T["spleen"]])
    return ndimage.binary_erosion(where, iterations=1) if where.sum() > 200 else where


def place_lesions(tissue: np.ndarray, grid: Volume, rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """(lesion index map (z, y, x) uint8: 0 none, i for lesion i, lesions [{center_mm, diameter_mm, site}]) of 0 to
    MAX_LESIONS non-touching ellipsoids (diameters log-uniform in DIAMETER_MM) inside the body of ``tissue``."""
    index = np.zeros(tissue.shape, np.uint8)
    body = tissue != T["air"]
    lesions: list[dict] = []
    wanted = int(rng.integers(0, MAX_LESIONS + 1))
    for _ in range(wanted * 4):
        if len(lesions) == wanted:
            break
        site = str(rng.choice(list(SITES), p=list(SITES.values())))
        candidates = np.argwhere(site_voxels(tissue, site))
        if not len(candidates):
            continue
        centre = candidates[rng.integers(len(candidates))]  # (z, y, x)
        radii = np.exp(rng.uniform(*np.log(DIAMETER_MM))) / 2 * rng.uniform(0.8, 1.2, 3) / WORK_MM  # (x, y, z) voxels
        lo = np.maximum(centre - np.ceil(radii[::-1]).astype(int) - 1, 0)
        hi = np.minimum(centre + np.ceil(radii[::-1]).astype(int) + 2, tissue.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        z, y, x = np.ogrid[box]
        inside = (((x - centre[2]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
                  + ((z - centre[0]) / radii[2]) ** 2 <= 1) & body[box]
        near = ndimage.binary_dilation(index[box] > 0, iterations=2)
        if inside.sum() < 8 or (inside & near).any():
            continue
        index[box][inside] = len(lesions) + 1
        voxels = np.argwhere(inside) + lo
        volume_mm3 = len(voxels) * WORK_MM ** 3
        lesions.append({"center_mm": [round(float(v), 2) for v in grid.index_to_world(voxels.mean(0)[::-1])],
                        "diameter_mm": round(float(np.cbrt(6 * volume_mm3 / np.pi)), 2), "site": site})
    return index, lesions


def add_lesion_uptake(pet: Volume, index: np.ndarray, lesions: list[dict], grid: Volume, settings: dict,
                      rng: np.random.Generator) -> Volume:
    """``pet`` (lesion-free, from pet_from_anatomy with ``settings``) with every lesion's uptake: SUV_RANGE, at
    least CONTRAST x its surroundings, blurred by the same PSF, on the same grid, with the same noise model.
    Each lesion's ``suv`` is recorded in ``lesions``."""
    background = resample_to(pet, grid).array
    extra = np.zeros(index.shape, np.float32)
    for i, lesion in enumerate(lesions, start=1):
        inside = index == i
        local = float(np.median(background[inside]))
        suv = max(float(np.exp(rng.uniform(*np.log(SUV_RANGE)))), local * rng.uniform(*CONTRAST))
        extra[inside] = max(suv - local, 0.0)
        lesion["suv"] = round(suv, 2)
    extra = ndimage.gaussian_filter(extra, settings["fwhm_mm"] / 2.3548 / WORK_MM)
    extra = resample_to(grid.with_array(extra, modality="PT", units="SUVbw"), pet).array
    noise = settings["noise"] * np.sqrt(np.maximum(extra, 0)) * rng.normal(0, 1, extra.shape).astype(np.float32)
    uptake = pet.array + extra + ndimage.gaussian_filter(noise, 0.6)
    return pet.with_array(np.maximum(uptake, 0).astype(np.float32))


def lesion_hu(site: str, host_hu: float, rng: np.random.Generator) -> tuple[float, bool]:
    """(mean HU of a lesion at ``site`` in tissue of ``host_hu``, whether it differs visibly from its host)."""
    if site == "liver":
        hu = host_hu - (rng.uniform(15, 60) if rng.random() < 0.75 else rng.uniform(-5, 5))
    elif site == "lung":
        hu = rng.uniform(10, 50)
    elif site == "bone":
        hu = float(rng.choice([rng.uniform(60, 180), rng.uniform(700, 1100), host_hu], p=[0.4, 0.3, 0.3]))
    elif site == "node":
        hu = rng.uniform(25, 55)
    else:
        hu = host_hu + rng.uniform(-15, 25)
    return hu, abs(hu - host_hu) >= 12


def render_ct(tissue: np.ndarray, index: np.ndarray, lesions: list[dict], grid: Volume,
              rng: np.random.Generator) -> tuple[Volume, Volume, str]:
    """(CT int16 HU, lesion mask uint8 on the CT grid, the contrast phase) of the tissue map and its lesions on a
    scanner grid over the same field of view. Each lesion's ``ct_visible`` is recorded in ``lesions``."""
    classes = tissue.copy()
    hosts = []  # the tissue class most of each lesion lies in
    for i in range(1, len(lesions) + 1):
        inside = index == i
        hosts.append(int(np.bincount(tissue[inside]).argmax()))
        classes[inside] = LESION_CLASS + i
    groups = {T[name]: CT_GROUPS[name] for name in TISSUES}
    phase, lut = draw_hu(groups, rng)
    for i, (lesion, host) in enumerate(zip(lesions, hosts, strict=True), start=1):
        lut[LESION_CLASS + i], visible = lesion_hu(lesion["site"], float(lut[host]), rng)
        lesion["ct_visible"] = bool(visible)
        groups[LESION_CLASS + i] = "soft"
    lo, hi = grid.world_bounds()
    ct_grid = scan_grid(lo - WORK_MM / 2, hi + WORK_MM / 2, rng)
    on_ct = resample_to(grid.with_array(classes, modality="SEG", units="label"), ct_grid, nearest=True).array
    hu = render_labels(on_ct, groups, lut, rng)
    ct = ct_grid.with_array(acquire(hu, ct_grid, rng), modality="CT", units="HU")
    mask = ct_grid.with_array((on_ct > LESION_CLASS).astype(np.uint8), modality="SEG", units="label")
    return ct, mask, phase


def scan_ct(scan: Volume, index: np.ndarray, lesions: list[dict], rng: np.random.Generator) -> tuple[Volume, Volume]:
    """(CT int16 HU, lesion mask uint8) on the grid of ``scan`` (a real CT's own HU, Anatomy.hu): each lesion's
    voxels shifted from their host's median HU to a lesion_hu value, so the scan's texture and noise stay, with a
    partial-volume rim (Gaussian, sigma 0.7 voxel). Each lesion's ``ct_visible`` is recorded in ``lesions``."""
    hu = scan.array.astype(np.float32)
    boxes = ndimage.find_objects(index, max_label=len(lesions))
    for i, (lesion, box) in enumerate(zip(lesions, boxes, strict=True), start=1):
        box = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in box)  # room for the rim
        inside = index[box] == i
        host = float(np.median(hu[box][inside]))
        value, visible = lesion_hu(lesion["site"], host, rng)
        lesion["ct_visible"] = bool(visible)
        hu[box] += ndimage.gaussian_filter(inside.astype(np.float32), 0.7) * (value - host)
    ct = scan.with_array(np.clip(np.round(hu), -1024, 3071).astype(np.int16), modality="CT", units="HU")
    return ct, scan.with_array((index > 0).astype(np.uint8), modality="SEG", units="label")


def make_pet_ct_case(seed: int, source: str = "synthetic", *, real_tissue: Volume | None = None,
                     deform: bool = True, real_hu: Volume | None = None) -> PetCtCase:
    """The PET/CT study of ``seed`` (deterministic): anatomy ``source`` "synthetic" or "real" (``real_tissue``,
    default pet_phantom.load_real_tissue_map(), deformed unless ``deform`` is False), lesions, PET and CT. With
    ``real_hu`` (the real CT the tissue map was made from) the CT is that scan, deformed alike, with the lesions
    painted in (scan_ct), instead of the tissue map rendered in HU; the anatomy, lesions and PET of a seed do not
    change."""
    rng = np.random.default_rng([seed, 1313])
    anatomy = phantom_anatomy(source, rng, real_tissue=real_tissue, deform=deform, real_hu=real_hu)
    return pet_ct_from_anatomy(anatomy, rng, f"PET/CT phantom {source} seed {seed}")


def pet_ct_from_anatomy(anatomy: Anatomy, rng: np.random.Generator, description: str) -> PetCtCase:
    """Lesions, PET and CT (see the module docstring) of a tissue map on pet_phantom's WORK_MM grid."""
    grid, tissue = anatomy.grid, anatomy.grid.array
    index, lesions = place_lesions(tissue, grid, rng)
    inplane = rng.uniform(*PET_VOXEL_MM[0])
    pet, _, settings = pet_from_anatomy(anatomy, rng, lesion_count=0,
                                        voxel_mm=(inplane, inplane, rng.uniform(*PET_VOXEL_MM[1])))
    pet = add_lesion_uptake(pet, index, lesions, grid, settings, rng)
    if anatomy.hu is None:
        ct, mask, phase = render_ct(tissue, index, lesions, grid, rng)
    else:
        (ct, mask), phase = scan_ct(anatomy.hu, index, lesions, rng), "as scanned"
    settings = {**settings, "ct_phase": phase, "ct_voxel_mm": [round(float(v), 2) for v in ct.spacing]}
    return PetCtCase(ct.with_array(ct.array, description=f"{description} CT"),
                     pet.with_array(pet.array, description=f"{description} PET"), mask, lesions, settings)


def pet_ct_lesion_cases(entry: dict, labels: dict[int, str], base: Path) -> list[Case]:
    """Cases of a ``pet_ct_lesions`` data entry (ai.training.datasets): ``seeds: [start, stop]``, ``source``
    "synthetic" (default) or "real" (then ``image``, ``labels``, ``names``: the labelled CT, relative to the
    config's folder; default the shared ct_abdomen_3mm), ``deform`` (real anatomy; default true), ``ct``
    "rendered" (default: the tissue map rendered in HU) or "scan" (real anatomy only: the CT is the real scan's
    own HU with the lesions painted in, see make_pet_ct_case). The lesion mask takes the config's id of the label
    named "lesion"."""
    from ai.training.datasets import label_lookup
    from viewer.core.errors import InputError
    from viewer.core.io import load_volume

    seeds, source, tissue, where = phantom_entry(entry, base, "pet_ct_lesions")
    ct_kind = entry.get("ct", "rendered")
    if ct_kind not in ("rendered", "scan") or (ct_kind == "scan" and source != "real"):
        raise InputError(f"a pet_ct_lesions entry's ct must be 'rendered' or, with source 'real', 'scan'; got "
                         f"{ct_kind!r} with source {source!r}", base)
    real_hu = None
    if ct_kind == "scan":
        real_hu = load_volume(real_files(entry, base)[0])
        where += " with the scan's own CT"
    lookup = label_lookup({1: LESION}, labels)
    cases = []
    for seed in seeds:
        study = make_pet_ct_case(seed, source, real_tissue=tissue, deform=entry.get("deform", True), real_hu=real_hu)
        mask = study.mask.with_array(lookup[study.mask.array])
        cases.append(Case(f"{where} seed {seed}", [study.ct, study.pet], mask, study.lesions,
                          source=f"ai.training.pet_ct_lesions {where} seeds {seeds.start}-{seeds.stop - 1}"))
        log.info("%s seed %d: %d lesion(s), %s", where, seed, len(study.lesions), study.settings)
    return cases
