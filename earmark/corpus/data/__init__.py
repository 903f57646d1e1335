"""Data files of the built-in grammar (read with importlib.resources)."""
