"""Load one DICOM series into a Volume: headers parsed once, slices decoded in parallel into one array."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime

import numpy as np
import pydicom

from viewer.core.errors import CorruptFileError, GeometryError, RadviewError
from viewer.core.io.decoder_process import WORKERS
from viewer.core.io.dicom_decode import decode_frames
from viewer.core.io.dicom_geometry import SeriesGeometry, SliceRef, _frame_item, series_geometry
from viewer.core.io.dicom_headers import number, synthetic_statement, text, uint
from viewer.core.io.dicom_native_pixels import native_frame, read_frame_into
from viewer.core.io.dicom_validation import COLOUR, check_volume_object, photometric
from viewer.core.io.series_info import SeriesInfo
from viewer.core.io.suv import acquisition_datetime, pet_units, series_suv_factors
from viewer.core.progress import CancelToken, ProgressCallback, no_progress
from viewer.core.volume import Volume

log = logging.getLogger(__name__)

#: Tasks per decoding thread: enough to balance the threads, few enough that handing them out costs little.
_TASKS_PER_WORKER = 8


def _rescale(ref: SliceRef, modality: str) -> tuple[float, float]:
    """(slope, intercept) from stored values to the volume's units (RT Dose: DoseGridScaling to Gy).

    Enhanced (multi-frame) objects keep them per frame in PixelValueTransformationSequence.
    """
    ds = ref.header.dataset
    if modality == "RTDOSE":
        return number(ds, "DoseGridScaling", 1.0) or 1.0, 0.0
    source = (_frame_item(ds, ref.frame, "PixelValueTransformationSequence") if ref.header.n_frames > 1 else None) or ds
    return number(source, "RescaleSlope", 1.0) or 1.0, number(source, "RescaleIntercept", 0.0)


def _acquired(ref: SliceRef) -> datetime | None:
    """When slice ``ref`` was acquired (suv.acquisition_datetime): an enhanced object's frame by its Frame Content
    item, falling back to the object's own time."""
    item = _frame_item(ref.header.dataset, ref.frame, "FrameContentSequence") if ref.header.n_frames > 1 else None
    return (acquisition_datetime(item) if item is not None else None) or acquisition_datetime(ref.header.dataset)


def _stored_range(ds: pydicom.Dataset) -> tuple[int, int]:
    bits = uint(ds, "BitsStored", uint(ds, "BitsAllocated", 16))
    if uint(ds, "PixelRepresentation", 0) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _output_dtype(
    geometry: SeriesGeometry, rescales: list[tuple[float, float]], modality: str, suv: list[float] | None
) -> np.dtype:
    """int16 (or the stored type) when the rescaled values are exact in it, else float32."""
    if modality == "PT" or suv is not None:
        return np.dtype(np.float32)
    if any(slope != 1 or intercept != int(intercept) for slope, intercept in set(rescales)):
        return np.dtype(np.float32)
    ranges = [_stored_range(s.header.dataset) for s in geometry.slices]
    lo = min(r[0] + i for r, (_, i) in zip(ranges, rescales, strict=True))
    hi = max(r[1] + i for r, (_, i) in zip(ranges, rescales, strict=True))
    for dtype in (np.uint8, np.int16, np.uint16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float32)


def _colour_dtype(ds: pydicom.Dataset) -> np.dtype:
    """The RGB sample type: the palette's entry size for PALETTE COLOR, else the stored unsigned type."""
    if photometric(ds) == "PALETTE COLOR":
        descriptor = ds.get("RedPaletteColorLookupTableDescriptor") or [0, 0, 8]
        return np.dtype(np.uint16 if int(descriptor[2]) > 8 else np.uint8)
    return np.dtype(f"<u{max(1, uint(ds, 'BitsAllocated', 8) // 8)}")


def _is_colour(series: SeriesInfo) -> bool:
    """True for a colour series (RGB, YBR, PALETTE COLOR); GeometryError when grey and colour are mixed."""
    kinds = {photometric(h.dataset) in COLOUR for h in series.headers}
    if len(kinds) > 1:
        raise GeometryError("greyscale and colour images in one series", series.headers[0].path)
    return kinds.pop()


