"""The ``openvocab`` part of ``scripts/bench_asr.py``: words the recogniser was never taught.

Real smart-speaker requests (``../shared/data/slurp/devel.jsonl``) spoken by the built-in
voices, one voice each, recognised by the ``builtin`` part's checkpoint (2,500 built-in
utterances). The unique sentences are split with a fixed seed: 300 test and 200 dev requests,
the rest (about 1,500) as LM text; a sentence in test or dev never appears in the LM text.
Each variant rebuilds the checkpoint's lexicon and LMs (``training.asr.retune``, no training)
and tunes its decoding on the spoken dev requests:

- ``closed``: the training transcripts only (the built-in lexicon), tuned on the SLURP dev;
- ``lm_text``: plus the LM text (lexicon search);
- ``lm_text_open``: plus the lexicon-free character-LM search, kept if it wins on dev;
- ``lm_text_english``: plus 20,000 English words from ``wordfreq`` (when installed).

Per variant: test WER with its 95% interval, greedy WER, the share of test words outside the
lexicon, the recall of words outside the training transcripts and of words outside every list,
and the confidence AUROCs. Also the time to build the LMs from 100,000 sentences.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from earmark.core.text import normalize
from earmark.core.wer import align_words, aligned_pairs

SLURP = Path(__file__).resolve().parents[2] / "shared" / "data" / "slurp" / "devel.jsonl"
N_TEST, N_DEV = 300, 200


def slurp_split(work: Path, seed: int = 0) -> dict[str, Path]:
    """Test, dev and LM-text files of unique normalised SLURP sentences (disjoint)."""
    sentences = sorted({normalize(json.loads(line)["sentence"]) for line in SLURP.open()} - {""})
    random.Random(seed).shuffle(sentences)
    parts = {
        "test": sentences[:N_TEST],
        "dev": sentences[N_TEST : N_TEST + N_DEV],
        "lm_text": sentences[N_TEST + N_DEV :],
    }
    out = {}
    for name, lines in parts.items():
        out[name] = work / f"slurp_{name}.txt"
        out[name].write_text("\n".join(lines) + "\n")
    return out


def spoken(phrases: Path, out: Path, seed: int) -> Path:
    from earmark.corpus.phrases import speak_phrases

    lines = [line for line in phrases.read_text().splitlines() if line]
    return speak_phrases(lines, out, seed=seed, voices_per_phrase=1)


def lexicon_words(checkpoint: Path) -> set[str]:
    return {line.split()[0] for line in (checkpoint / "lexicon.txt").read_text().splitlines()}


def word_recall(refs: list[str], hyps: list[str], words: set[str] | None) -> dict[str, Any]:
    """Of the reference words outside ``words`` (all words when None): how many the
    hypotheses got right on a minimum-edit alignment."""
    hit = total = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        r = ref.split()
        _, correct = align_words(hyp.split(), r)  # per reference word: matched
        for w, ok in zip(r, correct, strict=True):
            if words is None or w not in words:
                total += 1
                hit += ok
    return {"recall": hit / total if total else float("nan"), "words": total}


def unseen_confidence(refs: list[str], hyps: list[Any], train_words: set[str]) -> dict[str, Any]:
    """How well confidence points at words the recogniser was never taught.

    ``word_auroc``: over hypothesis words aligned to a reference word unseen in training, the
    AUROC of low word confidence for the word being wrong. ``utterance_auroc``: over
    utterances, the AUROC of low utterance confidence for holding an unseen word (what active
    learning needs to find them)."""
    from earmark.core.stats import auroc

    low, wrong = [], []
    for ref, hyp in zip(refs, hyps, strict=True):
        r, h = ref.split(), [w.word for w in hyp.words]
        for i, j in aligned_pairs(r, h):
            if r[i] not in train_words:
                low.append(1.0 - hyp.words[j].confidence)
                wrong.append(r[i] != h[j])
    has_unseen = [any(w not in train_words for w in ref.split()) for ref in refs]
    return {
        "word_auroc": auroc(low, wrong),
        "words": len(low),
        "wrong": sum(wrong),
        "utterance_auroc": auroc([1.0 - h.confidence for h in hyps], has_unseen),
        "utterances_with_unseen": sum(has_unseen),
    }


def evaluate_variant(
    checkpoint: Path, test: Path, train_words: set[str], listed: set[str]
) -> dict[str, Any]:
    from earmark.core.manifest import read_manifest
    from training.asr.evaluate import evaluate_asr
    from training.asr.lm import read_decoding
    from training.asr.transcribe import transcribe

    rows = read_manifest(test)
    metrics = evaluate_asr(checkpoint, rows, n_resamples=1000)
    greedy = evaluate_asr(checkpoint, rows, n_resamples=200, decoding="greedy")
    predictions = list(transcribe(checkpoint, rows))
    hyps = [h.text for h in predictions]
    refs = [normalize(r.label.text or "") for r in rows if r.label]
    lexicon = lexicon_words(checkpoint)
    ref_words = [w for r in refs for w in r.split()]
    decoding = read_decoding(checkpoint)
    return {
        "wer": metrics["wer"],
        "greedy_wer": greedy["wer"]["value"],
        "method": decoding["method"],
        "searches_dev_wer": {m: s["dev_wer"] for m, s in decoding.get("searches", {}).items()},
        "dev_wer": decoding["dev_wer"],
        "lexicon_words": len(lexicon),
        "oov_share": sum(w not in lexicon for w in ref_words) / len(ref_words),
        "unseen_in_training": word_recall(refs, hyps, train_words),
        "in_no_list": word_recall(refs, hyps, listed | lexicon),
        "confidence_auroc": metrics["confidence_auroc"],
        "word_confidence_auroc": metrics["word_confidence_auroc"],
        "unseen_confidence": unseen_confidence(refs, predictions, train_words),
    }


def lm_build_seconds(lm_text: Path, n: int = 100_000) -> dict[str, float]:
    """Seconds to build the word 4-gram and the character 6-gram from ``n`` sentences: SLURP
    sentences with words dropped and swapped at random, so that most are distinct."""
    from training.asr.lm import char_speller, spelled
    from training.asr.model import default_vocab
    from training.asr.ngram import kneser_ney_arpa
    from training.asr.tokens import WORD_SEP

    base = [line.split() for line in lm_text.read_text().splitlines() if line]
    rng = random.Random(0)
    sentences = []
    for _ in range(n):
        words = list(rng.choice(base))
        if len(words) > 2 and rng.random() < 0.7:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        if len(words) > 3 and rng.random() < 0.5:
            words.pop(rng.randrange(len(words)))
        sentences.append(" ".join(words))
    t0 = time.perf_counter()
    kneser_ney_arpa(sentences, order=4)
    word_s = time.perf_counter() - t0
    vocab = default_vocab()
    t0 = time.perf_counter()
    kneser_ney_arpa((spelled(s, char_speller(vocab), WORD_SEP) for s in sentences), order=6)
    return {
        "sentences": n,
        "distinct": len(set(sentences)),
        "word_4gram_s": word_s,
        "char_6gram_s": time.perf_counter() - t0,
    }


VARIANTS: dict[str, tuple[str, ...]] = {
    "closed": (),
    "lm_text": ("lm_text",),
    "lm_text_open": ("lm_text", "decoding.open_vocabulary=true"),
    "lm_text_english": ("lm_text", "decoding.english_words=20000"),
    "lm_text_english_open": (
        "lm_text",
        "decoding.english_words=20000",
        "decoding.open_vocabulary=true",
    ),
}


def part_openvocab(
    checkpoint: Path, train_manifest: Path, work: Path, log: Any, variants: list[str]
) -> dict[str, Any]:
    from earmark.core.manifest import read_manifest
    from training.asr.config import load_asr_config, with_lm_text
    from training.asr.lmtext import english_words
    from training.asr.retune import retune_decoding

    if not (checkpoint / "earmark.json").is_file():
        raise SystemExit(f"openvocab: no checkpoint at {checkpoint}: run --parts builtin first")
    work.mkdir(parents=True, exist_ok=True)
    split = slurp_split(work)
    test = spoken(split["test"], work / "spoken_test", seed=1)
    dev = spoken(split["dev"], work / "spoken_dev", seed=2)
    log(f"openvocab: {N_TEST} test and {N_DEV} dev SLURP requests spoken ({test}, {dev})")
    train_words = {
        w
        for r in read_manifest(train_manifest)
        if r.label
        for w in normalize(r.label.text or "").split()
    }
    lm_words = {w for line in split["lm_text"].read_text().splitlines() for w in line.split()}
    results: dict[str, Any] = {"lm_build": lm_build_seconds(split["lm_text"])}
    log(f"openvocab: LM build for 100k sentences {results['lm_build']}")
    for name in variants:
        overrides = tuple(o for o in VARIANTS[name] if o != "lm_text")
        if "english" in name:
            try:
                english = set(english_words(20_000))
            except Exception as exc:  # wordfreq missing: say so, go on
                results[name] = {"skipped": str(exc)}
                continue
        else:
            english = set()
        cfg = load_asr_config(None, ("train.threads=2", *overrides))
        if "lm_text" in VARIANTS[name]:
            cfg = with_lm_text(cfg, [split["lm_text"]])
        out = work / f"ckpt_{name}"
        t0 = time.perf_counter()
        if not (out / "earmark.json").is_file():
            retune_decoding(checkpoint, train_manifest, dev, out, cfg, log=log)
        listed = lm_words if "lm_text" in VARIANTS[name] else set()
        res = evaluate_variant(out, test, train_words, listed | english | train_words)
        res["seconds"] = time.perf_counter() - t0
        results[name] = res
        log(f"openvocab {name}: test WER {res['wer']['value']:.4f} ({res['method']})")
    return results


def openvocab_rows(o: dict[str, Any], row: Any) -> None:
    """Rows of ``scripts/bench_asr.py``'s table."""
    if lb := o.get("lm_build"):
        row(
            "LM build, 100k sentences: word 4-gram / char 6-gram (s)",
            f"{lb['word_4gram_s']:.1f} / {lb['char_6gram_s']:.1f}",
        )
    for name in VARIANTS:
        v = o.get(name)
        if not v or "skipped" in v:
            continue
        target = "<= 0.25" if name != "closed" else "(was ~0.74)"
        row(f"SLURP spoken test WER, {name} ({v['method']})", v["wer"]["value"], target)
        row("  95% CI", f"[{v['wer']['low']:.3f}, {v['wer']['high']:.3f}]")
        row("  greedy WER / dev WER", f"{v['greedy_wer']:.3f} / {v['dev_wer']:.3f}")
        row("  test words outside the lexicon", v["oov_share"])
        u, n = v["unseen_in_training"], v["in_no_list"]
        row(f"  recall of words unseen in training ({u['words']})", u["recall"])
        row(f"  recall of words in no list ({n['words']})", n["recall"])
        row(
            "  utterance / word confidence AUROC",
            f"{v['confidence_auroc']['value']:.3f} / {v['word_confidence_auroc']['value']:.3f}",
        )
        if uc := v.get("unseen_confidence"):
            row(
                f"  word conf. AUROC on words unseen in training ({uc['words']})",
                uc["word_auroc"],
            )
            row(
                f"  utt. conf. AUROC for holding an unseen word ({uc['utterances_with_unseen']})",
                uc["utterance_auroc"],
            )
