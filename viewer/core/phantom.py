"""The generated demo study: an analytic torso phantom as CT (HU), PET (SUVbw) and MR with known truth.

The body is a fat layer under the skin, an abdominal-wall muscle ring and visceral fat around the organs and the
back muscles; the CT is in a portal-venous contrast phase (enhanced liver, spleen, kidneys and aorta), so the organs
stand out from their surroundings as on a clinical abdominal CT. Anatomy is a set of ellipsoids/cylinders in world
millimetres (LPS: +x patient left, +y posterior, +z superior), evaluated on each modality's own grid, so the three
images agree in world space exactly as real co-registered scans would. Everything is deterministic for a seed:
seed 0 is the demo study with its three documented lesions; every other seed also draws its own lesions (count,
sites, sizes, uptake).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from viewer.core.progress import ProgressCallback, no_progress
from viewer.core.volume import Volume

#: Bump when the phantom changes, so cached demo studies are regenerated.
PHANTOM_VERSION = "2"

#: Label ids follow TotalSegmentator's where the structure exists there (../shared/data).
LABEL_NAMES = {
    1: "spleen",
    2: "kidney_right",
    3: "kidney_left",
    5: "liver",
    52: "aorta",
    60: "vertebrae",
    61: "lung_left",
    62: "lung_right",
    90: "lesion",
}

CT_SIZE = (256, 256, 100)  # x, y, z
CT_SPACING = (1.5, 1.5, 3.0)
PET_SPACING = (4.0, 4.0, 4.0)
MR_SPACING = (1.8, 3.0, 1.8)  # coronal slices: index y runs anterior -> posterior
PET_FWHM_MM = 7.0
#: PET world point p maps to CT world point R p + t (R: rotation about z by ``rotation_deg[2]``).
PET_TO_CT = {"translation_mm": [3.0, -2.0, 4.0], "rotation_deg": [0.0, 0.0, 2.0]}


@dataclass(frozen=True)
class Organ:
    """An ellipsoid (or a z-cylinder when ``cylinder``) with its CT HU, PET SUV and MR value."""

    name: str
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    hu: float
    suv: float
    mr: float
    label: int | None = None
    cylinder: bool = False


ORGANS = (
    Organ("lung_left", (75, 5, 95), (55, 70, 75), -850, 0.4, 30, 61),
    Organ("lung_right", (-75, 5, 95), (60, 70, 75), -850, 0.4, 30, 62),
    Organ("liver", (-60, -5, 5), (75, 62, 55), 105, 2.0, 520, 5),
    Organ("spleen", (105, 40, 25), (22, 48, 42), 115, 1.8, 420, 1),
    Organ("kidney_left", (65, 58, -40), (25, 30, 45), 165, 3.0, 460, 3),
    Organ("kidney_right", (-65, 58, -48), (25, 30, 45), 165, 3.0, 460, 2),
    Organ("aorta", (14, 28, 0), (12, 12, 135), 180, 1.6, 150, 52, cylinder=True),
    Organ("vertebrae", (0, 62, 0), (21, 19, 150), 260, 1.3, 600, 60, cylinder=True),
)
#: unlabelled muscles beside the spine (erector spinae), drawn into the visceral fat before the organs
BACK_MUSCLES = tuple(Organ(f"back_muscle_{side}", (35 * sign, 95, 0), (24, 18, 150), 40, 0.9, 300, cylinder=True)
                     for side, sign in (("left", 1), ("right", -1)))
#: the body's layers, from the skin inwards: subcutaneous fat, the abdominal-wall muscle ring, visceral fat
WALL_MM = (12.0, 24.0)


@dataclass(frozen=True)
class Lesion:
    """A spherical lesion: CT HU, PET SUV before blurring, the organ it sits in."""

    name: str
    center: tuple[float, float, float]
    radius: float
    hu: float
    suv: float
    organ: str


LESIONS = (
    Lesion("liver_lesion", (-72.0, -20.0, 0.0), 12.0, 20, 8.0, "liver"),
    Lesion("lung_nodule", (78.0, 10.0, 105.0), 8.0, 30, 5.0, "lung_left"),
    Lesion("bone_lesion", (0.0, 62.0, -60.0), 9.0, 650, 12.0, "vertebrae"),
)


@dataclass(frozen=True)
class LesionSite:
    """Where a generated lesion may sit: how far off its organ's centre (a fraction of the organ's radii in
    x, y, z), its largest radius (mm) and its CT HU range; its SUV is the organ's plus 2.5 to 10."""

    organ: str
    offset: tuple[float, float, float]
    max_radius: float
    hu: tuple[float, float]


