"""The test set only measures: a loop whose test labels are garbage selects, stops and builds
its Label Studio schema exactly as one with the true test set. And a pool file that cannot be
read is quarantined with its reason while the round goes on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loop_support import loop_config, run_cli
from studio_fixtures import Studio, workspace_on

from earmark.core.manifest import ManifestRow, read_manifest, write_manifest
from earmark.core.records import Label, Utterance

pytestmark = [pytest.mark.slow, pytest.mark.labelstudio]


def _garbage_test_set(corpus: Path, out: Path) -> Path:
    rows = []
    for n, row in enumerate(read_manifest(corpus / "test.jsonl")):
        text = " ".join(reversed((row.label.text if row.label else "x").split())) + " zzz"
        rows.append(ManifestRow(row.utterance, Label(row.id, text=text, intent=f"garbage_{n}")))
    write_manifest(out, rows)
    return out


def _pool_with_a_broken_file(corpus: Path, out: Path) -> Path:
    broken = out.parent / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt not audio at all")
    rows = [*read_manifest(corpus / "pool.jsonl"), ManifestRow(Utterance("broken-1", str(broken)))]
    write_manifest(out, rows)
    return out


def _label_configs(studio: Studio) -> dict[str, str]:
    from labelling.state import State

    with studio.client() as client:
        return {
            kind: client.get(f"/api/projects/{p['id']}/", what="reading a project")["label_config"]
            for kind, p in State.of(studio.workspace).projects().items()
        }


def _behaviour(run: Path) -> dict[str, object]:
    rounds = sorted((run / "rounds").iterdir())
    return {
        "stopped": json.loads((run / "state.json").read_text())["stopped"],
        "selections": [
            (rd / "selection.jsonl").read_text()
            for rd in rounds
            if (rd / "selection.jsonl").exists()
        ],
        "scores": [
            (rd / "scores.jsonl").read_text() for rd in rounds if (rd / "scores.jsonl").exists()
        ],
        "dev": [
            {k: v for k, v in r.items() if k.startswith("dev_")}
            for r in json.loads((run / "metrics.json").read_text())
        ],
    }


def test_garbage_test_labels_change_nothing_but_the_test_figures(
    tiny_corpus: Path, studio_server: Studio, tmp_path: Path
) -> None:
    pool = _pool_with_a_broken_file(tiny_corpus, tmp_path / "pool.jsonl")
    runs = {}
    for name, test in (
        ("true", tiny_corpus / "test.jsonl"),
        ("garbage", _garbage_test_set(tiny_corpus, tmp_path / "garbage_test.jsonl")),
    ):
        studio = workspace_on(studio_server, tmp_path / name)
        config = loop_config(
            tiny_corpus, studio, rounds=2,
            data={"test": str(test), "pool": str(pool)}, stopping={"patience": 1, "min_delta": 0.0},
        )  # fmt: skip
        out = run_cli(config, studio.workspace)
        assert out.returncode == 0, out.stderr[-3000:]
        runs[name] = (studio, out.stdout + out.stderr)

    (true, _), (garbage, log) = runs["true"], runs["garbage"]
    assert _behaviour(true.workspace) == _behaviour(garbage.workspace)
    assert _label_configs(true) == _label_configs(garbage)
    assert "garbage_0" not in _label_configs(garbage)["understanding"]
    # both measured their own test set every round (the tiny models score alike on both)
    for ws in (true.workspace, garbage.workspace):
        rows = json.loads((ws / "metrics.json").read_text())
        assert [r["round"] for r in rows] == list(range(1, len(rows) + 1))
        assert all(r["wer"] is not None and r["intent_accuracy"] is not None for r in rows)
        assert all(r["dev_wer"] is not None and r["dev_intent_accuracy"] is not None for r in rows)

    # the unreadable pool file: quarantined with its reason, never scored, the rounds went on
    quarantine = [
        json.loads(x) for x in (garbage.workspace / "quarantine.jsonl").read_text().splitlines()
    ]
    assert [(q["id"], q["round"]) for q in quarantine] == [("broken-1", 1)] and quarantine[0][
        "reason"
    ]
    assert "utterance broken-1: cannot read its audio" in log
    for scores in _behaviour(garbage.workspace)["scores"]:  # type: ignore[union-attr]
        assert "broken-1" not in str(scores)
