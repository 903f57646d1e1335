"""Two runs on the same labels train the same NLU: the tokenizer's vocabulary is the same in
every process (the library's WordPiece trainer numbers tokens in hash-map order)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
from training.nlu.tokenize import train_tokenizer
texts = ["play some jazz", "play the news", "set an alarm for seven", "what is the weather",
         "turn the lights off", "turn on the radio", "remind me to call mum"] * 3
tok = train_tokenizer(texts)
print(sorted(tok.get_vocab().items(), key=lambda kv: kv[1]))
print(tok.tokenize("jazzy weathers"))
"""


def test_the_tokenizer_is_the_same_in_every_process() -> None:
    runs = [
        subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout
    # an unseen word falls back to its longest known word, then characters
    assert "['jazz', '##y', 'weather', '##s']" in runs[0].stdout
