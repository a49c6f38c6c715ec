"""Label-driven synthetic abdominal CT (SynthSeg-style): a real labelled CT deformed and re-rendered per seed.

From one real CT and its full label map (every structure: organs, vessels, bones, muscles, bowel, lungs; plus
fat, soft tissue, gas, outside air and the table found by thresholding the CT), each seed draws

- a geometry: random affine (scale 0.8-1.25, rotation, shift), a smooth elastic field and local zooms that
  grow or shrink liver, spleen, kidneys and stomach by up to ~30 %; no left-right flip;
- an appearance: a contrast phase (non-contrast, arterial, portal venous, delayed or random) and per-structure HU
  around that phase's priors; the body is rendered either from the labels alone (constant HU + smooth texture) or
  from the real CT's own texture shifted to those HU ("hybrid");
- an acquisition: voxel size (in-plane 1.8-3 mm, slices 1.5-5 mm), field of view (full, or a thin slab of
  30-60 mm), partial-volume blur, noise (5-30 HU), optional arms beside the body and a table below it.

The labels move with the image, so a case is exact by construction. Deterministic per seed.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ai.training.cases import Case
from ai.training.datasets import entry_path, label_lookup, seed_range, slice_range
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: tissue classes beyond the label map's own ids (unlabelled voxels classified by HU)
OUTSIDE, GAS, FAT, SOFT, BONE, TABLE = 250, 251, 252, 253, 254, 255
#: structure-name prefix -> tissue group (first match wins); unknown names are soft tissue
GROUPS = (
    ("liver", "liver"), ("spleen", "spleen"), ("kidney_cyst", "fluid"), ("kidney", "kidney"),
    ("aorta", "artery"), ("iliac_artery", "artery"), ("brachiocephalic_trunk", "artery"),
    ("subclavian", "artery"), ("common_carotid", "artery"), ("heart", "artery"), ("atrial", "artery"),
    ("pulmonary", "artery"), ("inferior_vena", "vein"), ("superior_vena", "vein"), ("portal_vein", "vein"),
    ("iliac_vena", "vein"), ("brachiocephalic_vein", "vein"), ("pancreas", "pancreas"),
    ("autochthon", "muscle"), ("iliopsoas", "muscle"), ("gluteus", "muscle"),
    ("stomach", "bowel"), ("duodenum", "bowel"), ("small_bowel", "bowel"), ("colon", "bowel"), ("esophagus", "bowel"),
    ("gallbladder", "fluid"), ("urinary_bladder", "fluid"), ("lung", "lung"), ("trachea", "gas"),
    ("costal_cartilages", "cartilage"), ("vertebrae", "bone"), ("rib", "bone"), ("sacrum", "bone"), ("hip", "bone"),
    ("femur", "bone"), ("humerus", "bone"), ("scapula", "bone"), ("clavicula", "bone"), ("sternum", "bone"),
    ("skull", "bone"),
)
#: contrast phase -> tissue group -> (low, high) mean HU; groups not listed use PHASE_FREE
PHASES = {
    "non_contrast": {"liver": (45, 70), "spleen": (38, 55), "kidney": (25, 40), "artery": (30, 50),
                     "vein": (30, 50), "pancreas": (30, 50), "muscle": (40, 60), "bowel": (15, 45)},
    "arterial": {"liver": (55, 90), "spleen": (80, 160), "kidney": (150, 260), "artery": (250, 400),
                 "vein": (50, 150), "pancreas": (90, 150), "muscle": (45, 65), "bowel": (40, 100)},
    "portal_venous": {"liver": (90, 140), "spleen": (95, 140), "kidney": (130, 220), "artery": (130, 220),
                      "vein": (130, 200), "pancreas": (80, 130), "muscle": (50, 70), "bowel": (40, 110)},
    "delayed": {"liver": (70, 100), "spleen": (70, 100), "kidney": (110, 220), "artery": (90, 140),
                "vein": (90, 140), "pancreas": (60, 100), "muscle": (45, 65), "bowel": (30, 80)},
}
PHASE_FREE = {"fluid": (-5, 25), "lung": (-900, -750), "gas": (-1000, -950), "cartilage": (80, 160),
              "bone": (250, 500), "soft": (20, 60), "fat": (-120, -80), "outside": (-1000, -1000),
              "table": (-300, 300)}
#: "random" phase: every contrast-dependent group drawn independently from this range
RANDOM_RANGE = (-10, 260)
#: structures grown or shrunk locally: name -> (smallest, largest) zoom
LOCAL_ZOOMS = {"liver": (0.82, 1.2), "spleen": (0.8, 1.45), "kidney_left": (0.85, 1.2), "kidney_right": (0.85, 1.2),
               "stomach": (0.8, 1.3)}


@dataclass
class Source:
    """A real labelled CT prepared for synthesis: HU (float32), its label ids, tissue classes and names."""

    ct: Volume
    labels: np.ndarray
    classes: np.ndarray
    names: dict[int, str]
    class_mean: np.ndarray  # mean real HU per tissue class (256,)


def group_of(name: str) -> str:
    """The tissue group of a structure name (GROUPS; soft tissue when unknown)."""
    return next((g for prefix, g in GROUPS if name.startswith(prefix)), "soft")


@functools.lru_cache(maxsize=4)
def load_source(image: Path, labels: Path, names: Path | None, slices: tuple[int, int] | None = None) -> Source:
    """Read and classify a real labelled CT, optionally only its ``slices`` [start, stop) (cached in memory: every
    seed of an entry reuses it)."""
    from viewer.core.io import load_volume
    from viewer.core.io.labelmap import label_table, load_labelmap

    ct = load_volume(image)
    lab = load_labelmap(labels, reference=ct)
    if slices:
        ct, lab = slice_range(ct, {"slices": list(slices)}, image), slice_range(lab, {"slices": list(slices)}, image)
    lab = lab.array.astype(np.uint8)
    table, _ = label_table(labels, names)
    hu = ct.array.astype(np.float32)
    dense = hu > -400
    body = ndimage.binary_opening(dense, iterations=2)
    parts, n = ndimage.label(body)
    if n:
        body = parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1
    body = np.stack([ndimage.binary_fill_holes(s) for s in body])
    classes = lab.copy()
    free = lab == 0
    classes[free & body & (hu < -400)] = GAS
    classes[free & body & (hu >= -400) & (hu < -30)] = FAT
    classes[free & body & (hu >= -30) & (hu < 150)] = SOFT
    classes[free & body & (hu >= 150)] = BONE
    classes[free & ~body] = OUTSIDE
    classes[free & ~body & dense] = TABLE
    bowel = np.isin(lab, [k for k, n in table.items() if group_of(n) == "bowel"])
    classes[bowel & (hu < -400)] = GAS
    counts = np.bincount(classes.ravel(), minlength=256)
    sums = np.bincount(classes.ravel(), weights=hu.ravel(), minlength=256)
    mean = (sums / np.maximum(counts, 1)).astype(np.float32)
    return Source(ct.with_array(hu), lab, classes, table, mean)


def class_groups(classes: np.ndarray, names: dict[int, str]) -> dict[int, str]:
    """Tissue group of every class present in ``classes`` (structure ids named by ``names``, or the extra classes)."""
    extra = {OUTSIDE: "outside", GAS: "gas", FAT: "fat", SOFT: "soft", BONE: "bone", TABLE: "table"}
    return {int(k): extra.get(int(k)) or group_of(names.get(int(k), "")) for k in np.unique(classes)}


def draw_hu(groups: dict[int, str], rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(phase, mean HU per class (256,)): a contrast phase and per-structure HU around its priors."""
    phase = str(rng.choice([*PHASES, "random"], p=[0.25, 0.15, 0.35, 0.1, 0.15]))
    priors = PHASES.get(phase, {})
    drawn = {g: rng.uniform(*priors.get(g, PHASE_FREE.get(g, RANDOM_RANGE))) for g in sorted(set(groups.values()))}
    lut = np.zeros(256, np.float32)
    for k, g in groups.items():  # each structure its own value near its group's: left and right kidney may differ
        jitter = 0.0 if g in ("outside", "gas") else rng.normal(0, 6)
        lut[k] = drawn[g] + jitter
    return phase, lut


