"""``earmark corpus split``: a labelled manifest becomes a simulated loop's files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from earmark.core.errors import CorpusError
from earmark.core.manifest import read_manifest
from earmark.corpus.importers import import_slurp


def test_slurp_splits_into_a_text_pool_whose_answers_and_schema_leave_test_alone(
    shared_data: Path, tmp_path: Path
) -> None:
    manifest = import_slurp(shared_data / "slurp" / "devel.jsonl", tmp_path / "imp").manifest
    out = subprocess.run(
        [sys.executable, "-m", "earmark.cli.main", "corpus", "split", str(manifest),
         "--out", str(tmp_path / "s"), "--seed", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert f"pool: {tmp_path / 's' / 'pool.jsonl'}" in out.stdout
    parts = {n: read_manifest(tmp_path / "s" / f"{n}.jsonl") for n in
             ("seed", "dev", "test", "pool", "pool_answers")}  # fmt: skip
    assert [len(parts[n]) for n in ("seed", "dev", "test")] == [200, 200, 400]
    total = len(read_manifest(manifest))
    assert len(parts["pool"]) == len(parts["pool_answers"]) == total - 800
    ids = [r.id for n in ("seed", "dev", "test", "pool") for r in parts[n]]
    assert len(set(ids)) == total  # disjoint and complete
    # the pool holds only what an unlabelled typed request has: its text
    answers = {r.id: r.label for r in parts["pool_answers"]}
    for row in parts["pool"]:
        assert row.label is not None and row.label.intent is None and not row.label.entities
        assert row.label.text == answers[row.id].text  # type: ignore[union-attr]
    schema = json.loads((tmp_path / "s" / "schema.json").read_text())
    known = {r.label.intent for n in ("seed", "dev", "pool_answers") for r in parts[n] if r.label}
    assert set(schema["intents"]) == known
    # seeded: the same seed gives the same split, another seed another one
    again = subprocess.run(
        [sys.executable, "-m", "earmark.cli.main", "corpus", "split", str(manifest),
         "--out", str(tmp_path / "s2"), "--seed", "1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert again.returncode == 0
    assert (tmp_path / "s2" / "test.jsonl").read_text() == (
        tmp_path / "s" / "test.jsonl"
    ).read_text()


def test_a_split_that_leaves_no_pool_is_refused(shared_data: Path, tmp_path: Path) -> None:
    from earmark.corpus.split import split_manifest

    manifest = import_slurp(shared_data / "slurp" / "devel.jsonl", tmp_path / "imp").manifest
    with pytest.raises(CorpusError, match="cannot give seed 1000 \\+ dev 1000"):
        split_manifest(manifest, tmp_path / "s", seed_size=1000, dev_size=1000, test_size=400)
