"""Confidence: temperature scaling of both heads and the utterance-level NLU confidence.

Formula (documented contract, used by ``predict``):

* ``p = softmax(intent_logits / T_intent)``; ``intent_confidence = p[top]``;
  ``margin = p[top] - p[second]`` (``p[top]`` when there is a single intent).
* per word ``q = softmax(tag_logits / T_tag)`` at the word's first sub-token; the word tags
  are the best BIO-valid path (Viterbi over ``log q``); an entity's confidence is the product
  of ``q[predicted tag]`` over its words (the probability that the whole span is tagged as
  predicted); each word tagged ``O`` has confidence ``q[O]`` (a low one means an entity may
  have been missed).
* ``raw = margin * min(entity confidences, O-word confidences, 1)``: the intent margin
  combined with the least confident part of the tagging.
* ``confidence = sigmoid((logit(raw) - shift) / scale)`` with ``scale, shift`` fitted on dev
  so that ``confidence`` matches the rate at which intent and every entity are all right.

All maps are monotone, so calibration changes confidences and never predictions. Small dev
sets (a team with 200 labels has a few dozen): the temperature fit carries a weak prior towards
1 (``PRIOR`` pseudo-observations on its log), and the utterance map is only fitted on at least
``MIN_UTTERANCE_FIT`` dev utterances: on 10-20 an unregularised fit drove the scale to its
bound and every confidence to 0 or 1 (ECE 0.36 on SLURP from 100 labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

EPS = 1e-6
PRIOR = 2.0  # pseudo-observations pulling the log-temperature towards 0
MIN_UTTERANCE_FIT = 50  # dev utterances below which the utterance map stays the identity


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, *, steps: int = 100) -> float:
    """The temperature ``T`` minimising NLL of ``softmax(logits / T)``.

    ``logits``: ``(N, K)``; ``targets``: ``(N,)`` class indices (rows with -100 are ignored).
    Returns 1.0 when there is nothing to fit.
    """
    keep = targets != -100
    logits, targets = logits[keep].detach().double(), targets[keep]
    if logits.shape[0] == 0 or logits.shape[1] < 2:
        return 1.0
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optim = torch.optim.LBFGS([log_t], lr=0.1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), targets)
        loss = loss + PRIOR / logits.shape[0] * log_t.pow(2).sum()
        loss.backward()
        return loss

    optim.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20.0))


def raw_utterance_score(
    intent_probs: Sequence[float],
    entity_confidences: Sequence[float],
    o_confidences: Sequence[float],
) -> float:
    """``margin * min(entity confidences, O-word confidences, 1)`` (see the module docstring)."""
    top = sorted(intent_probs, reverse=True)
    margin = top[0] - (top[1] if len(top) > 1 else 0.0)
    tagging = min([1.0, *entity_confidences, *o_confidences])
    return float(margin * tagging)


def _logit(x: torch.Tensor) -> torch.Tensor:
    x = x.clamp(EPS, 1 - EPS)
    return torch.log(x) - torch.log1p(-x)


def fit_utterance_map(raw: Sequence[float], correct: Sequence[bool]) -> tuple[float, float]:
    """``(scale, shift)`` minimising the log loss of ``sigmoid((logit(raw) - shift) / scale)``."""
    if len(raw) < MIN_UTTERANCE_FIT or all(correct) or not any(correct):
        return 1.0, 0.0
    x = _logit(torch.tensor(raw, dtype=torch.float64))
    y = torch.tensor([float(c) for c in correct], dtype=torch.float64)
    params = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    optim = torch.optim.LBFGS([params], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optim.zero_grad()
        z = (x - params[1]) / params[0].exp()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y)
        loss.backward()
        return loss

    optim.step(closure)
    scale = float(params[0].detach().exp().clamp(0.05, 50.0))
    return scale, float(params[1].detach())


def utterance_confidence(raw: float, scale: float, shift: float) -> float:
    """``sigmoid((logit(raw) - shift) / scale)``: monotone in ``raw``."""
    z = (_logit(torch.tensor(raw, dtype=torch.float64)) - shift) / scale
    return float(torch.sigmoid(z))
