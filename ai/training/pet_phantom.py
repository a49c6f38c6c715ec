"""PET phantoms for the lesion detector: SUVbw images from tissue maps, with varied uptake, lesions, blur and noise.

Anatomy comes from two sources: a synthetic body (torso, head, arms; organs as ellipsoids whose size and place
vary, the field of view a random slab from the pelvis to the head) or a real labelled CT (TotalSegmentator
labels + HU for unlabelled tissue, e.g. ../shared/data/ct_abdomen_3mm) deformed by a random affine and elastic
map. Each tissue gets a random uptake from PHYSIOLOGY (liver 1.5-3.5, kidneys up to 15, bladder 5-50, ...),
bowel is patchy, lesions (0-6, 6-35 mm, SUV 2.5-20, in liver / lung / bone / nodes / anywhere, some next to
hot organs, and optionally inside solid organs: ``organ_lesions``) are painted in, then a PSF blur (FWHM 5-8 mm),
a voxel size of 2-5 mm and count-like noise.
Every case is deterministic for its seed; its ``lesions`` are [{"center_mm", "diameter_mm"}] in LPS mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from viewer.core.resample import resample_to
from viewer.core.volume import Volume

#: Spacing (mm) of the grid anatomy and uptake are built on, before the PSF and the final voxel size.
WORK_MM = 2.5
#: Tissue classes of a tissue map, and their uptake range (SUVbw) drawn per case.
TISSUES = ("air", "fat", "soft", "muscle", "bone", "lung", "liver", "spleen", "kidney_cortex", "kidney_pelvis",
           "bladder", "myocardium", "blood", "brain", "bowel", "stomach", "other_organ", "injection")
T = {name: i for i, name in enumerate(TISSUES)}
PHYSIOLOGY = {
    "air": (0.0, 0.0), "fat": (0.2, 0.45), "soft": (0.5, 1.1), "muscle": (0.5, 1.0), "bone": (1.0, 2.0),
    "lung": (0.25, 0.7), "liver": (1.5, 3.5), "spleen": (1.2, 3.0), "kidney_cortex": (2.0, 10.0),
    "kidney_pelvis": (3.0, 15.0), "bladder": (5.0, 50.0), "myocardium": (2.0, 15.0), "blood": (1.4, 2.2),
    "brain": (5.0, 12.0), "bowel": (1.0, 4.0), "stomach": (1.2, 3.5), "other_organ": (1.0, 2.5),
    "injection": (10.0, 60.0),
}
#: Hot organs some lesions are put next to (the detector must tell them apart).
HOT = ("kidney_cortex", "kidney_pelvis", "bladder", "myocardium", "brain", "injection")
#: TotalSegmentator structure names (or name prefixes) -> tissue class; anything else labelled: other_organ.
TOTALSEG_TISSUES = {
    "liver": "liver", "spleen": "spleen", "kidney_cyst": "soft", "kidney": "kidney_cortex",
    "urinary_bladder": "bladder", "heart": "myocardium", "brain": "brain", "small_bowel": "bowel",
    "duodenum": "bowel", "colon": "bowel", "stomach": "stomach", "esophagus": "bowel", "aorta": "blood",
    "inferior_vena_cava": "blood", "portal_vein": "blood", "pulmonary": "blood", "iliac_artery": "blood",
    "iliac_vena": "blood", "lung": "lung", "trachea": "air", "vertebrae": "bone", "sacrum": "bone",
    "rib": "bone", "hip": "bone", "femur": "bone", "scapula": "bone", "clavicula": "bone", "humerus": "bone",
    "sternum": "bone", "skull": "bone", "costal_cartilages": "soft", "autochthon": "muscle", "iliopsoas": "muscle",
    "gluteus": "muscle", "spinal_cord": "soft", "gallbladder": "soft",
}
LESION_SITES = ("liver", "lung", "bone", "node", "anywhere", "near_hot")
#: How often a lesion goes to each of LESION_SITES.
SITE_WEIGHTS = (0.25, 0.15, 0.15, 0.2, 0.1, 0.15)
#: Solid organs an "organ" lesion is put inside (a phantom entry's ``organ_lesions``), each with its own uptake
#: around the lesion (the kidney cortex's up to SUV 10).
ORGAN_SITE = ("spleen", "kidney_cortex", "stomach", "other_organ")
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
#: The real labelled CT the "real" anatomy comes from (never the DICOM series: the maintainers' test case).
REAL_CT = DATA / "ct_abdomen_3mm.nii.gz"
REAL_LABELS = DATA / "ct_abdomen_3mm_labels.nii.gz"
REAL_NAMES = DATA / "totalsegmentator_total_labels.json"


@dataclass
class Anatomy:
    """A tissue map (z, y, x) uint8 of TISSUES indices on ``grid`` (its geometry; the array is the map); ``hu``:
    the scan's own CT in HU on the same grid when the anatomy is a real scan's, else None."""

    grid: Volume
    hu: Volume | None = None


@dataclass
class PetCase:
    """A generated PET study: the image (SUVbw, modality PT) and its lesions [{"center_mm", "diameter_mm"}]."""

    pet: Volume
    lesions: list[dict]
    seed: int
    source: str
    settings: dict = field(default_factory=dict)


class _Painter:
    """Paints ellipsoids and z-cylinders (world mm, LPS) into a tissue map on an axis-aligned grid."""

    def __init__(self, shape, origin):
        self.tissue = np.zeros(shape, np.uint8)
        self.origin = np.asarray(origin, float)  # (x, y, z) of voxel (0, 0, 0)

    def _axes(self, lo, hi):
        """Index slices (z, y, x) of the world box [lo, hi] and the voxel-centre coordinates along each."""
        i0 = np.maximum(np.floor((np.asarray(lo) - self.origin) / WORK_MM).astype(int), 0)
        i1 = np.minimum(np.ceil((np.asarray(hi) - self.origin) / WORK_MM).astype(int) + 1, self.tissue.shape[::-1])
        if np.any(i1 <= i0):
            return None, None
        coords = [self.origin[a] + WORK_MM * np.arange(i0[a], i1[a]) for a in range(3)]
        return tuple(slice(i0[a], i1[a]) for a in (2, 1, 0)), coords

    def mask(self, centre, radii, cylinder=False):
        """(slices, boolean mask) of an ellipsoid (or a z-cylinder) in the map."""
        centre, radii = np.asarray(centre, float), np.asarray(radii, float)
        box, coords = self._axes(centre - radii, centre + radii)
        if box is None:
            return None, None
        x, y, z = coords
        d = ((x[None, None, :] - centre[0]) / radii[0]) ** 2 + ((y[None, :, None] - centre[1]) / radii[1]) ** 2
        if not cylinder:
            d = d + ((z[:, None, None] - centre[2]) / radii[2]) ** 2
        else:
            d = np.broadcast_to(d, (len(z), len(y), len(x)))
        return box, d <= 1.0

    def paint(self, tissue: str, centre, radii, cylinder=False, only=None):
        """Set the ellipsoid's voxels to ``tissue`` (only where the map holds a class of ``only``, if given)."""
        box, m = self.mask(centre, radii, cylinder)
        if box is None:
            return
        if only is not None:
            m = m & np.isin(self.tissue[box], [T[o] for o in only])
        self.tissue[box][m] = T[tissue]


