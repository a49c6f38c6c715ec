"""VTK pipelines without Qt: slice reslice + overlays, volume rendering, surfaces, offscreen render."""
