"""Train a run's last round again, from scratch of that round: after ``earmark forget``, so that
its models no longer carry what was forgotten (``earmark forget --retrain``)."""

from __future__ import annotations

import shutil

from earmark.core.errors import EarmarkError
from earmark.core.say import Say
from earmark.loop.config import load_loop_config
from earmark.loop.forget import MARKER
from earmark.loop.rounds import train_round
from earmark.loop.state import RunFolder
from earmark.loop.trainset import halves_of


def retrain_last_round(run: RunFolder, say: Say) -> list[str]:
    """Retrain the newest trained round on its labels as they are now (rebuilt training
    manifests), warm-started from the newest checkpoint not trained with forgotten utterances
    (or the base); returns the new checkpoints. The run's position (phase) is left as it is.
    A run with no trained round, or whose only round is its base, has nothing to retrain."""
    trained = [rf for rf in run.rounds() if rf.trained]
    if not run.config.is_file() or not trained:
        raise EarmarkError(f"{run.root}: no trained round to retrain")
    cfg = load_loop_config(run.config)
    rf = trained[-1]
    if rf.number == 1 and any(getattr(cfg, k).init_is_round_one for k in ("asr", "nlu")):
        raise EarmarkError(
            f"{run.root}: round 1 is the base model ({cfg.asr.init or cfg.nlu.init}), trained "
            "outside the run: rebuild it with `earmark base` without the forgotten data"
        )
    for path in (rf.metrics, rf.checkpoints, rf.dir / MARKER):
        path.unlink(missing_ok=True)  # metrics first: the round now reads as untrained
    for kind in ("asr", "nlu"):
        shutil.rmtree(rf.checkpoint_dir(kind), ignore_errors=True)
    say(f"retraining round {rf.number} without the forgotten utterances")
    train_round(cfg, run, rf.number, halves_of(cfg), say)
    return [str(p) for p in (rf.checkpoint_dir(k) for k in ("asr", "nlu")) if p.is_dir()]