def synthetic_anatomy(rng: np.random.Generator) -> Anatomy:
    """A synthetic body: elliptic torso (fat, muscle, soft tissue), head with brain, optional arms (with an
    injection site sometimes), lungs, heart, aorta, spine, liver, spleen, stomach, kidneys (cortex, pelvis),
    bowel loops, bladder, pelvic bones and psoas, sizes and places varied; the field of view is a random
    slab 40-420 mm long between pelvis (z 0) and vertex (z 760)."""
    a, b = rng.uniform(115, 180), rng.uniform(85, 125)  # torso half width / half depth
    length = float(rng.choice([rng.uniform(40, 120), rng.uniform(120, 420)], p=[0.3, 0.7]))
    z0 = rng.uniform(-20, 760 - length)
    arms = rng.random() < 0.4
    half_x = a + (100 if arms else 15)
    origin = (-half_x, -b - 15, z0)
    shape = (int(length / WORK_MM), int(2 * (b + 15) / WORK_MM), int(2 * half_x / WORK_MM))
    p = _Painter(shape, origin)

    def j(v, s=12.0):  # jittered position
        return np.asarray(v, float) + rng.normal(0, s, 3)

    def r(v, lo=0.8, hi=1.25):  # varied radii
        return np.asarray(v, float) * rng.uniform(lo, hi, 3)

    fat = rng.uniform(6, 35)
    muscle = rng.uniform(6, 18)
    trunk = (-60, 620)
    zc, zh = sum(trunk) / 2, (trunk[1] - trunk[0]) / 2
    for tissue, shrink in (("fat", 0), ("muscle", fat), ("soft", fat + muscle)):
        box, m = p.mask((0, 0, zc), (a - shrink, b - shrink, zh), cylinder=True)
        if box is not None:
            zz = origin[2] + WORK_MM * np.arange(box[0].start, box[0].stop)
            m = m & ((zz >= trunk[0]) & (zz <= trunk[1]))[:, None, None]
            p.tissue[box][m] = T[tissue]
    for _ in range(rng.integers(0, 12)):  # visceral fat
        p.paint("fat", j((rng.uniform(-a, a) * 0.6, rng.uniform(-b, b) * 0.5, rng.uniform(0, 330)), 1),
                r((25, 20, 30), 0.5, 1.5), only=("soft",))
    p.paint("muscle", (0, 0, 640), (55, 60, 25), cylinder=False)  # neck
    p.paint("fat", (0, 0, 690), r((78, 95, 85), 0.9, 1.1))  # head
    p.paint("soft", (0, 0, 690), (72, 88, 80), only=("fat",))
    p.paint("bone", (0, 0, 690), (68, 84, 76), only=("soft",))
    p.paint("brain", j((0, 0, 695), 4), r((62, 78, 66), 0.9, 1.05))
    if arms:
        for side in (-1, 1):
            p.paint("fat", (side * (a + 50), rng.uniform(-20, 20), 0), (40, 42, 1), cylinder=True)
            p.paint("muscle", (side * (a + 50), 0, 0), (32, 34, 1), cylinder=True, only=("fat",))
            p.paint("bone", (side * (a + 50), 0, 0), (9, 9, 1), cylinder=True)
        if rng.random() < 0.35:
            side = rng.choice([-1, 1])
            p.paint("injection", j((side * (a + 50), -20, rng.uniform(z0, z0 + length)), 8), r((9, 9, 14), 0.5, 1.6))
    for side in (-1, 1):
        p.paint("lung", j((side * a * 0.45, 0, 470)), r((a * 0.36, b * 0.72, 95)), only=("soft",))
    p.paint("myocardium", j((a * 0.15, -b * 0.25, 430), 10), r((50, 45, 55)), only=("soft", "lung"))
    heart = p.tissue == T["myocardium"]
    p.tissue[ndimage.binary_erosion(heart, iterations=int(rng.integers(3, 6)))] = T["blood"]
    p.paint("blood", j((a * 0.08, b * 0.3, 0), 4), (12, 12, 1), cylinder=True, only=("soft", "muscle", "fat"))
    p.paint("bone", (0, b * 0.62, 0), r((21, 19, 1), 0.85, 1.15), cylinder=True)
    p.paint("liver", j((-a * 0.45, -b * 0.05, 330)), r((a * 0.45, b * 0.65, 72)), only=("soft", "lung"))
    p.paint("spleen", j((a * 0.55, b * 0.35, 330)), r((30, 45, 50), 0.6, 1.4), only=("soft",))
    p.paint("stomach", j((a * 0.3, -b * 0.35, 345)), r((50, 35, 40), 0.6, 1.3), only=("soft",))
    for side in (-1, 1):
        centre, radii = j((side * a * 0.4, b * 0.45, 255)), r((28, 30, 55), 0.85, 1.2)
        p.paint("kidney_cortex", centre, radii, only=("soft", "fat"))
        p.paint("kidney_pelvis", centre + (-side * 6, 0, 0), radii * rng.uniform(0.35, 0.6), only=("kidney_cortex",))
        p.paint("muscle", (side * 38, b * 0.5, 0), (18, 18, 1), cylinder=True, only=("soft",))  # psoas
    for _ in range(rng.integers(6, 20)):
        p.paint("bowel", j((rng.uniform(-0.6, 0.6) * a, rng.uniform(-0.6, 0.2) * b, rng.uniform(80, 290)), 1),
                r((18, 15, 20), 0.5, 1.5), only=("soft", "fat"))
    p.paint("bladder", j((0, -b * 0.3, 70), 8), r((45, 40, 40), 0.6, 1.3), only=("soft", "bowel"))
    for side in (-1, 1):
        p.paint("bone", j((side * a * 0.55, b * 0.2, 100), 6), r((35, 55, 60), 0.85, 1.1), only=("soft", "muscle"))
    return Anatomy(Volume(p.tissue, (WORK_MM,) * 3, tuple(origin), modality="SEG", units="label"))


