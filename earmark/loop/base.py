"""A base model: the ASR and NLU a team had before launch, trained on the source domain, cached.

``earmark base --config configs/base_deploy.yaml --seed 0`` builds the corpus its config names
(``earmark corpus synth``; audio already there is reused), trains each model on the corpus's
seed split (in the deployment scenario: the source domain) with the source rows of dev, and
measures it on test, overall and per ``domain`` (how far the launch is from what it knew).

Each model is cached on its own in ``cache/<kind>-<key>/``, the key hashing everything that
shapes it: its resolved training config and time budget, the seed, and the bytes of the
training and dev manifests (whose audio names hash what was rendered). ``cache/base-<key>/
base.json`` (its key: the models' keys and the test set) names them and holds the test
figures. A second run reuses everything and trains nothing; a change to one model's config
trains that model again and reuses the other. A model in training sits in
``<kind>-<key>.partial/`` (a killed build resumes there) and is renamed into place, with its
``trained.json``, only when finished: a half-trained model is never used.
"""

from __future__ import annotations

import filecmp
import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from earmark import __version__
from earmark.core import faults
from earmark.core.config import load_config, to_dict
from earmark.core.errors import ConfigError
from earmark.core.fileio import fsync_dir, private_dir, write_json
from earmark.core.manifest import manifest_hash, read_manifest, row_to_dict, write_manifest
from earmark.core.say import Say

BASE_FILE = "base.json"
TRAINED_FILE = "trained.json"
KINDS = ("asr", "nlu")


@dataclass(frozen=True)
class BaseModel:
    """One model of the base: its training config file, overrides and time budget (minutes,
    0: the config's own stopping rule alone)."""

    config: str = ""
    overrides: tuple[str, ...] = ()
    minutes: float = 0.0


@dataclass(frozen=True)
class BaseConfig:
    """``configs/base_deploy.yaml``: the corpus to build and the two models trained on it."""

    corpus: str = "configs/corpus_deploy.yaml"  # an ``earmark corpus synth`` config
    corpus_overrides: tuple[str, ...] = ()
    corpus_out: str = "runs/corpus_deploy"  # the corpus of seed N is built in seedN/ here
    cache: str = "runs/base"
    eval_by: tuple[str, ...] = ("domain",)  # test figures per value of these manifest fields
    eval_resamples: int = 200
    asr: BaseModel = field(
        default_factory=lambda: BaseModel(config="configs/asr.yaml", minutes=20.0)
    )
    nlu: BaseModel = field(default_factory=lambda: BaseModel(config="configs/nlu.yaml"))
    kinds: tuple[str, ...] = KINDS  # the models to train

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be a non-empty subset of {list(KINDS)}")


@dataclass(frozen=True)
class Base:
    """A built base: its folder, its key and each model's checkpoint."""

    folder: Path
    key: str
    checkpoints: dict[str, Path]
    corpus: Path
    reused: bool

    def loop_overrides(self) -> list[str]:
        """The loop config keys of a loop on this base's corpus (``loop_data``): each model's
        round 1 is the base, which was trained on exactly that seed set."""
        return [
            o
            for kind, path in self.checkpoints.items()
            for o in (f"{kind}.init={path}", f"{kind}.init_is_round_one=true")
        ]

    def loop_data(self) -> dict[str, str]:
        """The loop's ``data`` on the base's corpus: its seed split (what the base learnt
        from) as the labelled start, its pool, dev and test, the pool's answers for the
        simulated annotator, and its label set."""
        names = {"seed": "seed", "pool": "pool", "dev": "dev", "test": "test",
                 "answers": "pool_answers"}  # fmt: skip
        data = {k: str(self.corpus / f"{v}.jsonl") for k, v in names.items()}
        return {**data, "schema": str(self.corpus / "corpus.json")}


def _seeded(kind: str, model: BaseModel, seed: int) -> tuple[str, ...]:
    """The model's overrides, its training seed set to ``seed``."""
    return (*model.overrides, f"train.seed={seed}" if kind == "asr" else f"seed={seed}")


def _training_config(kind: str, model: BaseModel, seed: int) -> dict[str, Any]:
    """The model's resolved training config (what the key hashes)."""
    if kind == "asr":
        from training.asr.config import load_asr_config

        cfg: Any = load_asr_config(model.config or None, _seeded(kind, model, seed))
    else:
        from training.nlu.config import load_nlu_config

        cfg = load_nlu_config(model.config or None, _seeded(kind, model, seed))
    return to_dict(cfg)


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def model_key(cfg: BaseConfig, kind: str, seed: int, train: Path, dev: Path) -> str:
    """The hash of everything that shapes one model of the base (see the module doc)."""
    model = getattr(cfg, kind)
    return _digest({
        "earmark": __version__, "kind": kind, "seed": seed, "train": manifest_hash(train),
        "dev": manifest_hash(dev), "config": _training_config(kind, model, seed),
        "minutes": model.minutes,
    })  # fmt: skip


