"""Rendering benchmark: MPR slice-change latency with a label overlay and a fused PET, and volume-rendering frame rate.

Scene: a synthetic 512 x 512 x 300 int16 CT (body, lungs, liver, spleen, kidneys, aorta, spine, noise)
with a uint8 label map, in 512 x 512 offscreen windows; SliceView also shows a fused float32 SUV PET
(4 mm grid made from the labels, hot lesions) through a rigid fixed->moving transform (2 degrees about
z, 3-6 mm shift), so every slice change reslices the PET too. Peers measured in the same run:
- slices: VTK's own vtkImageResliceMapper reslicing the full 3D image (and labels through an indexed
  lookup table) on every slice change, the usual VTK way to show MPR, with the slice filling the window as
  SliceView shows it (VTK's ResetCamera fits the 3D bounding sphere, a third of the pixels: not the same work),
  with VTK's default head light; and the same peer unlit as SliceView renders (viewer.render.render_window.
  render_unlit: same pixels, no per-fragment lighting), so the ratio is also reported against the stronger peer;
- 3D: the same VolumeView at full quality (the interactive speed-up), and VolumeView forced onto
  vtkGPUVolumeRayCastMapper, what vtkSmartVolumeMapper picks by default whenever OpenGL works (on
  llvmpipe VolumeView's 'auto' picks the CPU vtkFixedPointVolumeRayCastMapper instead).
Sagittal label update: a 10 mm brush dab through the Session on a Segmentation shown in a sagittal
SliceView, then the GUI's update_labels and one frame (ms), and the CPU time until the view's x-major
label copy is current again (process_time over all threads, so other engineers' load does not count).
SliceView is measured in its steady state: the x-major copies that a sagittal view reads its slices
from (viewer/render/slice_cache.py) are built first, as the GUI does in the background after loading.
Prints one JSON object. Run: `.venv/bin/python benchmarks/bench_render.py [--only NAME]` (EGL without
DISPLAY, or under xvfb-run); NAME one of slice_change, sagittal_label_update, volume_rendering.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from viewer.core.volume import Volume  # noqa: E402
from viewer.render import offscreen  # noqa: E402,F401  (selects EGL when there is no X display)
from viewer.render.colormaps import label_color  # noqa: E402
from viewer.render.render_window import render_unlit  # noqa: E402
from viewer.render.slice_view import SliceView  # noqa: E402
from viewer.render.volume_view import VolumeView  # noqa: E402

SHAPE = (300, 512, 512)  # z, y, x
SPACING = (0.8, 0.8, 1.5)  # x, y, z mm
WINDOW = 512
SLICE_STEPS = 60
N_DABS = 10
DAB_RADIUS_MM = 10.0
VR_STEPS = 24
LABELS = {"spleen": 1, "kidney_right": 2, "kidney_left": 3, "liver": 5, "aorta": 52, "vertebrae": 30}
#: PET: every 5th CT voxel in x and y, every 3rd in z (4 x 4 x 4.5 mm); SUV per label id (0: soft tissue).
PET_STEP = (3, 5, 5)
SUV_BY_LABEL = {0: 0.9, 1: 1.8, 2: 3.0, 3: 3.0, 5: 2.0, 52: 1.6, 30: 1.3}
PET_ROTATION_DEG = 2.0
PET_SHIFT_MM = (3.0, -4.0, 6.0)

log = logging.getLogger("bench_render")


def synthetic_ct() -> tuple[Volume, Volume]:
    """A CT-like torso in HU and its label map (identity direction: +x = patient left, +y = posterior)."""
    nz, ny, nx = SHAPE
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 12, (ny, nx)).astype(np.int16)
    yy, xx = np.mgrid[:ny, :nx].astype(np.float32)
    cx, cy = nx / 2, ny / 2
    ct = np.empty(SHAPE, np.int16)
    lab = np.zeros(SHAPE, np.uint8)

    def ellipse(x0, y0, ax, ay):
        return ((xx - x0) / ax) ** 2 + ((yy - y0) / ay) ** 2 <= 1

    for z in range(nz):
        t = z / nz  # 0 = inferior, 1 = superior
        sl = np.full((ny, nx), -1000, np.int16)
        lb = np.zeros((ny, nx), np.uint8)
        body_a, body_b = 220 + 15 * np.sin(4 * t), 150 + 10 * np.cos(3 * t)
        sl[ellipse(cx, cy, body_a, body_b)] = -100  # fat
        sl[ellipse(cx, cy, body_a - 15, body_b - 15)] = 40  # muscle / soft tissue
        if t > 0.6:  # lungs in the upper part
            for side in (-1, 1):
                sl[ellipse(cx + side * 95, cy - 5, 70, 95)] = -850
        if 0.3 < t < 0.7:  # liver on the patient's right (low x), spleen on the left
            m = ellipse(cx - 95, cy - 20, 85 - 120 * abs(t - 0.5), 75)
            sl[m], lb[m] = 60, LABELS["liver"]
            m = ellipse(cx + 110, cy + 30, 35, 45)
            sl[m], lb[m] = 50, LABELS["spleen"]
        if 0.2 < t < 0.45:  # kidneys
            for side, name in ((-1, "kidney_right"), (1, "kidney_left")):
                m = ellipse(cx + side * 75, cy + 60, 28, 40)
                sl[m], lb[m] = 150, LABELS[name]
        m = ellipse(cx + 15, cy + 40, 12, 12)  # aorta
        sl[m], lb[m] = 200, LABELS["aorta"]
        m = ellipse(cx, cy + 100, 28, 30)  # vertebral body; discs every 20 slices
        if z % 20 > 2:
            sl[m], lb[m] = 700, LABELS["vertebrae"]
        ct[z] = sl + np.roll(noise, 7 * z, axis=1)
        lab[z] = lb
    vol = Volume(ct, spacing=SPACING, modality="CT", units="HU")
    return vol, vol.with_array(lab, modality="SEG", units="label")


def synthetic_pet(ct: Volume, labels: Volume) -> tuple[Volume, np.ndarray]:
    """A float32 SUVbw PET on a coarse grid made from the labels (three hot lesions), and the fixed (CT) ->
    moving (PET) 4x4 matrix of a small rigid misregistration."""
    sz, sy, sx = PET_STEP
    lab = labels.array[::sz, ::sy, ::sx]
    table = np.zeros(256, np.float32)
    for label, suv in SUV_BY_LABEL.items():
        table[label] = suv
    suv = table[lab]
    suv[ct.array[::sz, ::sy, ::sx] < -500] = 0.0  # air and lungs
    nz, ny, nx = suv.shape
    for z, y, x in ((nz // 2, ny // 2 - 10, nx // 2 - 20), (nz // 3, ny // 2 + 12, nx // 2 + 15),
                    (2 * nz // 3, ny // 2, nx // 2 + 25)):
        suv[z - 2:z + 3, y - 2:y + 3, x - 2:x + 3] = 9.0
    spacing = tuple(s * k for s, k in zip(ct.spacing, PET_STEP[::-1], strict=True))
    pet = Volume(suv, spacing=spacing, origin=ct.origin, modality="PT", units="SUVbw")
    a = np.deg2rad(PET_ROTATION_DEG)
    matrix = np.eye(4)
    matrix[:2, :2] = [[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]
    matrix[:3, 3] = PET_SHIFT_MM
    return pet, matrix


def _window():
    from vtkmodules.vtkRenderingCore import vtkRenderer, vtkRenderWindow

    win = vtkRenderWindow()
    win.SetOffScreenRendering(1)
    win.SetSize(WINDOW, WINDOW)
    ren = vtkRenderer()
    win.AddRenderer(ren)
    return win, ren


def _frame(win) -> float:
    """Render one frame and wait for the GPU (llvmpipe) to finish; returns milliseconds."""
    t0 = time.perf_counter()
    win.Render()
    win.WaitForCompletion()
    return (time.perf_counter() - t0) * 1e3


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"median_ms": round(float(np.median(a)), 2), "p95_ms": round(float(np.percentile(a, 95)), 2),
            "n": len(ms)}


def _slice_sequence(n: int) -> list[int]:
    """Scroll ``SLICE_STEPS`` slices forward from the middle then jump back and forth (wheel + jumps)."""
    mid = n // 2
    seq = [mid - SLICE_STEPS // 2 + i for i in range(SLICE_STEPS)]
    return seq + [int(k) for k in np.linspace(0, n - 1, 10)]


def slice_view_scene(ct: Volume, labels: Volume, orientation: str):
    """SliceView with the label overlay (outlined) and the fused PET; returns (window, show(k), number of slices)."""
    win, ren = _window()
    sv = SliceView(ren, orientation)
    sv.set_volume(ct)
    sv.set_labels(labels)
    sv.set_fusion(*synthetic_pet(ct, labels))
    sv.wait_for_slice_caches()  # the GUI builds them in the background once the voxels stop changing
    _frame(win)
    sv.reset_camera()
    return win, sv.set_slice_index, sv.n_slices


def reslice_mapper_scene(ct: Volume, labels: Volume, orientation: str, lit: bool = True):
    """Peer: vtkImageResliceMapper on the full 3D image and labels, the slice moved with the focal point; with
    VTK's automatic head light, or unlit (``lit`` False) as SliceView renders."""
    from vtkmodules.vtkCommonCore import vtkLookupTable
    from vtkmodules.vtkRenderingCore import vtkImageSlice
    from vtkmodules.vtkRenderingImage import vtkImageResliceMapper

    from viewer.render.vtk_image import vtk_image

    win, ren = _window()
    win.SetMultiSamples(0)  # same window settings as SliceView
    if not lit:
        render_unlit(ren)
    normal = {"axial": 2, "coronal": 1, "sagittal": 0}[orientation]
    lut = vtkLookupTable()
    lut.SetNumberOfTableValues(256)
    lut.SetTableRange(0, 255)
    for v in range(256):
        r, g, b = label_color(v)
        lut.SetTableValue(v, r / 255, g / 255, b / 255, 0.4 if v else 0.0)
    lut.Build()
    slices = []
    for vol, is_label in ((ct, False), (labels, True)):
        mapper = vtkImageResliceMapper()
        mapper.SetInputData(vtk_image(vol))
        mapper.SliceFacesCameraOn()
        mapper.SliceAtFocalPointOn()
        actor = vtkImageSlice()
        actor.SetMapper(mapper)
        prop = actor.GetProperty()
        prop.SetInterpolationTypeToNearest()
        if is_label:
            prop.SetLookupTable(lut)
            prop.SetUseLookupTableScalarRange(True)
        else:
            prop.SetColorWindow(400)
            prop.SetColorLevel(40)
        ren.AddViewProp(actor)
        slices.append(actor)
    cam = ren.GetActiveCamera()
    cam.ParallelProjectionOn()
    lo, hi = ct.world_bounds()
    centre = (lo + hi) / 2
    view_dir = np.zeros(3)
    view_dir[normal] = 1.0
    cam.SetFocalPoint(*centre)
    cam.SetPosition(*(centre - 1000 * view_dir))
    cam.SetViewUp(*((0, -1, 0) if orientation == "axial" else (0, 0, 1)))
    ren.ResetCamera()
    extent = np.asarray(ct.size) * np.asarray(ct.spacing)  # mm along x, y, z
    right, up = {"axial": (0, 1), "coronal": (0, 2), "sagittal": (1, 2)}[orientation]
    cam.SetParallelScale(max(extent[right], extent[up]) / 2 * 1.02)  # the slice fills the window, as in SliceView

    def show(k: int) -> None:
        pos = ct.index_to_world(np.where(np.arange(3) == normal, k, 0))[normal]
        fp = np.array(cam.GetFocalPoint())
        delta = pos - fp[normal]
        fp[normal] += delta
        p = np.array(cam.GetPosition())
        p[normal] += delta
        cam.SetFocalPoint(*fp)
        cam.SetPosition(*p)
        ren.ResetCameraClippingRange()

    return win, show, ct.size[normal]