def _totalseg_tissue(name: str) -> str:
    """The tissue class of a TotalSegmentator structure name (TOTALSEG_TISSUES, by prefix; else other_organ)."""
    return next((t for prefix, t in TOTALSEG_TISSUES.items() if name.startswith(prefix)), "other_organ")


def real_tissue_map(ct: Volume, labels: Volume, names: dict[int, str]) -> Volume:
    """Tissue map on the CT's grid: labelled structures by name (kidney pelvis = the kidney eroded 6 mm, heart
    blood pool = the heart eroded 8 mm), unlabelled voxels by HU (air < -500 < fat < -30 < soft < 200 < bone)."""
    hu = ct.array.astype(np.float32)
    tissue = np.select([hu < -500, hu < -30, hu < 200], [T["air"], T["fat"], T["soft"]], T["bone"]).astype(np.uint8)
    lab = labels.array
    for value in np.unique(lab[lab > 0]):
        tissue[lab == value] = T[_totalseg_tissue(names.get(int(value), ""))]
    vox = float(min(ct.spacing))
    for organ, inner, mm in (("kidney_cortex", "kidney_pelvis", 6.0), ("myocardium", "blood", 8.0)):
        mask = tissue == T[organ]
        if mask.any():
            tissue[ndimage.binary_erosion(mask, iterations=max(int(round(mm / vox)), 1))] = T[inner]
    return ct.with_array(tissue, modality="SEG", units="label")


