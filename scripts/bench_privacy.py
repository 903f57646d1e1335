"""What voice anonymisation hides, and what it costs: speaker verification and WER over alpha.

Measured as the VoicePrivacy Challenge does. The attacker is a pretrained speaker encoder
(``GE2E``: Resemblyzer's, trained on LibriSpeech and VoxCeleb; 0-8% EER on original audio
here). It enrols each evaluation speaker on a few clips (mean embedding) and scores every test
clip by cosine; the equal error rate (EER) says how well it links clips to people (50% =
chance). Per McAdams coefficient ``alpha`` (``labelling.anonymise``; 1 = no anonymisation;
``0.5-0.9`` = drawn per clip, as the challenge's 2022 baseline does):

- ignorant: enrolment on original audio, tests anonymised (the attacker does not know);
- lazy-informed: enrolment anonymised the same way as the tests;
- semi-informed: lazy-informed, and an LDA back end trained on anonymised clips of the
  speakers the attacker knows (the challenge retrains its whole verifier; this retrains the
  part that can be, offline).

Speakers: the built-in corpus's voices (half known to the attacker, half evaluated) and the
real humans of FSDD (two known, three evaluated; a clip is five digits in a row, 2-3 s, since
one digit is too short for a trial). The cost: the recogniser's WER on anonymised test
audio (``--asr``, a checkpoint; its training audio was not anonymised) against the original.

    python scripts/bench_privacy.py --corpus runs/corpus_deploy/seed0 \
        --asr runs/base/asr-.../model --asr-test runs/corpus_deploy/seed0/test.jsonl \
        --asr-where domain=source --out runs/bench_privacy

Prints a table, writes ``OUT/privacy.json`` and ``OUT/privacy.png``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from earmark.core.manifest import read_manifest, write_manifest  # noqa: E402
from labelling.anonymise import mcadams  # noqa: E402

FSDD = REPO.parent / "shared" / "data" / "fsdd" / "recordings"
FSDD_TRAIN = ("george", "jackson")  # the attacker knows these; the other three are evaluated
RANDOM = "0.5-0.9"  # an alpha drawn per utterance from this range (VoicePrivacy 2022's B2)


# -- audio and the attacker's features -----------------------------------------------------------
def load(path: str) -> tuple[np.ndarray, int]:
    x, sr = sf.read(path, dtype="float32", always_2d=False)
    return (x.mean(axis=1) if x.ndim == 2 else x), sr


def anonymised(x: np.ndarray, sr: int, alpha: float | str, rng: random.Random) -> np.ndarray:
    if alpha == RANDOM:
        return mcadams(x, sr, rng.uniform(0.5, 0.9))
    return x if alpha == 1.0 else mcadams(x, sr, float(alpha))


class GE2E:
    """A pretrained speaker encoder: the GE2E LSTM of Resemblyzer (Wan et al. 2018; weights
    trained on LibriSpeech, VoxCeleb 1 and 2, Apache-2.0), read from the ``resemblyzer`` wheel
    (``pip install --no-deps resemblyzer==0.1.4``: only its ``pretrained.pt`` is used, so none
    of its audio dependencies are needed). Its front end is rebuilt with torchaudio: 16 kHz,
    volume raised to -30 dBFS, 40 Slaney mel bands (power, no log), 25 ms / 10 ms, partial
    windows of 160 frames at 1.3 a second, their embeddings averaged and length-normalised."""

    def __init__(self) -> None:
        import importlib.util

        import torch
        import torchaudio

        spec = importlib.util.find_spec("resemblyzer")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("the GE2E attacker needs: pip install --no-deps resemblyzer==0.1.4")
        weights = Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"
        state = torch.load(weights, map_location="cpu")["model_state"]
        self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.mel = torchaudio.transforms.MelSpectrogram(
            16000, n_fft=400, hop_length=160, n_mels=40, power=2.0,
            mel_scale="slaney", norm="slaney", pad_mode="constant",
        )  # fmt: skip
        self.torch = torch

    def __call__(self, x: np.ndarray, sr: int) -> np.ndarray:
        from earmark.dsp import resample

        torch = self.torch
        wav = resample(x, sr, 16000) if sr != 16000 else x
        rms = float(np.mean(wav.astype(np.float64) ** 2)) + 1e-12
        gain_db = -30 - 10 * np.log10(rms)
        if gain_db > 0:
            wav = wav * 10 ** (gain_db / 20)
        step = round(16000 / 1.3 / 160)  # frames between partial windows
        n_frames = int(np.ceil((len(wav) + 1) / 160))
        starts = list(range(0, max(1, n_frames - 160 + step + 1), step))
        if len(starts) > 1 and (len(wav) - starts[-1] * 160) / (160 * 160) < 0.75:
            starts = starts[:-1]
        wav = np.pad(wav, (0, max(0, (starts[-1] + 160) * 160 - len(wav))))
        with torch.no_grad():
            mel = self.mel(torch.from_numpy(wav.astype(np.float32))).T  # (frames, 40)
            batch = torch.stack([mel[i : i + 160] for i in starts])
            _, (hidden, _) = self.lstm(batch)
            emb = torch.relu(self.linear(hidden[-1]))
            emb = emb / emb.norm(dim=1, keepdim=True)
            mean = emb.mean(0)
        return (mean / mean.norm()).numpy().astype(np.float64)


class Cosine:
    """Scoring GE2E embeddings as they are: cosine similarity (no back end to train)."""

    def __init__(self, *_: Any) -> None:
        pass

    def embed(self, x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)


class SpeakerModel:
    """LDA on utterance statistics, trained on known speakers; cosine scores after whitening
    and length normalisation (a classic i-vector/x-vector back end)."""

    def __init__(self, x: np.ndarray, speakers: list[str], dims: int = 20) -> None:
        self.mean, self.scale = x.mean(0), x.std(0) + 1e-8
        z = (x - self.mean) / self.scale
        labels = np.array(speakers)
        within = np.zeros((z.shape[1], z.shape[1]))
        between = np.zeros_like(within)
        for s in set(speakers):
            zs = z[labels == s]
            mu = zs.mean(0)
            within += (zs - mu).T @ (zs - mu)
            between += len(zs) * np.outer(mu, mu)
        within = within / len(z) + 1e-3 * np.eye(z.shape[1])
        vals, vecs = np.linalg.eigh(np.linalg.solve(within, between))
        self.proj = vecs[:, np.argsort(vals)[::-1][: min(dims, len(set(speakers)) - 1)]].real

    def embed(self, x: np.ndarray) -> np.ndarray:
        e = ((x - self.mean) / self.scale) @ self.proj
        return e / np.linalg.norm(e, axis=-1, keepdims=True)


def eer(target: np.ndarray, nontarget: np.ndarray) -> float:
    """The equal error rate: where false acceptances and false rejections are as frequent."""
    scores = np.concatenate([target, nontarget])
    is_target = np.concatenate([np.ones(len(target)), np.zeros(len(nontarget))])
    order = np.argsort(scores)
    is_target = is_target[order]
    frr = np.cumsum(is_target) / len(target)  # targets at or below each threshold
    far = 1 - np.cumsum(1 - is_target) / len(nontarget)
    i = int(np.argmin(np.abs(frr - far)))
    return float((frr[i] + far[i]) / 2)


def trials(model: Any, enrol: dict[str, np.ndarray], test: dict[str, np.ndarray]) -> float:
    """EER of enrolment models (mean embedding) against every test utterance."""
    tgt, non = [], []
    for s, e in enrol.items():
        centre = model.embed(e).mean(0)
        centre /= np.linalg.norm(centre)
        for t, x in test.items():
            scores = model.embed(x) @ centre
            (tgt if s == t else non).extend(scores.tolist())
    return eer(np.array(tgt), np.array(non))


# -- data ------------------------------------------------------------------------------------
Clip = list[str]  # audio files played one after the other


def speakers_of(corpus: Path, per_speaker: int, seed: int) -> dict[str, list[Clip]]:
    """Up to ``per_speaker`` utterances (one clip each) of every voice in the corpus."""
    by: dict[str, set[str]] = defaultdict(set)
    for manifest in sorted(corpus.glob("*.jsonl")):
        for row in read_manifest(manifest):
            if row.utterance.speaker and row.utterance.audio:
                by[row.utterance.speaker].add(str(row.utterance.audio))
    rng, out = random.Random(seed), {}
    for s, paths in sorted(by.items()):
        ordered = sorted(paths)
        rng.shuffle(ordered)
        if len(ordered) >= 8:
            out[s] = [[p] for p in ordered[:per_speaker]]
    return out


def fsdd_speakers(per_speaker: int, digits: int, seed: int) -> dict[str, list[Clip]]:
    """``per_speaker`` clips of ``digits`` random FSDD recordings each (one digit is half a
    second: too short for a verification trial, as in the challenge's several-second ones)."""
    by: dict[str, list[str]] = defaultdict(list)
    for wav in sorted(FSDD.glob("*.wav")):
        by[wav.stem.split("_")[1]].append(str(wav))
    if not by:
        raise SystemExit(f"no FSDD recordings under {FSDD}")
    rng = random.Random(seed)
    return {s: [rng.sample(p, digits) for _ in range(per_speaker)] for s, p in sorted(by.items())}


def features(
    feat: GE2E, spk: dict[str, list[Clip]], alpha: float | str, seed: int
) -> dict[str, np.ndarray]:
    """The attacker's features of every clip, anonymised with ``alpha`` (per clip)."""
    rng = random.Random(seed)

    def one(clip: Clip) -> np.ndarray:
        parts = [load(p) for p in clip]
        x, sr = np.concatenate([x for x, _ in parts]), parts[0][1]
        return feat(anonymised(x, sr, alpha, rng), sr)

    return {s: np.stack([one(c) for c in clips]) for s, clips in spk.items()}


def split(spk: dict[str, np.ndarray], n_enrol: int) -> tuple[dict, dict]:
    return {s: x[:n_enrol] for s, x in spk.items()}, {s: x[n_enrol:] for s, x in spk.items()}


def stack(groups: list[dict[str, np.ndarray]]) -> tuple[np.ndarray, list[str]]:
    xs, labels = [], []
    for g in groups:
        for s, x in g.items():
            xs.append(x)
            labels += [s] * len(x)
    return np.concatenate(xs), labels


# -- the recogniser's cost ---------------------------------------------------------------------
def asr_wer(
    checkpoint: Path, test: Path, limit: int, alpha: float | str, work: Path, where: str | None
) -> float:
    from earmark.core.manifest import row_to_dict
    from training.model import recipe

    rows = read_manifest(test)
    if where:  # e.g. domain=source: where the recogniser works, so that the cost shows
        key, _, value = where.partition("=")
        rows = [r for r in rows if str(row_to_dict(r).get(key)) == value]
    rows = rows[:limit]
    if alpha != 1.0:
        rng, out = random.Random(0), []
        folder = work / f"asr_audio_{alpha}"
        folder.mkdir(parents=True, exist_ok=True)
        for row in rows:
            x, sr = load(str(row.utterance.audio))
            path = folder / f"{row.id}.wav"
            sf.write(path, anonymised(x, sr, alpha, rng), sr, subtype="PCM_16")
            out.append(type(row)(row.utterance.with_(audio=str(path)), row.label))
        rows = out
        write_manifest(folder / "test.jsonl", rows)
    figures = recipe("asr").evaluate(checkpoint, rows, n_resamples=0)
    return float(figures["wer"] or 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--corpus",
        type=Path,
        required=True,
        help="A built-in corpus folder (manifests with speakers).",
    )
    ap.add_argument(
        "--alphas", nargs="+", default=["1.0", "0.9", "0.8", "0.7", "0.6", "0.5", RANDOM]
    )
    ap.add_argument("--per-speaker", type=int, default=16)
    ap.add_argument("--fsdd-clips", type=int, default=40, help="Five-digit clips per FSDD speaker.")
    ap.add_argument("--enrol", type=int, default=4, help="Enrolment utterances per speaker.")
    ap.add_argument("--asr", type=Path, help="An ASR checkpoint for the WER cost.")
    ap.add_argument("--asr-test", type=Path, help="Its test manifest.")
    ap.add_argument("--asr-limit", type=int, default=200)
    ap.add_argument(
        "--asr-where", help="Only test rows with this field=value (e.g. domain=source)."
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_privacy"))
    args = ap.parse_args()  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    alphas: list[float | str] = [a if a == RANDOM else float(a) for a in args.alphas]
    start = time.time()
    builtin = speakers_of(args.corpus, args.per_speaker, args.seed)
    names = sorted(builtin)
    random.Random(args.seed).shuffle(names)
    known = {s: builtin[s] for s in names[: len(names) // 2]}
    unknown = {s: builtin[s] for s in names[len(names) // 2 :]}
    fsdd = fsdd_speakers(args.fsdd_clips, 5, args.seed)
    fsdd_known = {s: p for s, p in fsdd.items() if s in FSDD_TRAIN}
    fsdd_eval = {s: p for s, p in fsdd.items() if s not in FSDD_TRAIN}
    print(f"speakers: {len(known)} built-in + {len(fsdd_known)} FSDD train the attacker; "
          f"{len(unknown)} built-in and {len(fsdd_eval)} FSDD evaluated", file=sys.stderr)  # fmt: skip
    torch.set_num_threads(1)  # small LSTM batches: threads cost more than they give
    feat = GE2E()
    groups = (
        ("known", known),
        ("fsdd_known", fsdd_known),
        ("unknown", unknown),
        ("fsdd", fsdd_eval),
    )
    orig = {name: features(feat, g, 1.0, args.seed) for name, g in groups}
    attacker = Cosine()
    results: list[dict[str, Any]] = []
    print_header()
    for alpha in alphas:
        anon = {k: features(feat, g, alpha, args.seed + 1) for k, g in groups}
        informed = SpeakerModel(*stack([anon["known"], anon["fsdd_known"]]))
        row: dict[str, Any] = {"alpha": alpha}
        for name in ("unknown", "fsdd"):
            enrol_o, _ = split(orig[name], args.enrol)
            enrol_a, test_a = split(anon[name], args.enrol)
            key = "builtin" if name == "unknown" else "fsdd"
            row[f"{key}_eer_ignorant"] = trials(attacker, enrol_o, test_a)
            row[f"{key}_eer_lazy"] = trials(attacker, enrol_a, test_a)
            row[f"{key}_eer_semi"] = trials(informed, enrol_a, test_a)
            # the informed attacker is the stronger of the two that know
            row[f"{key}_eer_informed"] = min(row[f"{key}_eer_lazy"], row[f"{key}_eer_semi"])
        if args.asr and args.asr_test:
            row["wer"] = asr_wer(
                args.asr, args.asr_test, args.asr_limit, alpha, args.out, args.asr_where
            )
        results.append(row)
        print_row(row)
    report = {"alphas": [str(a) for a in alphas], "results": results, "seconds": time.time() - start,
              "speakers": {"attacker_builtin": len(known), "attacker_fsdd": len(fsdd_known),
                           "eval_builtin": len(unknown), "eval_fsdd": len(fsdd_eval)},
              "per_speaker": args.per_speaker, "enrol": args.enrol, "asr": str(args.asr or "")}  # fmt: skip
    (args.out / "privacy.json").write_text(json.dumps(report, indent=2))
    plot(results, args.out / "privacy.png")
    print(f"wrote {args.out / 'privacy.json'} and privacy.png ({report['seconds']:.0f} s)")


def print_header() -> None:
    print(f"{'alpha':>8} | {'built-in EER %: ignorant  lazy  semi':>36} | "
          f"{'FSDD EER %: ignorant  lazy  semi':>32} | WER")  # fmt: skip


def print_row(row: dict[str, Any]) -> None:
    cells = [f"{row[k] * 100:8.1f}" for k in
             ("builtin_eer_ignorant", "builtin_eer_lazy", "builtin_eer_semi",
              "fsdd_eer_ignorant", "fsdd_eer_lazy", "fsdd_eer_semi")]  # fmt: skip
    wer = f"{row['wer']:.3f}" if "wer" in row else "-"
    print(f"{row['alpha']!s:>8} | {' '.join(cells[:3]):>36} | {' '.join(cells[3:]):>32} | {wer}")


def plot(results: list[dict[str, Any]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(r["alpha"]) for r in results]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for key, style in (("ignorant", ":"), ("lazy", "--"), ("semi", "-")):
        a.plot(
            labels,
            [r[f"builtin_eer_{key}"] * 100 for r in results],
            "b" + style,
            label=f"built-in, {key}",
        )
        a.plot(
            labels, [r[f"fsdd_eer_{key}"] * 100 for r in results], "r" + style, label=f"FSDD, {key}"
        )
    a.axhline(30, color="grey", lw=0.8)
    a.set(xlabel="McAdams alpha", ylabel="attacker EER (%)", title="speaker linkability")
    a.legend(fontsize=7)
    if all("wer" in r for r in results):
        b.plot(labels, [r["wer"] for r in results], "k-o")
    b.set(xlabel="McAdams alpha", ylabel="WER", title="recogniser on anonymised audio")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