def source_dev(dev: Path, out: Path) -> Path:
    """The dev rows of the source domain (all of dev when its rows carry no ``domain``): a
    team picks its base's checkpoint on the data it had, not on its users'."""
    rows = read_manifest(dev)
    source = [r for r in rows if row_to_dict(r).get("domain", "source") == "source"]
    fresh = out.with_name(f"{out.name}.new")
    write_manifest(fresh, source)
    if out.is_file() and filecmp.cmp(fresh, out, shallow=False):
        fresh.unlink()  # unchanged: a cached base's files are left as they are
    else:
        os.replace(fresh, out)
    return out


def build_base(cfg: BaseConfig, seed: int, say: Say) -> Base:
    """The corpus, then the base for ``(cfg, seed)``: reused when cached, else trained."""
    from earmark.corpus.synth import SynthConfig, build_corpus
    from training.model import recipe

    faults.context("base")
    synth = load_config(SynthConfig, cfg.corpus, list(cfg.corpus_overrides))
    corpus = Path(cfg.corpus_out) / f"seed{seed}"  # each seed its corpus (a rebuild prunes audio)
    say(f"base: corpus {cfg.corpus} (seed {seed}) in {corpus}")
    shown = [-1]

    def progress(done: int, total: int) -> None:  # a line per tenth: long builds show progress
        tenth = done * 10 // max(1, total)
        if tenth > shown[0]:
            shown[0] = tenth
            say(f"base: corpus {done:,} of {total:,} utterances ready")

    build_corpus(corpus, synth, seed, progress=progress)
    cache = private_dir(cfg.cache)
    dev = source_dev(corpus / "dev.jsonl", corpus / "dev_source.jsonl")
    keys = {kind: model_key(cfg, kind, seed, corpus / "seed.jsonl", dev) for kind in cfg.kinds}
    test = corpus / "test.jsonl"
    key = _digest({"models": keys, "test": manifest_hash(test), "eval_by": list(cfg.eval_by)})
    done = cache / f"base-{key}"
    if (done / BASE_FILE).is_file():
        say(f"base: reusing {done} (same configs, seed and data)")
        return _read_base(done, reused=True)
    checkpoints = {
        kind: _train(cfg, kind, seed, corpus / "seed.jsonl", dev, cache / f"{kind}-{k}", say)
        for kind, k in keys.items()
    }
    rows = read_manifest(test)
    figures = {
        kind: recipe(kind).evaluate(ckpt, rows, n_resamples=cfg.eval_resamples, by=cfg.eval_by)
        for kind, ckpt in checkpoints.items()
    }
    write_json(private_dir(done) / BASE_FILE, {
        "key": key, "seed": seed, "corpus": str(corpus.resolve()), "dev": str(dev.resolve()),
        "checkpoints": {k: str(v) for k, v in checkpoints.items()}, "test": figures,
        "config": to_dict(cfg),
    })  # fmt: skip
    say(f"base: built {done}")
    return _read_base(done, reused=False)


def _train(
    cfg: BaseConfig, kind: str, seed: int, train: Path, dev: Path, folder: Path, say: Say
) -> Path:
    """One model of the base, trained into ``folder`` (``kind-<model key>``) or found there;
    its checkpoint (absolute). Trained in ``folder.partial`` (a killed run resumes there) and
    renamed into place with its ``trained.json`` only when finished."""
    from training.model import recipe

    if (folder / TRAINED_FILE).is_file():
        say(f"base: reusing {kind.upper()} {folder}")
        return _trained_checkpoint(folder)
    model = getattr(cfg, kind)
    work = private_dir(folder.with_name(f"{folder.name}.partial"))
    say(f"base: training {kind.upper()} on {train} ({model.minutes:g} min)")
    ckpt = recipe(kind).train(
        train, dev, work / "model", config=model.config or None,
        overrides=_seeded(kind, model, seed), minutes=model.minutes, init=None, log=say,
    )  # fmt: skip
    write_json(
        work / TRAINED_FILE, {"checkpoint": str(Path(ckpt).resolve().relative_to(work.resolve()))}
    )
    if folder.exists():  # a model folder without its trained.json: never used
        shutil.rmtree(folder)
    os.replace(work, folder)  # the model appears whole or not at all
    fsync_dir(folder.parent)
    return _trained_checkpoint(folder)


def _trained_checkpoint(folder: Path) -> Path:
    """The checkpoint a finished model folder's ``trained.json`` names (absolute)."""
    return (folder / json.loads((folder / TRAINED_FILE).read_text())["checkpoint"]).resolve()


def _read_base(folder: Path, *, reused: bool) -> Base:
    info = json.loads((folder / BASE_FILE).read_text())
    try:
        paths = {kind: Path(path) for kind, path in info["checkpoints"].items()}
        return Base(folder.resolve(), info["key"], paths, Path(info["corpus"]), reused)
    except (KeyError, AttributeError) as exc:
        raise ConfigError(
            f"{folder / BASE_FILE}: not a base ({exc!r} missing or malformed)"
        ) from None


def load_base_config(path: str | Path | None, overrides: list[str]) -> BaseConfig:
    return load_config(BaseConfig, path, overrides)