def load_real_tissue_map(ct_path: Path = REAL_CT, labels_path: Path = REAL_LABELS,
                         names_path: Path = REAL_NAMES) -> Volume:
    """real_tissue_map of a labelled CT read from files (NIfTI CT in HU, label map, {id: name} JSON)."""
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_label_names

    return real_tissue_map(load_volume(ct_path), load_volume(labels_path), load_label_names(names_path))


def deformed_anatomy(tissue: Volume, rng: np.random.Generator, *, deform: bool = True,
                     hu: Volume | None = None) -> Anatomy:
    """``tissue`` resampled (nearest) onto an axis-aligned WORK_MM grid, through a random affine (scale 0.85-1.2
    per axis, rotation up to 10 degrees, shift up to 15 mm) and a smooth elastic field (sd 4 mm) when
    ``deform``; the field of view sometimes cut to a 40-70 mm slab. ``hu``: the scan the map was made from (on
    its grid), resampled (linear) through the same deformation into Anatomy.hu; it draws nothing from ``rng``."""
    if hu is not None and not hu.same_grid(tissue):
        raise ValueError("the scan's HU must be on the tissue map's grid")
    lo, hi = tissue.world_bounds()
    centre = (lo + hi) / 2
    size = np.maximum(np.round((hi - lo) / WORK_MM).astype(int), 1)
    origin = lo + WORK_MM / 2
    if deform and rng.random() < 0.3:  # a short slab
        keep = int(rng.uniform(40, 70) / WORK_MM)
        start = int(rng.integers(0, max(size[2] - keep, 1)))
        origin[2] += start * WORK_MM
        size[2] = min(keep, size[2])
    zyx = np.stack(np.meshgrid(*(np.arange(n) for n in size[::-1]), indexing="ij"), 0).astype(np.float32)
    world = origin[:, None, None, None] + WORK_MM * zyx[::-1]  # (x, y, z) world of every output voxel
    if deform:
        angles = np.deg2rad(rng.uniform(-10, 10, 3))
        cx, cy, cz, sx, sy, sz = *np.cos(angles), *np.sin(angles)
        rot = (np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]]) @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
               @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]))
        matrix = rot @ np.diag(1 / rng.uniform(0.85, 1.2, 3))
        shift = rng.uniform(-15, 15, 3)
        flat = world.reshape(3, -1) - centre[:, None]
        source = (matrix @ flat).reshape(world.shape) + (centre + shift)[:, None, None, None]
        for axis in range(3):
            coarse = rng.normal(0, 4.0, (4, 4, 4))
            source[axis] += ndimage.zoom(coarse, np.asarray(size[::-1]) / 4, order=3)[:size[2], :size[1], :size[0]]
        world = source
    index = tissue.world_to_index(world.reshape(3, -1).T).T.reshape(world.shape)  # (x, y, z) continuous
    out = ndimage.map_coordinates(tissue.array, index[::-1], order=0, cval=T["air"]).astype(np.uint8)
    grid = Volume(out, (WORK_MM,) * 3, tuple(origin), modality="SEG", units="label")
    if hu is None:
        return Anatomy(grid)
    scan = ndimage.map_coordinates(hu.array.astype(np.float32), index[::-1], order=1, cval=-1000.0)
    return Anatomy(grid, grid.with_array(scan, modality="CT", units="HU"))


