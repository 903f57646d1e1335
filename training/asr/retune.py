"""New words for a trained recogniser without training it again (``earmark train lm``).

A team that adds product or contact names, or meets a new domain, should not spend an hour
of training to make them decodable: the lexicon and the LMs are rebuilt from the training
transcripts plus the new text (``decoding.lm_text``), the searches retuned and the confidence
temperature refitted on dev, all on the checkpoint's own acoustic model, whose weights are
copied unchanged. The result is a new checkpoint (its own model version, the old one its
parent), so the two can be compared with ``earmark evaluate``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from earmark.core.config import to_dict
from earmark.core.errors import CheckpointError
from earmark.core.fileio import private_dir
from earmark.core.text import normalize
from training.asr.config import ASRConfig
from training.asr.data import labelled_rows
from training.asr.features import load_examples
from training.asr.lmtext import check_sources
from training.asr.model import load_recogniser
from training.asr.transcribe import pick_device
from training.asr.tuning import choose_decoding, dev_log_probs, dev_rates_of, fit_dev_temperature
from training.checkpoint import (
    LAST,
    META_FILE,
    CheckpointMeta,
    read_meta,
    replace_folder,
    write_meta,
)
from training.result import Log


def retune_decoding(
    checkpoint: str | Path,
    train: str | Path,
    dev: str | Path,
    out: str | Path,
    config: ASRConfig,
    *,
    log: Log = print,
) -> dict[str, Any]:
    """Write to ``out`` a copy of ``checkpoint`` whose lexicon and LMs come from ``train``'s
    transcripts plus ``config.decoding``'s extra text, with its decoding tuned and temperature
    fitted on ``dev``; return its metrics (``out`` may be ``checkpoint`` itself).

    The new checkpoint is built in a side folder and swapped in whole
    (``training.checkpoint.replace_folder``): an interrupted run leaves ``out`` as it was, never
    a copy that looks complete with the old LMs."""
    checkpoint, out = Path(checkpoint), Path(out)
    meta = read_meta(checkpoint, kind="asr")
    check_sources(config.decoding.lm_text, config.decoding.english_words)
    in_place = out.exists() and out.resolve() == checkpoint.resolve()
    if not in_place and out.exists() and any(out.iterdir()):
        raise CheckpointError(f"{out}: exists and is not empty; give a new folder")
    metrics: dict[str, Any] = {}

    def write(side: Path) -> None:
        shutil.copytree(checkpoint, side, ignore=shutil.ignore_patterns(LAST, META_FILE))
        metrics.update(_retune_into(side, meta, train, dev, config, log))
        parent = meta.parent if in_place else str(checkpoint)
        _write_meta(side, meta, config, metrics, parent)

    replace_folder(out, write, META_FILE)
    private_dir(out)
    log(f"{out}: dev WER {metrics['dev_wer']:.4f} with {metrics['decoding']} decoding")
    return metrics


def _retune_into(
    folder: Path,
    meta: CheckpointMeta,
    train: str | Path,
    dev: str | Path,
    config: ASRConfig,
    log: Log,
) -> dict[str, Any]:
    """Rebuild the LMs in ``folder`` (a copy of the checkpoint), tune its decoding and fit its
    temperature on dev; its metrics."""
    rec = load_recogniser(folder)
    device = pick_device(config.train.device)
    rec.model.to(device).eval()
    dev_set = load_examples(labelled_rows(dev), rec.feature_extractor, rec.encode)
    dev_lp = dev_log_probs(rec, dev_set, device, config.train.max_frames)
    rec.model.eval()
    transcripts = [normalize(r.label.text or "") for r in labelled_rows(train) if r.label]
    t0 = time.perf_counter()
    decoding = choose_decoding(rec, folder, transcripts, dev_set, dev_lp, config.decoding, log)
    seconds = time.perf_counter() - t0
    temperature, _ = fit_dev_temperature(rec, dev_set, dev_lp, config, log)
    rec.temperature = temperature
    rec.save(folder)
    return {
        **meta.metrics,
        "temperature": temperature,
        "decoding": decoding["method"],
        "decoding_seconds": seconds,
        **{f"dev_{k}": v for k, v in dev_rates_of(rec, dev_set, dev_lp).items()},
    }


def _write_meta(
    folder: Path,
    meta: CheckpointMeta,
    config: ASRConfig,
    metrics: dict[str, Any],
    parent: str | None,
) -> None:
    """``earmark.json``: a new model version, the new decoding config, the old weights' facts."""
    write_meta(
        folder,
        dataclasses.replace(
            meta,
            model_version=f"asr-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
            config={**meta.config, "decoding": to_dict(config.decoding)},
            parent=parent,
            metrics=metrics,
            created=time.time(),
        ),
    )
