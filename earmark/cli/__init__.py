"""The ``earmark`` command line: thin wrappers around library functions."""
