"""A pool file that cannot be read: named, and (when the caller asks) skipped, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from earmark.core.errors import AudioError
from earmark.core.manifest import ManifestRow, read_manifest
from earmark.core.records import Utterance
from training.asr.recipe import ASRRecipe
from training.asr.transcribe import ASRModel
from training.checkpoint import read_meta

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _with_broken_file(fsdd_manifests: dict[str, Path], tmp_path: Path) -> list[ManifestRow]:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    rows = list(read_manifest(fsdd_manifests["dev"]))[:3]
    return [rows[0], ManifestRow(Utterance("broken", audio=str(broken))), *rows[1:]]


def test_unreadable_audio_raises_naming_the_file(tiny_checkpoint, fsdd_manifests, tmp_path):
    rows = _with_broken_file(fsdd_manifests, tmp_path)
    with pytest.raises(AudioError, match=r"broken\.wav"):
        list(ASRModel(tiny_checkpoint[0]).predict(rows))


def test_unreadable_audio_is_reported_and_skipped_when_asked(
    tiny_checkpoint, fsdd_manifests, tmp_path
):
    rows = _with_broken_file(fsdd_manifests, tmp_path)
    bad: list[tuple[str, str]] = []
    preds = list(
        ASRModel(tiny_checkpoint[0]).predict(
            rows, on_bad_audio=lambda r, e: bad.append((r.id, e.reason))
        )
    )
    assert [p.id for p in preds] == [rows[0].id, rows[2].id, rows[3].id]
    assert [uid for uid, _ in bad] == ["broken"] and bad[0][1]


def test_the_recipe_reads_dev_figures_from_the_checkpoint(tiny_checkpoint):
    out = tiny_checkpoint[0]
    dev = ASRRecipe().dev_metrics(out)
    assert dev["wer"] == read_meta(out, kind="asr").metrics["dev_wer"]
    assert dev["wer"] is not None and 0.0 <= dev["wer"] <= 1.5
