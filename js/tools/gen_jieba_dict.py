"""Generate js/src/core/jieba-freq.txt: jieba's prefix dictionary, for the JavaScript word streams.

    .venv/bin/python js/tools/gen_jieba_dict.py          # rewrites js/src/core/jieba-freq.txt
    .venv/bin/python js/tools/gen_jieba_dict.py --check  # exit 1 if the file is stale

A word stream cuts where runtime/tokenizers.py's find_split does (docs/FORMAT.md, "Chunked
input"); that rule reads jieba's FREQ (every word of dict.txt with its frequency, and every prefix
of a word with frequency 0), its total, and the scores of jieba's route (``log(freq) - log(total)``
summed). jieba-wasm does not expose them, so this file carries them, made here from the installed
Python jieba exactly as ``jieba.Tokenizer.gen_pfdict`` reads dict.txt (the dict.txt jieba-rs
embeds too; POS tags left out). The logarithms are Python's own (``math.log``): JavaScript's
Math.log differs in the last bit for some frequencies (77 of jieba 0.42.1's 5,087 in V8), and with
these the JavaScript route's sums are Python's, bit for bit. tests/test_js_generated.py
regenerates the file in memory and compares.

Format (UTF-8, "\\n" line ends):
- line 1: a comment (``#``) saying what the file is;
- line 2: a JSON header ``{"jieba", "total", "logtotal", "keys", "freqs", "words"}`` (the
  version, jieba's total and ``repr(math.log(total))``, and how many keys FREQ has, frequencies
  and words this file lists);
- ``freqs`` lines ``freq<TAB>log(freq)``: every distinct frequency of a word, ascending, with
  ``repr(math.log(freq))`` (which JavaScript's Number() reads back exactly);
- ``words`` lines ``<k><suffix><TAB>freq``: the words (keys of FREQ that are not only prefixes)
  in code point order, front-coded: ``k`` (one hex digit) is how many leading characters the
  word shares with the previous one, ``suffix`` the rest. The prefixes are not listed: they are
  every prefix of every word (FREQ's keys are prefix-closed), with frequency 0.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "src" / "core" / "jieba-freq.txt"


def prefix_dict() -> tuple[str, dict[str, int], int]:
    """(jieba's version, FREQ, total), as jieba builds them from its own dict.txt."""
    import jieba

    tok = jieba.Tokenizer()
    freq, total = tok.gen_pfdict(tok.get_dict_file())
    return jieba.__version__, freq, total


def render() -> str:
    version, freq, total = prefix_dict()
    prefixes = {w[:i] for w, f in freq.items() if f for i in range(1, len(w))}
    words = sorted(w for w, f in freq.items() if f or w not in prefixes)
    longest = max(map(len, words))
    if longest > 16:  # k is one hex digit (a shared prefix is shorter than the word after it)
        raise ValueError(f"a jieba word of {longest} characters does not fit the format")
    if any(ord(c) > 0xFFFF for w in words for c in w):  # JavaScript reads k in UTF-16 units
        raise ValueError("a jieba word outside the BMP does not fit the format")
    freqs = sorted({freq[w] for w in words if freq[w]})
    header = {"jieba": version, "total": total, "logtotal": math.log(total), "keys": len(freq),
              "freqs": len(freqs), "words": len(words)}
    lines = ["# jieba's dict.txt words and frequencies (jieba by Sun Junyi, MIT License), for rnnkit's word "
             "streams (js/tools/gen_jieba_dict.py)",
             json.dumps(header)]
    lines += [f"{f}\t{math.log(f)!r}" for f in freqs]
    prev = ""
    for w in words:
        k = 0
        while k < len(prev) and k < len(w) and w[k] == prev[k]:
            k += 1
        lines.append(f"{k:x}{w[k:]}\t{freq[w]}")
        prev = w
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed file is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run .venv/bin/python js/tools/gen_jieba_dict.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {OUT} ({len(text.encode('utf-8')):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
