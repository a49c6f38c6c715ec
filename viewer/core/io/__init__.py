"""Readers and writers: DICOM series, NIfTI, NRRD, MHA, DICOM SEG; anonymization."""