def bench_slice_change(ct: Volume, labels: Volume, orientation: str) -> dict:
    """Slice change + render, SliceView (labels + fused PET) and the peers (image + labels; lit and unlit)
    alternating frame by frame (same machine load)."""
    scenes = {"slice_view": slice_view_scene(ct, labels, orientation),
              "peer_reslice_mapper": reslice_mapper_scene(ct, labels, orientation),
              "peer_reslice_mapper_unlit": reslice_mapper_scene(ct, labels, orientation, lit=False)}
    times: dict[str, list[float]] = {name: [] for name in scenes}
    cpu: dict[str, list[float]] = {name: [] for name in scenes}
    for win, _, _ in scenes.values():
        for _ in range(3):
            _frame(win)
    for k in _slice_sequence(scenes["slice_view"][2]):
        for name, (win, show, _) in scenes.items():
            t0, c0 = time.perf_counter(), time.process_time()
            show(k)
            _frame(win)
            times[name].append((time.perf_counter() - t0) * 1e3)
            cpu[name].append((time.process_time() - c0) * 1e3)
    for win, _, _ in scenes.values():
        win.Finalize()
    out = {name: {**_stats(t), "cpu_median_ms": round(float(np.median(cpu[name])), 2)} for name, t in times.items()}
    out["p95_ratio_peer_over_ours"] = round(out["peer_reslice_mapper"]["p95_ms"] / out["slice_view"]["p95_ms"], 2)
    out["p95_ratio_unlit_peer_over_ours"] = round(out["peer_reslice_mapper_unlit"]["p95_ms"] /
                                                  out["slice_view"]["p95_ms"], 2)
    # CPU time of all threads (llvmpipe's included) per slice change: what other processes' load inflates least
    out["cpu_ratio_peer_over_ours"] = round(out["peer_reslice_mapper"]["cpu_median_ms"] /
                                            out["slice_view"]["cpu_median_ms"], 2)
    out["goal_p95_le_16ms"] = out["slice_view"]["p95_ms"] <= 16.0
    return out


