// Text as the Python runtime sees it: a sequence of code points (Python's str), each normalised
// on its own into a "piece" with the tables of unicode.js (never String.prototype.normalize or
// toLowerCase: engines ship other Unicode versions), whitespace as Python's str.isspace, and
// helpers between code-point positions (what spans and limits count) and UTF-16 indices.
import { TABLES, UNICODE_VERSION, WHITESPACE } from "./unicode.js";

export { UNICODE_VERSION };

export const NORMALIZATIONS = Object.freeze(["NFKC", "NFC", null]);

const SPACES = new Set(Array.from(WHITESPACE, (ch) => ch.codePointAt(0)));
const decoded = new Map(); // table key → Map(code point → piece), built on first use

function decodeInto(map, { runs, multi }) {
  let start = 0;
  if (runs) {
    for (const record of runs.split(",")) {
      const [gap, shift, count = 1, step = 1] = record.split(":").map((f) => parseInt(f, 36));
      start += gap;
      for (let i = 0, cp = start; i < count; i++, cp += step) {
        if (shift === 0) map.delete(cp);
        else map.set(cp, String.fromCodePoint(cp + shift));
      }
    }
  }
  if (multi[0]) {
    const pieces = multi[1].split("\u001f");
    let cp = 0;
    multi[0].split(",").forEach((gap, i) => {
      cp += parseInt(gap, 36);
      map.set(cp, pieces[i]);
    });
  }
  return map;
}

/** The code point → piece map of a (normalize, lowercase) config, or null when every piece is its character. */
export function pieceTable(normalize, lowercase) {
  if (!NORMALIZATIONS.includes(normalize)) throw new TypeError(`unknown normalization ${normalize}`);
  if (normalize === null && !lowercase) return null;
  const key = `${normalize ?? "none"}${lowercase ? "+lower" : ""}`;
  let map = decoded.get(key);
  if (!map) {
    // a "+lower" table is stored as what differs from its normalisation's own table
    map = decodeInto(new Map(lowercase && normalize !== null ? pieceTable(normalize, false) : []), TABLES[key]);
    decoded.set(key, map);
  }
  return map;
}

function isSurrogate(cp) {
  return cp >= 0xd800 && cp <= 0xdfff;
}

/** The code points of `text` as strings, a lone surrogate read as U+FFFD (Python's list(text), made storable). */
export function codePoints(text) {
  const out = [];
  for (const ch of text) out.push(ch.length === 1 && isSurrogate(ch.charCodeAt(0)) ? "\ufffd" : ch);
  return out;
}

/**
 * One normalised piece per code point of `text`, as runtime/tokenizers.py Tokenizer._pieces:
 * a lone surrogate is U+FFFD; then, per character, the table's piece (ASCII is only lowercased).
 */
export function pieces(text, normalize = "NFKC", lowercase = false) {
  if (typeof text !== "string") throw new TypeError(`text must be a string, got ${typeof text}`);
  const table = pieceTable(normalize, lowercase);
  const out = codePoints(text);
  if (table) {
    for (let i = 0; i < out.length; i++) {
      const p = table.get(out[i].codePointAt(0));
      if (p !== undefined) out[i] = p;
    }
  }
  return out;
}

/** Python's str.isspace: `text` is not empty and every code point of it is whitespace. */
export function isSpace(text) {
  if (!text) return false;
  for (const ch of text) if (!SPACES.has(ch.codePointAt(0))) return false;
  return true;
}

/** Whether one code point is whitespace (str.isspace). */
export function isSpaceCodePoint(cp) {
  return SPACES.has(cp);
}

/** Python's len(text): the number of code points (a lone surrogate is one). */
export function cpLength(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++, n++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  return n;
}

/** UTF-16 index of every code point of `text`, then text.length: offsets[k] is where code point k starts. */
export function codePointOffsets(text) {
  const offsets = [];
  for (let i = 0; i < text.length; i++) {
    offsets.push(i);
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
  }
  offsets.push(text.length);
  return offsets;
}

/** The UTF-16 index where code point `k` of `text` starts (text.length for k = its length). */
export function cpToUtf16(text, k) {
  const offsets = codePointOffsets(text);
  if (!Number.isInteger(k) || k < 0 || k >= offsets.length) {
    throw new RangeError(`code point index ${k} is outside 0..${offsets.length - 1}`);
  }
  return offsets[k];
}

/** The code point index of UTF-16 index `i` (inside a pair: the pair's code point). */
export function utf16ToCp(text, i) {
  if (!Number.isInteger(i) || i < 0 || i > text.length) {
    throw new RangeError(`UTF-16 index ${i} is outside 0..${text.length}`);
  }
  const offsets = codePointOffsets(text);
  let lo = 0;
  let hi = offsets.length - 1;
  while (lo < hi) { // the last k with offsets[k] <= i
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= i) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Python's text[start:end] for code point positions (non-negative, clamped to the length). */
export function cpSlice(text, start, end) {
  const offsets = codePointOffsets(text);
  const n = offsets.length - 1;
  const a = Math.min(Math.max(start, 0), n);
  const b = end === undefined ? n : Math.min(Math.max(end, a), n);
  return text.slice(offsets[a], offsets[b]);
}
