"""earmark: a local active-learning loop for speech assistants.

The top-level package is torch-free: records, manifests, text normalisation, configs and
audio checks. Models live in ``training``; Label Studio conversion lives in ``labelling``.
"""

__version__ = "0.1.0"
