"""Configs: unknown keys and wrong types name the key; dotted overrides apply."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from earmark.core.config import load_config, save_config
from earmark.core.errors import ConfigError


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    warmup_steps: int = 100


@dataclass(frozen=True)
class Train:
    name: str = "asr"
    optim: Optim = field(default_factory=Optim)
    layers: tuple[int, ...] = (1, 2)
    device: str | None = None


def test_defaults_file_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 0.01\n")
    cfg = load_config(Train, path, ["optim.warmup_steps=5", "layers=[3, 4]", "device=cuda"])
    assert cfg == Train(optim=Optim(lr=0.01, warmup_steps=5), layers=(3, 4), device="cuda")


def test_int_and_exponent_strings_are_accepted_where_a_float_is_expected() -> None:
    assert load_config(Train, None, ["optim.lr=1"]).optim.lr == 1.0
    assert load_config(Train, None, ["optim.lr=3e-3"]).optim.lr == 0.003


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["optim.lrr=1"],
            "unknown config key(s) optim.lrr; known keys here: optim.lr, optim.warmup_steps",
        ),
        (
            ["optim.warmup_steps=ten"],
            "config key 'optim.warmup_steps': expected an integer, got 'ten'",
        ),
        (["optim.lr=fast"], "config key 'optim.lr': expected a number, got 'fast'"),
        (["optim=3"], "config key 'optim': expected a mapping, got 3"),
        (["layers=5"], "config key 'layers': expected a list, got 5"),
        (["name"], "override 'name' must look like key.sub=value"),
    ],
)
def test_errors_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Train, None, overrides)
    assert message in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Train, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(Train, bad)


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(Train, None, ["optim.lr=0.5"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(Train, tmp_path / "resolved.yaml") == cfg


def test_sections(tmp_path: Path) -> None:
    path = tmp_path / "all.yaml"
    path.write_text("asr:\n  name: big\nnlu:\n  name: other\n")
    assert load_config(Train, path, section="asr").name == "big"