LESION_SITES = (
    LesionSite("liver", (0.55, 0.55, 0.55), 14.0, (15, 45)),
    LesionSite("lung_left", (0.5, 0.5, 0.45), 12.0, (0, 40)),
    LesionSite("lung_right", (0.5, 0.5, 0.45), 12.0, (0, 40)),
    LesionSite("spleen", (0.35, 0.35, 0.35), 12.0, (20, 40)),
    LesionSite("vertebrae", (0.25, 0.25, 0.7), 9.0, (500, 800)),
)


def phantom_lesions(seed: int) -> tuple[Lesion, ...]:
    """The lesions of phantom ``seed``: LESIONS for seed 0 (the demo study); otherwise 1 to 5 lesions drawn
    from the seed (site, centre inside the organ, radius 6 mm to the site's largest, uptake), at least
    10 mm apart, within the PET field of view. Drawn from their own random stream, so the image noise
    of a seed does not depend on its lesions."""
    if seed == 0:
        return LESIONS
    rng = np.random.default_rng([seed, 90])
    organs = {o.name: o for o in ORGANS}
    lesions: list[Lesion] = []
    count = int(rng.integers(1, 6))
    while len(lesions) < count:
        site = LESION_SITES[rng.integers(len(LESION_SITES))]
        organ = organs[site.organ]
        u = rng.uniform(-1, 1, 3)
        if float(u @ u) > 1:  # a point in the unit ball, so every site is drawn equally often
            continue
        centre = np.asarray(organ.center) + u * np.asarray(site.offset) * np.asarray(organ.radii)
        radius = float(rng.uniform(6.0, site.max_radius))
        if abs(centre[2]) + radius > 135 or any(
                np.linalg.norm(centre - np.asarray(other.center)) < radius + other.radius + 10 for other in lesions):
            continue
        lesions.append(Lesion(f"{site.organ}_lesion_{len(lesions) + 1}", tuple(round(float(c), 2) for c in centre),
                              round(radius, 2), round(float(rng.uniform(*site.hu))),
                              round(organ.suv + float(rng.uniform(2.5, 10.0)), 2), site.organ))
    return tuple(lesions)


@dataclass
class Phantom:
    """The demo study in memory."""

    ct: Volume
    pet: Volume
    mr: Volume
    labels: Volume
    label_names: dict[int, str]
    truth: dict = field(default_factory=dict)


def _grid(size, spacing, origin, direction) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World x, y, z (float32) of every voxel centre, each of shape (z, y, x)."""
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in size[::-1]), indexing="ij")
    m = np.asarray(direction, np.float32) @ np.diag(np.asarray(spacing, np.float32))
    o = np.asarray(origin, np.float32)
    return (o[a] + m[a, 0] * i + m[a, 1] * j + m[a, 2] * k for a in range(3))


def _inside(x, y, z, center, radii, cylinder=False) -> np.ndarray:
    q = ((x - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2
    if cylinder:
        return (q <= 1) & (np.abs(z - center[2]) <= radii[2])
    return q + ((z - center[2]) / radii[2]) ** 2 <= 1


def _body(x, y, z, margin=0.0) -> np.ndarray:
    return _inside(x, y, z, (0, 5, 0), (165 - margin, 115 - margin, 148 - margin), cylinder=True)


def _rotation_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _centred_origin(size, spacing, direction=None) -> tuple[float, float, float]:
    half = (np.asarray(size) - 1) * np.asarray(spacing) / 2
    d = np.eye(3) if direction is None else np.asarray(direction)
    return tuple(float(v) for v in -(d @ half))


def _tissue_maps(x, y, z, value: str, lesions: tuple[Lesion, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(values, labels) of the analytic anatomy with ``lesions`` at world points x, y, z for 'hu', 'suv' or 'mr'."""
    outside = {"hu": -1000.0, "suv": 0.0, "mr": 0.0}[value]
    fat = {"hu": -100.0, "suv": 0.3, "mr": 900.0}[value]
    soft = {"hu": 40.0, "suv": 0.9, "mr": 300.0}[value]
    out = np.full(x.shape, outside, np.float32)
    labels = np.zeros(x.shape, np.uint8)
    out[_body(x, y, z)] = fat
    out[_body(x, y, z, margin=WALL_MM[0])] = soft
    out[_body(x, y, z, margin=WALL_MM[1])] = fat
    for muscle in BACK_MUSCLES:
        out[_inside(x, y, z, muscle.center, muscle.radii, muscle.cylinder) & _body(x, y, z)] = getattr(muscle, value)
    for organ in ORGANS:
        m = _inside(x, y, z, organ.center, organ.radii, organ.cylinder)
        out[m] = getattr(organ, value)
        labels[m] = organ.label
    # vertebral discs every 32 mm; cortical rim brighter than marrow on CT
    spine = labels == 60
    disc = spine & (np.mod(z + 16, 32) < 5)
    out[disc] = {"hu": 80.0, "suv": 0.9, "mr": 250.0}[value]
    labels[disc] = 0
    rim = spine & ~_inside(x, y, z, (0, 62, 0), (17, 15, 150), cylinder=True) & ~disc
    if value == "hu":
        out[rim] = 700.0
    for lesion in lesions:
        m = _inside(x, y, z, lesion.center, (lesion.radius,) * 3)
        out[m] = {"hu": lesion.hu, "suv": lesion.suv, "mr": 200.0}[value]
        labels[m] = 90
    return out, labels