def render_source(source: Source, lut: np.ndarray, hybrid: bool, rng: np.random.Generator) -> np.ndarray:
    """HU on the source grid: the real CT shifted per class to ``lut`` (``hybrid``), or rendered from its labels."""
    groups = class_groups(source.classes, source.names)
    if not hybrid:
        return render_labels(source.classes, groups, lut, rng)
    shift = np.zeros(256, np.float32)  # keep the real texture; shift contrast-dependent tissues only
    for k, g in groups.items():
        if g not in ("outside", "gas", "fat", "bone", "lung", "table", "soft"):
            shift[k] = lut[k] - source.class_mean[k]
    return source.ct.array + shift[source.classes]


def render_labels(classes: np.ndarray, groups: dict[int, str], lut: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """HU from a tissue class map: each class its ``lut`` value plus a smooth texture scaled per tissue group."""
    spread = np.full(256, 8.0, np.float32)
    for k, g in groups.items():
        spread[k] = {"bone": 120.0, "lung": 40.0, "gas": 10.0, "outside": 0.0, "table": 60.0}.get(g, 8.0)
    texture = ndimage.gaussian_filter(rng.standard_normal(classes.shape).astype(np.float32), 1.0)
    texture /= max(float(texture.std()), 1e-6)
    return lut[classes] + spread[classes] * texture


def rotation(angles_deg) -> np.ndarray:
    """Rotation matrix from angles (degrees) about x, y, z."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


@dataclass
class Geometry:
    """A random spatial change: output world p maps to source world c + inv(A) (p - c - shift), then warped."""

    matrix: np.ndarray
    shift: np.ndarray
    grid: Volume  # the output grid (placeholder array)
    elastic_mm: float
    arms: bool
    table: bool


def draw_geometry(source: Source, rng: np.random.Generator) -> Geometry:
    """Random affine, output voxel size and field of view (full or thin slab), arms and table flags."""
    matrix = rotation([rng.uniform(-5, 5), rng.uniform(-5, 5), rng.uniform(-12, 12)]) @ np.diag(
        rng.uniform(0.8, 1.25) * rng.uniform(0.93, 1.07, 3))
    shift = np.array([rng.uniform(-20, 20), rng.uniform(-20, 20), 0.0])
    lo, hi = source.ct.world_bounds()
    centre = (lo + hi) / 2
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])])
    moved = (corners - centre) @ matrix.T + centre + shift
    out_lo, out_hi = moved.min(axis=0), moved.max(axis=0)
    axis = np.array([[centre[0], centre[1], lo[2]], [centre[0], centre[1], hi[2]]])  # the source's central z axis
    out_lo[2], out_hi[2] = np.sort(((axis - centre) @ matrix.T + centre + shift)[:, 2])  # tilted corners: edge slices
    arms, table = bool(rng.random() < 0.35), bool(rng.random() < 0.3)
    if arms:
        out_lo[0] -= 110
        out_hi[0] += 110
    if table:
        out_hi[1] += 60  # +y is posterior (LPS): the table lies behind the patient
    if rng.random() < 0.4:  # a thin slab somewhere in the covered range
        thick = min(rng.uniform(30, 60), out_hi[2] - out_lo[2])
        start = rng.uniform(out_lo[2], out_hi[2] - thick)
        out_lo[2], out_hi[2] = start, start + thick
    return Geometry(matrix, shift, scan_grid(out_lo, out_hi, rng), float(rng.uniform(2, 7)), arms, table)


def scan_grid(lo: np.ndarray, hi: np.ndarray, rng: np.random.Generator) -> Volume:
    """An axial grid (identity direction, placeholder voxels) over world box ``lo``-``hi`` with a random voxel size:
    in-plane 1.8-3 mm, slices 1.5-5 mm."""
    spacing = np.array([*(rng.uniform(1.8, 3.0),) * 2, rng.choice([1.5, 2.0, 2.5, 3.0, 4.0, 5.0])])
    size = np.maximum(np.floor((hi - lo) / spacing).astype(int) + 1, 2)
    return Volume(np.broadcast_to(np.zeros((), np.uint8), tuple(size[::-1])), tuple(spacing), tuple(lo))


#: the warp is computed every (z, y, x) voxels of the output grid and interpolated linearly between (it is smooth)
WARP_STEP = (2, 4, 4)


def source_points(source: Source, geo: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Continuous source indices (3, z, y, x) in (z, y, x) order of every output voxel, warped."""
    grid = geo.grid
    shape = grid.array.shape
    coarse = tuple((n - 1) // f + 2 for n, f in zip(shape, WARP_STEP, strict=True))
    k, j, i = np.meshgrid(*(np.arange(n, dtype=np.float32) * f for n, f in zip(coarse, WARP_STEP, strict=True)),
                          indexing="ij")
    world = np.stack([grid.origin[a] + grid.spacing[a] * v for a, v in enumerate((i, j, k))], axis=-1)
    lo, hi = source.ct.world_bounds()
    centre = ((lo + hi) / 2).astype(np.float32)
    inv = np.linalg.inv(geo.matrix).astype(np.float32)
    world = (world - centre - geo.shift.astype(np.float32)) @ inv.T + centre
    world += smooth_field(coarse, np.asarray(grid.spacing) * WARP_STEP[::-1], geo.elastic_mm, rng)
    for name, zoom_range in LOCAL_ZOOMS.items():
        world = local_zoom(world, source, name, rng.uniform(*zoom_range))
    index = source.ct.world_to_index(world.reshape(-1, 3)).astype(np.float32)[:, ::-1]  # (n, 3) z, y, x
    return np.stack([upsample_linear(index[:, a].reshape(coarse), shape) for a in range(3)])


def upsample_linear(coarse: np.ndarray, shape) -> np.ndarray:
    """Values on the full grid ``shape`` from ``coarse`` samples every WARP_STEP voxels (separable linear)."""
    out = coarse
    for axis, (n, step) in enumerate(zip(shape, WARP_STEP, strict=True)):
        t = np.arange(n) / step
        i0 = np.floor(t).astype(int)
        weights = np.zeros((coarse.shape[axis], n), np.float32)
        weights[i0, np.arange(n)] = 1 - (t - i0)
        weights[i0 + 1, np.arange(n)] += t - i0
        out = np.moveaxis(np.tensordot(out, weights, axes=([axis], [0])), -1, axis)
    return out


def smooth_field(shape, spacing: np.ndarray, sd_mm: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement (z, y, x, 3) in mm: control points every ~50 mm, cubic interpolation."""
    extent = np.asarray(shape)[::-1] * spacing
    control = tuple(int(n) for n in np.maximum(np.ceil(extent / 50.0).astype(int) + 1, 2)[::-1])
    out = np.empty((*shape, 3), np.float32)
    for a in range(3):
        coarse = rng.normal(0, sd_mm, control).astype(np.float32)
        out[..., a] = ndimage.zoom(coarse, np.asarray(shape) / np.asarray(control), order=3, mode="nearest")
    return out


def local_zoom(world: np.ndarray, source: Source, name: str, factor: float) -> np.ndarray:
    """Source points ``world`` (..., 3) pulled toward (factor > 1: the structure grows) or pushed from the centre
    of structure ``name`` within a Gaussian neighbourhood of its size; unchanged if the source lacks it."""
    ids = [k for k, n in source.names.items() if n == name]
    voxels = np.argwhere(source.labels == ids[0]) if ids else np.empty((0, 3))
    if len(voxels) < 10:
        return world
    points = source.ct.index_to_world(voxels[:, ::-1].astype(float))
    centre = points.mean(axis=0).astype(np.float32)
    radius = float(np.sqrt(((points - centre) ** 2).sum(axis=1).mean())) * 1.3
    offset = world - centre
    weight = np.exp(-(offset ** 2).sum(axis=-1, keepdims=True) / (2 * radius ** 2))
    return world - (1 - 1 / factor) * weight * offset


def add_arms_and_table(hu: np.ndarray, body: np.ndarray, grid: Volume, geo: Geometry,
                       rng: np.random.Generator) -> None:
    """Draw arms beside the ``body`` mask (muscle, fat rim, humerus) and a curved table behind it into ``hu``."""
    if not body.any():
        return
    _, ys, xs = np.nonzero(body)
    x_lo, x_hi = grid.origin[0] + xs.min() * grid.spacing[0], grid.origin[0] + xs.max() * grid.spacing[0]
    y_lo, y_hi = grid.origin[1] + ys.min() * grid.spacing[1], grid.origin[1] + ys.max() * grid.spacing[1]
    shape = hu.shape[1:]
    y, x = np.meshgrid(*(grid.origin[a] + grid.spacing[a] * np.arange(shape[1 - a]) for a in (1, 0)),
                       indexing="ij")
    if geo.arms:
        r = rng.uniform(35, 50)
        for side, edge in ((-1, x_lo), (1, x_hi)):
            cx, cy = edge + side * (r + rng.uniform(5, 30)), (y_lo + y_hi) / 2 + rng.uniform(-20, 30)
            d = np.hypot((x - cx) / r, (y - cy) / (r * 1.15))
            hu[:, d <= 1] = rng.uniform(-110, -80)
            hu[:, d <= 0.85] = rng.uniform(40, 65)
            hu[:, np.hypot(x - cx, y - cy) <= rng.uniform(9, 14)] = rng.uniform(400, 1000)
    if geo.table:
        y0 = y_hi + rng.uniform(5, 30)
        curve = y0 - 0.0015 * (x - (x_lo + x_hi) / 2) ** 2
        for offset in (0.0, rng.uniform(15, 35)):
            band = np.abs(y - curve - offset) <= rng.uniform(1.5, 3.5)
            hu[:, band] = np.maximum(hu[:, band], rng.uniform(100, 500))


def acquire(hu: np.ndarray, grid: Volume, rng: np.random.Generator) -> np.ndarray:
    """Scanner resolution (Gaussian blur, FWHM 1-2 mm in-plane, the slice profile along z) and noise, as int16."""
    fwhm = np.array([rng.uniform(1.0, 2.0)] * 2 + [grid.spacing[2]])  # x, y, z mm
    hu = ndimage.gaussian_filter(hu, (fwhm / 2.3548 / np.asarray(grid.spacing))[::-1])
    noise = ndimage.gaussian_filter(rng.standard_normal(hu.shape).astype(np.float32), 0.6)
    hu += noise * (rng.uniform(5, 30) / max(float(noise.std()), 1e-6))
    return np.clip(np.rint(hu), -1024, 3071).astype(np.int16)


def synthesize(source: Source, labels: dict[int, str], seed: int) -> tuple[Volume, Volume, str]:
    """(CT, labels with the config's ids, description) for ``seed``."""
    rng = np.random.default_rng([seed, 4711])
    geo = draw_geometry(source, rng)
    phase, lut = draw_hu(class_groups(source.classes, source.names), rng)
    hybrid = bool(rng.random() < 0.5)
    rendered = render_source(source, lut, hybrid, rng)
    points = source_points(source, geo, rng)
    # beyond the source's edges (tilted corners) its edge voxels continue
    hu = ndimage.map_coordinates(rendered, points, order=1, mode="nearest", prefilter=False)
    target = label_lookup(source.names, labels)[source.labels]
    lab = ndimage.map_coordinates(target, points, order=0, mode="nearest", prefilter=False)
    body = np.isin(source.classes, [OUTSIDE, TABLE], invert=True).view(np.uint8)
    body = ndimage.map_coordinates(body, points, order=0, mode="nearest", prefilter=False).astype(bool)
    del points
    add_arms_and_table(hu, body, geo.grid, geo, rng)
    ct = geo.grid.with_array(acquire(hu, geo.grid, rng), modality="CT", units="HU",
                             description=f"synthetic CT seed {seed}")
    extras = "".join(f", {what}" for what, present in (("arms", geo.arms), ("table", geo.table)) if present)
    how = (f"{phase}, {'real texture' if hybrid else 'rendered from labels'}, "
           f"{ct.spacing[0]:.1f}x{ct.spacing[1]:.1f}x{ct.spacing[2]:.1f} mm, {ct.size[2]} slices{extras}")
    return ct, ct.with_array(lab.astype(np.uint8), modality="SEG", units="label"), how


def synth_cases(entry: dict, labels: dict[int, str], base: Path) -> list[Case]:
    """Kind ``real_ct_synth``: ``seeds: [start, stop]`` synthetic CTs from the real CT ``image``, its label map
    ``labels``, their names ``names`` (optional: else the table beside the labels) and optionally only the
    ``slices: [start, stop]`` of the real CT (the rest held out)."""
    image, label_file = entry_path(entry, "image", base), entry_path(entry, "labels", base)
    names = entry_path(entry, "names", base) if "names" in entry else None
    slices = entry.get("slices")
    source = load_source(image, label_file, names, tuple(slices) if isinstance(slices, list | tuple) else slices)
    seeds = seed_range(entry, base)
    where = f" slices {slices[0]}-{slices[1] - 1}" if slices else ""
    source_text = (f"real_ct_synth seeds {seeds.start}-{seeds.stop - 1}: {image.name}{where} with its labels, deformed "
                   "and re-rendered (contrast phases, voxel sizes, fields of view, noise)")
    cases = []
    for seed in seeds:
        ct, lab, how = synthesize(source, labels, seed)
        cases.append(Case(f"real_ct_synth seed {seed}", [ct], lab, source=source_text))
        log.info("real_ct_synth seed %d: %s", seed, how)
    return cases