def bench_sagittal_label_update(ct: Volume, labels: Volume) -> dict:
    """Dabs on the sagittal slice shown: dab + update_labels + frame (ms), CPU seconds until the copy is current."""
    from viewer.core.session import Session

    with tempfile.TemporaryDirectory() as home:
        session = Session(home=home)
        seg = session.new_segmentation(ct, "bench", labels=labels.array.copy())
        win, ren = _window()
        view = SliceView(ren, "sagittal")
        view.set_volume(ct)
        view.set_labels(seg.as_volume())
        view.wait_for_slice_caches()
        _frame(win)
        update_ms, copy_cpu_s = [], []
        for i in range(N_DABS):
            centre = ct.index_to_world((view.slice_index, 150 + 20 * i, 150))
            t0, c0 = time.perf_counter(), time.process_time()
            session.paint(seg, 7, centre, DAB_RADIUS_MM)
            view.update_labels()
            _frame(win)
            update_ms.append((time.perf_counter() - t0) * 1e3)
            view.wait_for_slice_caches()
            copy_cpu_s.append(time.process_time() - c0)
        win.Finalize()
        session.close()
    return {"dab_update_frame": _stats(update_ms),
            "cpu_s_until_copy_current_median": round(float(np.median(copy_cpu_s)), 4)}