def _smooth_noise(rng, shape, sigma_vox: float, sd: float) -> np.ndarray:
    """A smooth random field, mean 1, standard deviation about ``sd`` (correlation ``sigma_vox`` voxels)."""
    f = ndimage.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), sigma_vox)
    return 1 + sd * f / max(float(f.std()), 1e-6)


def _lesion_centre(rng, tissue: np.ndarray, site: str) -> np.ndarray | None:
    """A voxel index (z, y, x) for a lesion at ``site`` (LESION_SITES), or None if the site is not in the map."""
    body = tissue != T["air"]
    if site in ("liver", "lung", "bone"):
        where = tissue == T[site]
    elif site == "node":  # soft tissue / fat near the vessels, or the axillae / neck / pelvis (anywhere soft)
        near_blood = ndimage.binary_dilation(tissue == T["blood"], iterations=int(25 / WORK_MM))
        soft = np.isin(tissue, [T["soft"], T["fat"]])
        where = soft & near_blood if (soft & near_blood).any() else soft
    elif site == "organ":
        where = np.isin(tissue, [T[o] for o in ORGAN_SITE])
    elif site == "near_hot":
        hot = np.isin(tissue, [T[h] for h in HOT])
        ring = ndimage.binary_dilation(hot, iterations=int(18 / WORK_MM)) & ~hot & body
        where = ring
    else:
        where = body & (tissue != T["lung"])
    candidates = np.argwhere(ndimage.binary_erosion(where, iterations=1) if where.sum() > 50 else where)
    return candidates[rng.integers(len(candidates))] if len(candidates) else None


