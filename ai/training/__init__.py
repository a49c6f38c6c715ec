"""Datasets, augmentation, losses, training loops for the built-in models."""
