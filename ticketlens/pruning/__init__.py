"""Pruning layer: masking, the training loop, IMP with rewinding, controls, resume."""
