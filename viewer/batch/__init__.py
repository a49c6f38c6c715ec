"""Cohort segmentation on Dask distributed: every input segmented as `radview segment` does, locally or on a cluster."""
