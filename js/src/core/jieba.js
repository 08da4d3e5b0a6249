// Python jieba 0.42.1's precise-mode cut, from jieba-wasm (the jieba-rs port) and two rules of
// Python jieba that jieba-rs does not follow (plan decision 6). The jieba module is injected
// (`{ cut(text, hmm) → string[] }`, jieba-wasm's own API), so core stays environment-free.
//
// 1. Blocks. Python cuts the text into blocks of [\u4e00-\u9fd5a-zA-Z0-9+#&._%-] and cuts each
//    on its own; everything else is one token per character ("\r\n" is one). jieba-rs's blocks
//    also take CJK Extension A-H, compatibility ideographs and U+9FD6-U+9FFF, which its HMM then
//    joins ("㐀㐁" is one word there, two in Python). So the blocks are cut here and only a
//    Python block goes to jieba-wasm, whose own block rule then sees one block.
// 2. ASCII runs under the HMM. Python's HMM step (finalseg) cuts the non-Chinese part of a run
//    of single characters with re_skip = [a-zA-Z0-9]+(?:\.\d+)?%?; jieba-rs writes the dot
//    unescaped (any character), so "a-1", "G-20", "1+1", "a_1", "a%1" stay whole there where
//    Python gives "a", "-", "1". A jieba-rs word of that shape (RUST_ONLY) is always such a
//    match: jieba's dictionary has no word of that shape (its only all-ASCII words are
//    ASCII_WORDS). The run of all-ASCII tokens around it (bounded by words holding Chinese,
//    dictionary words and the block's ends, as the run of single characters is in Python) is
//    therefore exactly the text Python cut with re_skip: cut it again with Python's pattern.
//    With the HMM off both cut alike.

/** The Python jieba whose cuts this file reproduces (a model's `jieba_version` should say it). */
export const JIEBA_VERSION = "0.42.1";

const BLOCK = /[\u4e00-\u9fd5a-zA-Z0-9+#&._%-]+/g;
const ASCII = /^[\x00-\x7f]+$/;
const RUST_ONLY = /^[a-zA-Z0-9]+[+#&_%-][0-9]+%?$/;
const PY_SKIP = /[a-zA-Z0-9]+(?:\.[0-9]+)?%?/g;
// The words of jieba 0.42.1's dict.txt made only of ASCII characters.
const ASCII_WORDS = new Set(["AT&T", "c#", "C#", "c++", "C++"]);

/** Python's re_skip.split(text) with the empty pieces left out (jieba/finalseg/__init__.py, cut). */
function pySkipSplit(text, out) {
  let last = 0;
  for (const m of text.matchAll(PY_SKIP)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
}

function cutOther(text, out) {
  const chars = Array.from(text);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i] === "\r" && chars[i + 1] === "\n") {
      out.push("\r\n");
      i++;
    } else {
      out.push(chars[i]);
    }
  }
}

// out.push(...words) would pass every word as an argument: past ~100k (a long block) that is a
// RangeError, so words are appended one by one.
function append(out, words, from = 0, to = words.length) {
  for (let i = from; i < to; i++) out.push(words[i]);
}

function cutBlock(jieba, block, hmm, out) {
  const words = jieba.cut(block, hmm);
  if (!hmm) {
    append(out, words);
    return;
  }
  for (let i = 0; i < words.length;) {
    let j = i;
    let differs = false;
    while (j < words.length && ASCII.test(words[j]) && !ASCII_WORDS.has(words[j])) {
      differs ||= RUST_ONLY.test(words[j]);
      j++;
    }
    if (differs) pySkipSplit(words.slice(i, j).join(""), out);
    else append(out, words, i, Math.max(j, i + 1));
    i = Math.max(j, i + 1);
  }
}

/**
 * `jieba.cut(text, HMM=hmm)` of Python jieba 0.42.1 (precise mode), using jieba-wasm.
 *
 * @param {{cut(text: string, hmm?: boolean): string[]}} jieba  jieba-wasm (or the same API)
 * @param {string} text  normalised text (no lone surrogates)
 * @param {boolean} hmm  whether jieba's HMM cuts unknown words
 * @returns {string[]} the words, which join back into `text`
 */
export function jiebaCut(jieba, text, hmm = true) {
  const out = [];
  let last = 0;
  for (const m of text.matchAll(BLOCK)) {
    if (m.index > last) cutOther(text.slice(last, m.index), out);
    cutBlock(jieba, m[0], hmm, out);
    last = m.index + m[0].length;
  }
  if (last < text.length) cutOther(text.slice(last), out);
  return out;
}

/** Whether a normalised character belongs in a jieba block (re_han_default). */
export function inBlock(ch) {
  if (ch.length !== 1) return false;
  const c = ch.charCodeAt(0);
  return (c >= 0x4e00 && c <= 0x9fd5) || (c < 0x80 && /[a-zA-Z0-9+#&._%-]/.test(ch));
}