def bench_volume_rendering(ct: Volume, labels: Volume) -> dict:
    """VolumeView (auto mapper) against the GPU ray-cast peer (``labels`` unused: not drawn in 3D here)."""
    vr = bench_volume_view(ct)
    gpu = bench_volume_view(ct, "gpu", steps=3)
    return {
        "volume_view": vr,
        "peer_gpu_ray_cast": gpu,
        "interactive_fps_over_full": round(vr["interactive"]["fps"] / vr["full"]["fps"], 2),
        "interactive_fps_over_peer_interactive": round(vr["interactive"]["fps"] / gpu["interactive"]["fps"], 2),
        "full_fps_over_peer_full": round(vr["full"]["fps"] / gpu["full"]["fps"], 2),
        "goal_interactive_ge_5fps": vr["interactive"]["fps"] >= 5.0,
    }


def bench_slice_changes(ct: Volume, labels: Volume) -> dict:
    """Slice change latency in the three orientations."""
    return {orientation: bench_slice_change(ct, labels, orientation) for orientation in ("axial", "coronal",
                                                                                          "sagittal")}


#: name -> benchmark(ct, labels), in the order they run
BENCHES = {"slice_change": bench_slice_changes, "sagittal_label_update": bench_sagittal_label_update,
           "volume_rendering": bench_volume_rendering}


def bench_volume_view(ct: Volume, mapper: str = "auto", steps: int = VR_STEPS) -> dict:
    """VolumeView: first frame (upload), azimuth steps at interactive and at full quality."""
    win, ren = _window()
    vv = VolumeView(ren, mapper)
    t0 = time.perf_counter()
    vv.set_volume(ct)
    vv.set_preset("ct_bone")
    _frame(win)
    first = (time.perf_counter() - t0) * 1e3
    out = {"first_frame_ms": round(first, 1), "mapper": vv.mapper_name()}
    cam = ren.GetActiveCamera()
    for quality, interacting, n in (("interactive", True, steps), ("full", False, max(3, steps // 3))):
        vv.set_interactive(interacting)
        _frame(win)
        times = []
        for _ in range(n):
            cam.Azimuth(5)
            times.append(_frame(win))
        s = _stats(times)
        s["fps"] = round(1e3 / s["median_ms"], 2)
        out[quality] = s
    win.Finalize()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=tuple(BENCHES), help="run this benchmark alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    ct, labels = synthetic_ct()
    result: dict = {
        "scene": f"synthetic CT {SHAPE[2]}x{SHAPE[1]}x{SHAPE[0]} int16 + uint8 labels (+ fused 4 mm SUV PET in "
                 f"SliceView), {WINDOW}x{WINDOW} offscreen",
        "make_volume_s": round(time.perf_counter() - t0, 2),
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),  # other processes share the 2 cores
        "slice_peer": "vtkImageResliceMapper on the full 3D image + labels (indexed LUT), slice at focal point",
        "volume_peer": "VolumeView full quality; VolumeView forced to vtkGPUVolumeRayCastMapper (smart mapper default)",
    }
    for name, bench in BENCHES.items():
        if args.only in (None, name):
            result[name] = bench(ct, labels)
    result["total_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(result, indent=1))
    return 0

if __name__ == "__main__":
    sys.exit(main())
