"""Registration truths: a PET-like image made from a real CT's organ labels, moved by a known rigid transform,
and the demo phantom's known PET offset as a Transform."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from viewer.core.registration.transform import Transform
from viewer.core.volume import Volume

#: FDG-like SUVbw by (a substring of) the structure name; the first match wins.
ORGAN_SUV = (("kidney", 3.5), ("liver", 2.0), ("spleen", 1.8), ("aorta", 1.7), ("vena_cava", 1.7),
             ("portal", 1.7), ("stomach", 1.5), ("bowel", 1.5), ("duodenum", 1.5), ("colon", 1.6),
             ("pancreas", 1.4), ("adrenal", 1.5), ("vertebrae", 1.2), ("spinal_cord", 1.2), ("rib", 1.0),
             ("gallbladder", 0.5), ("lung", 0.5), ("autochthon", 0.8), ("iliopsoas", 0.8), ("costal", 0.7))
SOFT_TISSUE_SUV, FAT_SUV = 0.9, 0.3
#: Lesions: (organ whose deepest voxel is the centre, radius mm, SUV).
LESIONS = (("liver", 9.0, 9.0), ("spleen", 8.0, 7.0), ("kidney_left", 7.0, 10.0))


@dataclass
class SyntheticPet:
    """The PET and what is known about it.

    Attributes:
        pet: float32 SUVbw on its own 4 mm grid.
        truth: fixed (CT) -> moving (PET) transform: the PET value at ``truth.fixed_to_moving(q)`` shows the
            activity at CT point ``q``.
        lesions: dicts with name, centre_mm (CT frame), radius_mm, suv.
    """

    pet: Volume
    truth: Transform
    lesions: list[dict] = field(default_factory=list)


def synthetic_pet(ct: Volume, labels: Volume, names: dict[int, str], *, rotation_deg=(2.0, -1.5, 3.0),
                  translation_mm=(4.0, -3.0, 5.0), spacing_mm: float = 4.0, fwhm_mm: float = 7.0,
                  noise: float = 0.05, seed: int = 0) -> SyntheticPet:
    """A PET-like volume of ``ct``'s anatomy: organ SUVs from ``labels`` (TotalSegmentator names), soft tissue
    and fat from the HU, three hot spherical lesions, blurred to ``fwhm_mm``, on a ``spacing_mm`` grid, moved
    by the rigid motion (rotation about the CT centre, then translation) and with multiplicative noise."""
    import SimpleITK as sitk
    from scipy import ndimage

    hu = ct.array
    suv = np.zeros(hu.shape, np.float32)
    suv[hu > -200] = SOFT_TISSUE_SUV
    suv[(hu > -200) & (hu < -30)] = FAT_SUV
    for label, name in names.items():
        value = next((v for key, v in ORGAN_SUV if key in name), None)
        if value is not None:
            suv[labels.array == label] = value
    lesions = []
    zz, yy, xx = np.indices(hu.shape)
    world = ct.index_to_world(np.stack([xx, yy, zz], axis=-1).reshape(-1, 3)).reshape(*hu.shape, 3)
    for organ, radius, value in LESIONS:
        ids = [k for k, n in names.items() if n == organ]
        mask = np.isin(labels.array, ids)
        if not mask.any():
            continue
        depth = ndimage.distance_transform_edt(np.pad(mask, 1), sampling=ct.spacing[::-1])[1:-1, 1:-1, 1:-1]
        k, j, i = np.unravel_index(int(np.argmax(depth)), depth.shape)
        centre = ct.index_to_world([i, j, k])
        suv[np.linalg.norm(world - centre, axis=-1) <= radius] = value
        lesions.append({"name": f"{organ}_lesion", "centre_mm": [round(float(c), 3) for c in centre],
                        "radius_mm": radius, "suv": value})
    sigma = fwhm_mm / 2.3548 / np.asarray(ct.spacing[::-1])
    activity = ct.with_array(ndimage.gaussian_filter(suv, sigma), modality="PT", units="SUVbw")
    lo, hi = ct.world_bounds()
    centre = (lo + hi) / 2
    truth = Transform(sitk.Euler3DTransform(tuple(map(float, centre)), *np.deg2rad(rotation_deg).tolist(),
                                            tuple(map(float, translation_mm))), "synthetic PET truth")
    corners = truth.fixed_to_moving(np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1])
                                              for c in (lo[2], hi[2])]))
    start, stop = corners.min(axis=0) - 2 * spacing_mm, corners.max(axis=0) + 2 * spacing_mm
    size = np.ceil((stop - start) / spacing_mm).astype(int) + 1
    grid = Volume(np.zeros(size[::-1], np.uint8), (spacing_mm,) * 3, tuple(start))
    pet = truth.inverse().resample(activity, grid)  # PET point p shows the activity at CT point truth^-1(p)
    rng = np.random.default_rng(seed)
    values = pet.array * (1 + rng.normal(0, noise, pet.array.shape)).astype(np.float32)
    pet = pet.with_array(np.clip(values, 0, None).astype(np.float32), description="synthetic PET (from CT labels)")
    return SyntheticPet(pet, truth, lesions)


def phantom_pet_truth(truth: dict) -> Transform:
    """The demo study's known PET offset (truth.json ``pet_to_ct``: PET point p -> CT point R p + t) as the
    fixed (CT) -> moving (PET) transform q -> R^T (q - t)."""
    a = np.deg2rad(truth["pet_to_ct"]["rotation_deg"][2])
    r = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ np.asarray(truth["pet_to_ct"]["translation_mm"])
    return Transform.from_matrix(m, "demo PET truth")
