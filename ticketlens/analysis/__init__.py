"""Analysis layer: pure functions, runs or masks in, typed results (with ``to_dict()``) out."""
