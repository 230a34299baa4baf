"""Data layer: built-in synthetic tasks, local files, tokenization and batching."""