def make_phantom(seed: int = 0) -> Phantom:
    """Generate the demo CT (int16 HU), PET (float32 SUVbw, 4 mm, offset), MR and CT-grid labels; the
    lesions are ``phantom_lesions(seed)``."""
    rng = np.random.default_rng(seed)
    lesions = phantom_lesions(seed)
    # ---- CT
    ct_origin = _centred_origin(CT_SIZE, CT_SPACING)
    x, y, z = _grid(CT_SIZE, CT_SPACING, ct_origin, np.eye(3))
    hu, labels = _tissue_maps(x, y, z, "hu", lesions)
    hu = ndimage.gaussian_filter(hu, sigma=0.6)  # scanner resolution
    hu += rng.normal(0, 8, hu.shape).astype(np.float32)
    ct = Volume(np.clip(np.rint(hu), -1024, 3071).astype(np.int16), CT_SPACING, ct_origin, np.eye(3), "CT", "HU",
                "Demo CT", meta={"patient_name": "Demo^Phantom", "patient_id": "RADVIEW-DEMO"})
    label_vol = Volume(labels, CT_SPACING, ct_origin, np.eye(3), "SEG", "label", "Demo labels")
    del x, y, z, hu
    # ---- PET: evaluate the anatomy at CT points R p + t of every PET voxel p, then blur
    pet_size = (96, 76, 76)
    pet_origin = _centred_origin(pet_size, PET_SPACING)
    px, py, pz = _grid(pet_size, PET_SPACING, pet_origin, np.eye(3))
    rot = _rotation_z(PET_TO_CT["rotation_deg"][2]).astype(np.float32)
    t = np.asarray(PET_TO_CT["translation_mm"], np.float32)
    cx = rot[0, 0] * px + rot[0, 1] * py + t[0]
    cy = rot[1, 0] * px + rot[1, 1] * py + t[1]
    cz = pz + t[2]
    suv, _ = _tissue_maps(cx, cy, cz, "suv", lesions)
    sigma_vox = PET_FWHM_MM / 2.3548 / np.asarray(PET_SPACING)[::-1]
    suv = ndimage.gaussian_filter(suv, sigma=sigma_vox)
    suv = np.clip(suv * (1 + rng.normal(0, 0.03, suv.shape)).astype(np.float32), 0, None).astype(np.float32)
    pet = Volume(suv, PET_SPACING, pet_origin, np.eye(3), "PT", "SUVbw", "Demo PET FDG")
    # ---- MR: coronal acquisition on its own grid, with a smooth bias field
    mr_dir = np.column_stack([[1, 0, 0], [0, 0, -1], [0, 1, 0]]).astype(float)  # i: +x, j: S->I, k: A->P
    mr_size = (180, 100, 80)
    mr_origin = _centred_origin(mr_size, MR_SPACING, mr_dir)
    mx, my, mz = _grid(mr_size, MR_SPACING, mr_origin, mr_dir)
    mr, _ = _tissue_maps(mx, my, mz, "mr", lesions)
    mr *= 1 + 0.15 * (mx / 160.0) - 0.1 * (mz / 150.0) ** 2
    mr = ndimage.gaussian_filter(mr, 0.7) + rng.normal(0, 12, mr.shape).astype(np.float32)
    mr_vol = Volume(np.clip(mr, 0, None).astype(np.float32), MR_SPACING, mr_origin, mr_dir, "MR", "arbitrary",
                    "Demo MR T1")
    truth = _truth(ct, label_vol, pet, rot, t, lesions)
    return Phantom(ct, pet, mr_vol, label_vol, dict(LABEL_NAMES), truth)


