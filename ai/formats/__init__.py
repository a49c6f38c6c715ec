"""Loaders of model formats into one in-memory model interface."""
