"""Core layer: masks, unit names, run paths and manifest, config dataclasses (torch + stdlib)."""
