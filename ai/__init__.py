"""Qt-free, VTK-free AI: engine, model registry, model formats, networks, training, explainability."""