class SeriesLoader:
    """A series whose geometry is known (from headers) and whose voxels are filled by :meth:`load`.

    ``volume`` exists right after construction, holding zeros on the final grid, so a viewer can
    show it and redraw slices as ``on_slices`` reports them.
    """

    def __init__(self, series: SeriesInfo):
        self.series = series
        try:
            self._build(series)
        except RadviewError:
            raise
        except Exception as err:  # a damaged element pydicom cannot convert: typed, never a raw exception
            log.warning("series %s: unexpected error reading its headers", series.series_uid, exc_info=True)
            raise CorruptFileError(f"header cannot be read ({type(err).__name__}: {err})", series.files[0]) from err

    def _build(self, series: SeriesInfo) -> None:
        """Geometry, units and the zero-filled volume from the headers (see the class docstring)."""
        check_volume_object(series.headers[0])
        self.geometry = series_geometry(series.headers)
        ds0 = self.geometry.slices[0].header.dataset
        modality = series.modality
        warnings = list(self.geometry.warnings)
        self._suv = None
        self._rgb = _is_colour(series)
        kind = "colour" if self._rgb else modality  # colour samples have no physical unit and no rescale
        units = "arbitrary"
        if kind == "CT":
            units = "HU"
        elif kind == "RTDOSE" and text(ds0, "DoseUnits").upper() == "GY":
            units = "Gy"
        elif kind == "PT":  # self._suv: per slice, the factor of its rescaled values to SUVbw
            self._suv, note = series_suv_factors(ds0, [_acquired(s) for s in self.geometry.slices])
            units = "SUVbw" if self._suv is not None else pet_units(ds0)
            if self._suv is None:
                warnings.append(f"values in {units}, SUV not computed: {note}")
            elif note:
                warnings.append(f"SUVbw: {note}")
        g = self.geometry
        if self._rgb:
            self._rescales = [(1.0, 0.0)] * len(g.slices)
            dtype, shape = _colour_dtype(ds0), (g.depth, g.rows, g.columns, 3)
        else:
            self._rescales = [_rescale(s, modality) for s in g.slices]
            dtype = _output_dtype(g, self._rescales, modality, self._suv)
            shape = (g.depth, g.rows, g.columns)
        self.volume = Volume(
            array=np.zeros(shape, dtype=dtype),
            spacing=g.spacing,
            origin=g.origin,
            direction=g.direction,
            modality=modality,
            units=units,
            description=series.description,
            meta=self._meta(series, ds0),
            warnings=warnings,
            synthetic=synthetic_statement(ds0),
        )
        self.volume.meta["spacing_source"] = g.spacing_source
        self.volume.meta["missing_slices"] = g.missing  # z indices of grid slices no image fills (blank)

    @staticmethod
    def _meta(series: SeriesInfo, ds: pydicom.Dataset) -> dict:
        return {
            "patient_name": series.patient_name,
            "patient_id": series.patient_id,
            "study_uid": series.study_uid,
            "study_description": series.study_description,
            "study_date": series.study_date,
            "series_uid": series.series_uid,
            "series_description": series.description,
            "series_number": series.series_number,
            "body_part": text(ds, "BodyPartExamined"),
            "frame_of_reference_uid": text(ds, "FrameOfReferenceUID"),
            "files": [str(f) for f in series.files],
            "format": "dicom",
            "photometric": photometric(ds),
        }

    def _fill(self, k: int, ref: SliceRef, stored: np.ndarray) -> None:
        slope, intercept = self._rescales[k]
        out = self.volume.array[self.geometry.grid_index[k]]
        if self._suv is not None:
            np.multiply(stored, slope * self._suv[k], out=out, casting="unsafe")
            out += np.float32(intercept * self._suv[k])
        elif slope == 1 and intercept == 0:
            out[...] = stored
        elif out.dtype.kind in "iu":
            np.add(stored, int(intercept), out=out, casting="unsafe", dtype=out.dtype)
        else:
            np.multiply(stored, slope, out=out, casting="unsafe")
            out += np.float32(intercept)

    def _load_task(self, ks: list[int]) -> list[int]:
        """Decode the slices ``ks`` (grouped by file, see :meth:`_tasks`) into the volume."""
        g = self.geometry
        frames, decoded_file = None, None
        for k in ks:
            ref = g.slices[k]
            if not self._rgb and self._read_native(k, ref):
                continue
            if decoded_file is not ref.header:  # a compressed (or colour) file is decoded once for all its frames
                frames, decoded_file = decode_frames(ref.header, rgb=self._rgb), ref.header
                if frames.shape[1:] != self.volume.array.shape[1:] or ref.frame >= len(frames):
                    raise CorruptFileError(
                        f"decoded frames {frames.shape[1:]} x {len(frames)} differ from the header's "
                        f"{self.volume.array.shape[1:]} x {ref.header.n_frames}", ref.header.path
                    )
            self._fill(k, ref, frames[ref.frame])
        return ks

    def _read_native(self, k: int, ref: SliceRef) -> bool:
        """Read slice ``k`` from its file offset into the volume if its pixel data is native (else False).

        Integer values the size of the volume's type land in the volume with no copy, the intercept is
        then added in place: the same wrap-around cast and integer sum as :meth:`_fill`, one pass less.
        Others (float volumes, other sizes) are rescaled from a slice buffer by :meth:`_fill`.
        """
        g = self.geometry
        frame = native_frame(ref.header, ref.frame, g.rows, g.columns)
        if frame is None:
            return False
        out = self.volume.array[g.grid_index[k]]
        slope, intercept = self._rescales[k]
        if out.dtype.kind in "iu" and out.dtype.itemsize == frame.dtype.itemsize and slope == 1 and \
                self._suv is None:
            read_frame_into(frame, out.view(frame.dtype))
            if intercept != 0:
                np.add(out, int(intercept), out=out, casting="unsafe", dtype=out.dtype)
        else:
            stored = np.empty(out.shape, frame.dtype)
            read_frame_into(frame, stored)
            self._fill(k, ref, stored)
        return True

    def _tasks(self, workers: int) -> list[list[int]]:
        """Slice indices grouped by file, the middle slice's file first and alone (it lands first), then
        the others nearest the middle first, in batches of whole files (a few per worker: each task
        handed to a thread and reported back costs about as much as reading a slice)."""
        by_file: dict[int, list[int]] = {}
        for k, ref in enumerate(self.geometry.slices):
            by_file.setdefault(id(ref.header), []).append(k)
        middle = len(self.geometry.slices) // 2
        files = sorted(by_file.values(), key=lambda ks: min(abs(k - middle) for k in ks))
        batch = max(1, len(self.geometry.slices) // (workers * _TASKS_PER_WORKER))
        tasks = files[:1]
        for ks in files[1:]:
            if len(tasks) == 1 or len(tasks[-1]) >= batch:
                tasks.append([])
            tasks[-1].extend(ks)
        return tasks

    def load(
        self,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        on_slices: Callable[[list[int]], None] | None = None,
    ) -> Volume:
        """Decode every slice (middle first) in parallel into ``volume.array``; returns the volume.

        ``on_slices(z_indices)`` is called from this thread as slices land, the middle slice's
        call always first (slices decoded before it are reported right after it). Cancellation
        raises Cancelled (the partially filled volume must then be discarded by the caller).
        """
        progress = progress or no_progress
        n = len(self.geometry.slices)
        done = 0
        progress(0.0, f"loading {n} slices")
        # a thread reads native slices itself and waits for a decoder process for compressed (or colour) files
        with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="dicom-decode") as pool:
            futures = [pool.submit(self._load_task, ks) for ks in self._tasks(WORKERS)]
            held: list[list[int]] | None = []  # landed before the middle slice; None once it is in
            try:
                for fut in as_completed(futures):
                    ks = fut.result()
                    done += len(ks)
                    if held is not None and fut is not futures[0]:
                        held.append(ks)
                    else:
                        for batch in [ks, *(held or [])]:
                            if on_slices is not None:
                                on_slices([self.geometry.grid_index[k] for k in batch])
                        held = None
                    progress(done / n, f"slice {done}/{n}")
                    if cancel is not None:
                        cancel.raise_if_cancelled()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
        self._blank_missing(on_slices)
        self._narrow()
        return self.volume

    def _blank_missing(self, on_slices: Callable[[list[int]], None] | None) -> None:
        """Fill the grid slices no image fills (SeriesGeometry.missing) with the lowest value of the acquired
        ones: black in any window, never mistaken for tissue (zeros would be water on a CT)."""
        missing = self.geometry.missing
        if not missing:
            return
        arr = self.volume.array
        arr[missing] = min(arr[z].min() for z in self.geometry.grid_index)  # slice by slice: no copy
        if on_slices is not None:
            on_slices(missing)

    def _narrow(self) -> None:
        """int32 chosen from the declared bit range -> int16 when the actual values fit (exactly)."""
        arr = self.volume.array
        if arr.dtype == np.int32 and arr.size:
            info = np.iinfo(np.int16)
            if info.min <= arr.min() and arr.max() <= info.max:
                self.volume.array = arr.astype(np.int16)
