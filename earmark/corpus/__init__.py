"""Corpora: the built-in synthetic smart-speaker corpus and importers of real data."""
