"""radview's shipped data (W/L presets, built-in models), installed as the package radview_resources."""