def _truth(ct: Volume, labels: Volume, pet: Volume, rot: np.ndarray, t: np.ndarray,
           lesions: tuple[Lesion, ...]) -> dict:
    """Known answers: lesion centres/radii/SUVmax, organ volumes and HU means, the PET->CT offset."""
    voxel_ml = float(np.prod(ct.spacing)) / 1000.0
    counts = np.bincount(labels.array.ravel(), minlength=256)
    sums = np.bincount(labels.array.ravel(), weights=ct.array.ravel().astype(np.float64), minlength=256)
    organs = {
        name: {"label": lab, "volume_ml": round(float(counts[lab] * voxel_ml), 3),
               "mean_hu": round(float(sums[lab] / max(counts[lab], 1)), 2)}
        for lab, name in LABEL_NAMES.items()
    }
    found = []
    for lesion in lesions:
        pet_center = rot.T @ (np.asarray(lesion.center, np.float32) - t)  # CT point -> PET world point
        idx = np.rint(pet.world_to_index(pet_center)).astype(int)
        r = int(np.ceil((lesion.radius + 8) / PET_SPACING[0]))
        box = pet.array[max(idx[2] - r, 0): idx[2] + r + 1, max(idx[1] - r, 0): idx[1] + r + 1,
                        max(idx[0] - r, 0): idx[0] + r + 1]
        found.append({
            "name": lesion.name, "organ": lesion.organ, "center_mm": list(lesion.center),
            "center_pet_mm": [round(float(v), 4) for v in pet_center], "radius_mm": lesion.radius,
            "hu": lesion.hu, "suv_true": lesion.suv, "suv_max": round(float(box.max()), 5),
        })
    return {
        "phantom_version": PHANTOM_VERSION,
        "coordinates": "LPS mm (DICOM patient); lesion centres in the CT frame",
        "lesions": found,
        "organs": organs,
        "pet_to_ct": {**PET_TO_CT, "convention": "a PET world point p maps to the CT world point R p + t, "
                      "R a rotation about z (superior axis) by rotation_deg[2]"},
        "pet_fwhm_mm": PET_FWHM_MM,
        "ct": {"size": list(ct.size), "spacing": list(ct.spacing), "origin": list(ct.origin)},
        "pet": {"size": list(pet.size), "spacing": list(pet.spacing), "origin": list(pet.origin)},
    }


@dataclass
class DemoStudy:
    """Paths of a written demo study."""

    root: Path
    ct_dir: Path
    pet_dir: Path
    mr: Path
    labels: Path
    label_names: Path
    truth: Path


def _study_paths(root: Path) -> DemoStudy:
    return DemoStudy(root, root / "ct", root / "pet", root / "mr.nii.gz", root / "labels.nii.gz",
                     root / "labels.json", root / "truth.json")


def write_demo_study(out_dir: str | os.PathLike, progress: ProgressCallback | None = None) -> DemoStudy:
    """Generate the phantom and write CT and PET DICOM series, MR and label NIfTI, names and truth."""
    from viewer.core.io import save_volume
    from viewer.core.io.dicom_writer import DicomStudy, write_dicom_series

    progress = progress or no_progress
    paths = _study_paths(Path(out_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    progress(0.0, "generating phantom")
    ph = make_phantom()
    study = DicomStudy.demo()
    progress(0.3, "writing CT DICOM")
    write_dicom_series(ph.ct, paths.ct_dir, study=study, series_number=1)
    progress(0.7, "writing PET DICOM")
    write_dicom_series(ph.pet, paths.pet_dir, study=study, series_number=2)
    progress(0.9, "writing MR, labels, truth")
    save_volume(ph.mr, paths.mr)
    save_volume(ph.labels, paths.labels)
    paths.label_names.write_text(json.dumps({str(k): v for k, v in ph.label_names.items()}, indent=1))
    paths.truth.write_text(json.dumps(ph.truth, indent=1))
    (paths.root / "VERSION").write_text(PHANTOM_VERSION)
    progress(1.0, "demo study written")
    return paths


def demo_study_dir(progress: ProgressCallback | None = None) -> DemoStudy:
    """The demo study in the user's cache (RADVIEW_HOME/demo or the platform cache), made if missing."""
    home = os.environ.get("RADVIEW_HOME")
    if home:
        root = Path(home) / "demo"
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("radview")) / "demo"
    stamp = root / "VERSION"
    if stamp.is_file() and stamp.read_text().strip() == PHANTOM_VERSION:
        return _study_paths(root)
    return write_demo_study(root, progress)
