"""radview: desktop radiology viewer with AI assist."""

__version__ = "0.1.0"
