"""The resumable ``last/`` folder survives a kill at any point of its swap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from training.asr import state
from training.checkpoint import LAST


class _Rec:
    """Stands in for a Recogniser: ``save`` writes two files that say which step they are."""

    def __init__(self, step: int) -> None:
        self.step = step

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "config.json").write_text(json.dumps({"step": self.step}))
        (directory / "model.safetensors").write_bytes(bytes([self.step]) * 64)


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=1e-3)


def _assert_complete(last: Path, step: int) -> None:
    """A folder whose weights, optimizer and state are all of ``step``."""
    assert json.loads((last / state.STATE_FILE).read_text())["step"] == step
    assert json.loads((last / "config.json").read_text())["step"] == step
    assert (last / "model.safetensors").read_bytes() == bytes([step]) * 64
    assert (last / state.OPTIMIZER_FILE).is_file()


def test_saving_twice_keeps_only_the_new_state(tmp_path: Path) -> None:
    last = tmp_path / "ckpt" / LAST
    last.mkdir(parents=True)
    state.save_state(_Rec(1), _optimizer(), last, {"step": 1})
    state.save_state(_Rec(2), _optimizer(), last, {"step": 2})
    _assert_complete(last, 2)
    assert sorted(p.name for p in last.parent.iterdir()) == [LAST]
    assert state.recover_last(last, log=lambda _: None)


def test_a_kill_between_the_two_renames_still_resumes_from_a_complete_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last = tmp_path / "ckpt" / LAST
    last.mkdir(parents=True)
    state.save_state(_Rec(1), _optimizer(), last, {"step": 1})

    real_rename = Path.rename

    def rename(self: Path, target: str | Path) -> Path:
        if Path(target) == last:  # the second rename: the new state into place
            raise KeyboardInterrupt("killed")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(KeyboardInterrupt):
        state.save_state(_Rec(2), _optimizer(), last, {"step": 2})
    monkeypatch.undo()
    assert not last.exists()  # the state the kill left

    messages: list[str] = []
    assert state.recover_last(last, log=messages.append)
    _assert_complete(last, 2)  # the newer of the two complete folders
    assert messages and "interrupted" in messages[0]
    state.save_state(_Rec(3), _optimizer(), last, {"step": 3})  # and saving goes on as before
    _assert_complete(last, 3)
    assert sorted(p.name for p in last.parent.iterdir()) == [LAST]


def test_nothing_to_recover_is_not_resumable(tmp_path: Path) -> None:
    last = tmp_path / "ckpt" / LAST
    assert not state.recover_last(last, log=lambda _: None)
    last.mkdir(parents=True)  # made empty before the first save, which was killed
    assert not state.recover_last(last, log=lambda _: None)