def _add_lesions(rng, tissue: np.ndarray, suv: np.ndarray, grid: Volume, count: int,
                 organ_lesions: float = 0.0) -> list[dict]:
    """Paint ``count`` lesions into ``suv`` (in place); their truth [{"center_mm", "diameter_mm", "suv", "site"}].
    ``organ_lesions``: the fraction put inside a solid organ (ORGAN_SITE), the other sites' weights scaled down
    (0: the sites and draws of phantoms made before the "organ" site existed)."""
    sites, weights = LESION_SITES, SITE_WEIGHTS
    if organ_lesions:
        sites, weights = (*sites, "organ"), (*(w * (1 - organ_lesions) for w in weights), organ_lesions)
    lesions: list[dict] = []
    zz, yy, xx = (np.arange(n, dtype=np.float32) * WORK_MM for n in tissue.shape)
    for _ in range(count * 4):
        if len(lesions) == count:
            break
        site = str(rng.choice(sites, p=weights))
        c = _lesion_centre(rng, tissue, site)
        if c is None:
            continue
        diameter = float(np.exp(rng.uniform(np.log(6), np.log(35))))
        centre_mm = grid.index_to_world(c[::-1] + rng.uniform(-0.5, 0.5, 3))
        if any(np.linalg.norm(centre_mm - np.asarray(o["center_mm"])) < (diameter + o["diameter_mm"]) / 2 + 6
               for o in lesions):
            continue
        radii = diameter / 2 * rng.uniform(0.8, 1.2, 3)
        local = centre_mm - np.asarray(grid.origin)
        d2 = (((xx[None, None, :] - local[0]) / radii[0]) ** 2 + ((yy[None, :, None] - local[1]) / radii[1]) ** 2
              + ((zz[:, None, None] - local[2]) / radii[2]) ** 2)
        inside = d2 <= 1.0
        if not inside.any():
            continue
        background = float(np.median(suv[inside]))
        value = max(float(np.exp(rng.uniform(np.log(2.5), np.log(20)))), background * rng.uniform(1.6, 3.0))
        profile = np.where(inside, value, 0.0)
        if diameter > 22 and rng.random() < 0.3:  # necrotic core
            profile[d2 <= 0.3] = value * 0.3
        suv[inside] = profile[inside]
        lesions.append({"center_mm": [round(float(v), 2) for v in centre_mm],
                        "diameter_mm": round(float(2 * np.cbrt(np.prod(radii))), 2), "suv": round(value, 2),
                        "site": site})
    return lesions


def pet_from_anatomy(anatomy: Anatomy, rng: np.random.Generator, *, lesion_count: int | None = None,
                     fwhm_mm: float | None = None, voxel_mm=None, noise: float | None = None,
                     organ_lesions: float = 0.0) -> tuple[Volume, list, dict]:
    """(PET Volume in SUVbw, lesions, settings) from a tissue map: per-case uptake (PHYSIOLOGY), patchy bowel and
    mildly heterogeneous organs, lesions (0-6 unless ``lesion_count``; the fraction ``organ_lesions`` of them
    inside solid organs, see _add_lesions), PSF blur (FWHM 5-8 mm unless given),
    resampled to a voxel size of 2-5 mm (``voxel_mm`` (x, y, z) if given), count-like noise (level 0.05-0.35)."""
    tissue = anatomy.grid.array
    uptake = np.array([rng.uniform(*PHYSIOLOGY[t]) for t in TISSUES], np.float32)
    suv = uptake[tissue] * _smooth_noise(rng, tissue.shape, 3.0, 0.08)
    bowel = tissue == T["bowel"]
    suv[bowel] *= np.clip(_smooth_noise(rng, tissue.shape, 2.0, 0.5), 0.3, 2.5)[bowel]
    lesions = _add_lesions(rng, tissue, suv, anatomy.grid, int(rng.integers(0, 7)) if lesion_count is None
                           else lesion_count, organ_lesions)
    fwhm = rng.uniform(5, 8) if fwhm_mm is None else fwhm_mm
    suv = ndimage.gaussian_filter(suv, fwhm / 2.3548 / WORK_MM)
    if voxel_mm is None:
        inplane = rng.uniform(2, 5)
        voxel_mm = (inplane, inplane, rng.uniform(2, 5))
    fine = anatomy.grid.with_array(suv.astype(np.float32), modality="PT", units="SUVbw")
    lo, hi = fine.world_bounds()
    size = np.maximum(np.floor((hi - lo) / voxel_mm).astype(int), 1)
    target = Volume(np.zeros(tuple(size[::-1]), np.uint8), tuple(voxel_mm), tuple(lo + np.asarray(voxel_mm) / 2))
    pet = resample_to(fine, target).array
    level = rng.uniform(0.05, 0.35) if noise is None else noise
    pet = pet + level * np.sqrt(np.maximum(pet, 0.02)) * rng.normal(0, 1, pet.shape).astype(np.float32)
    pet = np.maximum(ndimage.gaussian_filter(pet, 0.6), 0).astype(np.float32)
    settings = {"fwhm_mm": round(float(fwhm), 2), "voxel_mm": [round(float(v), 2) for v in voxel_mm],
                "noise": round(float(level), 3)}
    return target.with_array(pet, modality="PT", units="SUVbw"), lesions, settings


