"""Models layer: architecture adapters (which weights are prunable, which slices are units)
and the one place models are built or loaded."""
