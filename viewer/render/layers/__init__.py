"""Slice-view layers, one class per kind of content, each owning its VTK props and redrawing from a SliceGeometry."""