def phantom_anatomy(source: str, rng: np.random.Generator, *, real_tissue: Volume | None = None,
                    deform: bool = True, real_hu: Volume | None = None) -> Anatomy:
    """The anatomy of a phantom drawn with ``rng``: ``source`` "synthetic" (synthetic_anatomy) or "real"
    (``real_tissue``, default load_real_tissue_map(), deformed unless ``deform`` is False; with ``real_hu``, the
    scan it was made from, deformed alike: Anatomy.hu)."""
    if source == "synthetic":
        return synthetic_anatomy(rng)
    if source == "real":
        return deformed_anatomy(real_tissue if real_tissue is not None else load_real_tissue_map(), rng,
                                deform=deform, hu=real_hu)
    raise ValueError(f"source must be 'synthetic' or 'real', got {source!r}")


def make_pet_case(seed: int, source: str = "synthetic", *, real_tissue: Volume | None = None, deform: bool = True,
                  **options) -> PetCase:
    """The PET phantom of ``seed`` (deterministic): ``source`` "synthetic" (synthetic_anatomy) or "real"
    (``real_tissue``, default load_real_tissue_map(), deformed unless ``deform`` is False); ``options`` go to
    pet_from_anatomy (lesion_count, fwhm_mm, voxel_mm, noise, organ_lesions)."""
    rng = np.random.default_rng(seed)
    anatomy = phantom_anatomy(source, rng, real_tissue=real_tissue, deform=deform)
    pet, lesions, settings = pet_from_anatomy(anatomy, rng, **options)
    description = f"PET phantom {source} seed {seed}"
    return PetCase(pet.with_array(pet.array, description=description), lesions, seed, source, settings)


def pet_ct_cases(entry: dict, labels: dict[int, str], base: Path) -> list:
    """Cases of a ``pet_ct_phantom`` data entry (ai.training.datasets): ``seeds: [start, stop]``, ``source``
    "synthetic" (default) or "real" (then ``image``, ``labels``, ``names``: the labelled CT, relative to the
    config's folder; default the shared ct_abdomen_3mm), ``deform`` (real anatomy; default true), ``voxel_mm``
    (x, y, z; default a random 2-5 mm per case), ``organ_lesions`` (the fraction of lesions inside solid organs,
    0-1; default 0). PET only: each case holds the PET image and its ``lesions``, no
    label map."""
    from ai.numbers import is_number
    from ai.training.cases import Case
    from viewer.core.errors import InputError

    seeds, source, tissue, where = phantom_entry(entry, base, "pet_ct_phantom")
    options = {}
    if "voxel_mm" in entry:
        voxel = entry["voxel_mm"]
        if not (isinstance(voxel, list) and len(voxel) == 3 and all(is_number(v) and v > 0 for v in voxel)):
            raise InputError(f"a pet_ct_phantom entry's voxel_mm must be 3 sizes in mm (x, y, z), got {voxel!r}",
                             base)
        options["voxel_mm"] = tuple(float(v) for v in voxel)
        where += " at " + " x ".join(f"{v:g}" for v in voxel) + " mm voxels"
    if entry.get("organ_lesions"):
        fraction = entry["organ_lesions"]
        if not (is_number(fraction) and 0 <= fraction <= 1):
            raise InputError(f"a pet_ct_phantom entry's organ_lesions must be a fraction 0-1, got {fraction!r}", base)
        options["organ_lesions"] = float(fraction)
        where += f" ({fraction:.0%} of lesions in solid organs)"
    out = []
    for seed in seeds:
        case = make_pet_case(seed, source, real_tissue=tissue, deform=entry.get("deform", True), **options)
        out.append(Case(f"{where} seed {seed}", [case.pet], None, case.lesions,
                        source=f"ai.training.pet_phantom {where} seeds {seeds.start}-{seeds.stop - 1}"))
    return out


def ct_label_pet_cases(entry: dict, labels: dict[int, str], base: Path) -> list:
    """Cases of a ``ct_label_pet`` data entry: the PET viewer.core.registration.synthetic.synthetic_pet makes of a
    labelled CT (``image``, ``labels``, ``names``; default the shared ct_abdomen_3mm) for each of ``seeds``: organ
    uptake from the labels, a lesion at the deepest point of the liver, spleen and left kidney (a kidney lesion
    inside hot tissue), 7 mm FWHM, a 4 mm grid, its own noise per seed. Another generator than pet_ct_phantom's,
    so a detector trained on those is measured on anatomy and uptake it never saw made this way."""
    from ai.training.cases import Case
    from ai.training.datasets import seed_range
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import load_label_names
    from viewer.core.registration.synthetic import synthetic_pet

    image, label_map, names = real_files(entry, base)
    ct, organs, structures = load_volume(image), load_volume(label_map), load_label_names(names)
    seeds = seed_range(entry, base)
    out = []
    for seed in seeds:
        made = synthetic_pet(ct, organs, structures, seed=seed)
        centres = made.truth.fixed_to_moving(np.array([les["centre_mm"] for les in made.lesions]))  # in the PET
        lesions = [{"center_mm": [round(float(v), 2) for v in centre], "diameter_mm": 2 * les["radius_mm"],
                    "suv": les["suv"], "site": les["name"]} for les, centre in zip(made.lesions, centres, strict=True)]
        out.append(Case(f"ct_label_pet from {image.name} seed {seed}", [made.pet], None, lesions,
                        source=f"viewer.core.registration.synthetic.synthetic_pet of {image.name} seeds "
                               f"{seeds.start}-{seeds.stop - 1}"))
    return out


def real_files(entry: dict, base: Path) -> list[Path]:
    """[CT, label map, names JSON] of a real-anatomy phantom data entry: its ``image``, ``labels``, ``names``
    (relative to the config's folder), by default the shared ct_abdomen_3mm."""
    from ai.training.datasets import entry_path

    return [entry_path(entry, k, base) if k in entry else default
            for k, default in (("image", REAL_CT), ("labels", REAL_LABELS), ("names", REAL_NAMES))]


def phantom_entry(entry: dict, base: Path, kind: str) -> tuple[range, str, object, str]:
    """The common keys of a phantom data entry of ``kind``: (seeds, source "synthetic" or "real", the real CT's
    tissue map or None, a description of where the cases come from). InputError names a bad source."""
    from ai.training.datasets import seed_range
    from viewer.core.errors import InputError

    seeds = seed_range(entry, base)
    source = entry.get("source", "synthetic")
    if source not in ("synthetic", "real"):
        raise InputError(f"a {kind} data entry's source must be 'synthetic' or 'real', got {source!r}", base)
    tissue = None
    where = f"{kind} {source}"
    if source == "real":
        paths = real_files(entry, base)
        tissue = load_real_tissue_map(*paths)
        where += f" from {paths[0].name}" + ("" if entry.get("deform", True) else " (not deformed)")
    return seeds, source, tissue, where
