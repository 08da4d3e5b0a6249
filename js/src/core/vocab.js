// Token ↔ id mapping with fixed special tokens: a port of runtime/vocab.py.
import { ConfigError, MetadataError } from "./errors.js";
import { JsonError, loads, toPlain } from "./pyjson.js";
import { sha256Hex } from "./sha256.js";
import { cpLength } from "./text.js";
import { show, typeName } from "./util.js";

/** Fixed ids 0..3 in every rnnkit vocabulary; a text token spelled like one encodes as unknown. */
export const SPECIALS = Object.freeze({ pad: "<pad>", unk: "<unk>", bos: "<bos>", eos: "<eos>" });
const SPECIAL_NAMES = Object.freeze(Object.values(SPECIALS));
/** Longer tokens are left out of vocabularies (the model format caps them), in code points. */
export const MAX_TOKEN_CHARS = 512;

// Python orders strings by code point; JavaScript's < compares UTF-16 units
function byCodePoint(a, b) {
  const x = Array.from(a, (c) => c.codePointAt(0));
  const y = Array.from(b, (c) => c.codePointAt(0));
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * An ordered list of tokens; the index of a token is its id. Ids 0–3 are `<pad>`, `<unk>`,
 * `<bos>`, `<eos>`. Unknown tokens encode as `unkId` and never throw.
 *
 *     const v = Vocabulary.build([["a", "b", "a"]]);
 *     v.encode(["a", "z"]);  // [4, 1]
 *     v.decode([4, 5]);      // ["a", "b"]
 */
export class Vocabulary {
  constructor(tokens) {
    tokens = Array.from(tokens);
    if (tokens.length < 4 || SPECIAL_NAMES.some((name, i) => tokens[i] !== name)) {
      throw new ConfigError(`a vocabulary must start with ${show(SPECIAL_NAMES)}; build one with Vocabulary.build()`);
    }
    const regular = tokens.slice(4);
    for (const token of regular) {
      if (typeof token !== "string" || !token) {
        throw new ConfigError(`vocabulary tokens must be non-empty strings, got ${show(token)}`);
      }
    }
    const index = new Map(regular.map((t, i) => [t, i + 4]));
    if (index.size !== regular.length || regular.some((t) => SPECIAL_NAMES.includes(t))) {
      const counts = new Map();
      for (const t of regular) counts.set(t, (counts.get(t) ?? 0) + 1);
      const dupes = [...counts].filter(([t, n]) => n > 1 || SPECIAL_NAMES.includes(t)).map(([t]) => t).sort(byCodePoint);
      throw new ConfigError(`vocabulary has duplicate or reserved tokens: ${show(dupes.slice(0, 5))}`);
    }
    this._tokens = Object.freeze(tokens);
    this._index = index;
  }

  get padId() { return 0; }
  get unkId() { return 1; }
  get bosId() { return 2; }
  get eosId() { return 3; }

  /**
   * Count tokens and keep those seen at least `minFreq` times; `maxSize` caps the total size,
   * the four specials included. Most frequent first, ties by the token's code points; tokens
   * longer than 512 code points are left out.
   */
  static build(sequences, { minFreq = 1, maxSize = null } = {}) {
    if (!(Number.isInteger(minFreq) && minFreq >= 1)) throw new ConfigError(`min_freq must be at least 1, got ${show(minFreq)}`);
    if (maxSize !== null && !(Number.isInteger(maxSize) && maxSize >= SPECIAL_NAMES.length + 1)) {
      throw new ConfigError(`max_size must be at least 5 (4 specials + 1 token), got ${show(maxSize)}`);
    }
    const counts = new Map();
    for (const seq of sequences) for (const t of seq) counts.set(t, (counts.get(t) ?? 0) + 1);
    let kept = [...counts].filter(([t, n]) => t && !SPECIAL_NAMES.includes(t) && cpLength(t) <= MAX_TOKEN_CHARS
      && n >= minFreq);
    kept.sort((a, b) => b[1] - a[1] || byCodePoint(a[0], b[0]));
    kept = kept.map(([t]) => t);
    if (maxSize !== null) kept = kept.slice(0, maxSize - SPECIAL_NAMES.length);
    return new Vocabulary([...SPECIAL_NAMES, ...kept]);
  }

  /** The number of tokens, the specials included. */
  get length() {
    return this._tokens.length;
  }

  /** All tokens, index = id (a copy). */
  get tokens() {
    return [...this._tokens];
  }

  /** Whether `token` is a regular token of the vocabulary (the specials are not: they are never text). */
  has(token) {
    return this._index.has(token);
  }

  /** The token of id `tokenId`; negative ids count from the end, as a Python list's do (vocab[i]). */
  at(tokenId) {
    if (typeof tokenId !== "number" || !Number.isInteger(tokenId)) {
      throw new TypeError(`vocabulary ids are integers, got ${typeName(tokenId)}`);
    }
    const n = this._tokens.length;
    if (tokenId < -n || tokenId >= n) throw new RangeError(`token id ${tokenId} is outside the vocabulary (0..${n - 1})`);
    return this._tokens[tokenId < 0 ? tokenId + n : tokenId];
  }

  /** The id of `token`, or unkId. */
  id(token) {
    return this._index.get(token) ?? this.unkId;
  }

  /** The token with this id; ConfigError outside 0..length-1. */
  token(id) {
    if (!(Number.isInteger(id) && id >= 0 && id < this._tokens.length)) {
      throw new ConfigError(`token id ${show(id)} is outside the vocabulary (0..${this._tokens.length - 1})`);
    }
    return this._tokens[id];
  }

  /** The ids of `tokens` (unknown ones are unkId). */
  encode(tokens) {
    return Array.from(tokens, (t) => this._index.get(t) ?? 1);
  }

  /** The tokens of `ids` (the specials by their names). */
  decode(ids) {
    return Array.from(ids, (i) => this.token(Number(i)));
  }

  equals(other) {
    return other instanceof Vocabulary && other._tokens.length === this._tokens.length
      && other._tokens.every((t, i) => t === this._tokens[i]);
  }

  /** The JSON list stored in a model's rnnkit.vocab (as Python's json.dumps(tokens, ensure_ascii=False)). */
  toJson() {
    return `[${this._tokens.map((t) => JSON.stringify(t)).join(", ")}]`;
  }

  /** The vocabulary of toJson() text (a model's rnnkit.vocab); MetadataError if malformed. */
  static fromJson(text) {
    if (typeof text !== "string") throw new TypeError(`vocabulary JSON must be str, got ${typeName(text)}`);
    let tokens;
    try {
      tokens = toPlain(loads(text).value);
    } catch (e) {
      if (!(e instanceof JsonError || e instanceof RangeError)) throw e;
      throw new MetadataError(`vocabulary is not valid JSON (${e.message}); re-export the model`, "rnnkit.vocab");
    }
    if (!Array.isArray(tokens)) throw new MetadataError("vocabulary must be a JSON list of strings", "rnnkit.vocab");
    const long = tokens.findIndex((t) => typeof t === "string" && cpLength(t) > MAX_TOKEN_CHARS);
    if (long >= 0) {
      throw new MetadataError(`vocabulary token ${long} is longer than ${MAX_TOKEN_CHARS} characters`, "rnnkit.vocab");
    }
    try {
      return new Vocabulary(tokens);
    } catch (e) {
      if (e instanceof ConfigError) throw new MetadataError(e.message, "rnnkit.vocab");
      throw e;
    }
  }

  /** The lowercase hex SHA-256 of the vocabulary's canonical JSON (rnnkit.vocab_sha256). */
  checksum() {
    return vocabChecksum(this._tokens);
  }

  toString() {
    return `Vocabulary(size=${this.length}, sample=${show(this._tokens.slice(4, 10))})`;
  }
}

/**
 * The canonical JSON of a token list: Python's json.dumps(tokens, ensure_ascii=False,
 * separators=(",", ":")). JSON.stringify escapes exactly what that escapes (", \, \b \t \n \f
 * \r, other C0 controls as lowercase \u00xx) and writes every other code point as itself.
 */
export function vocabJson(tokens) {
  return `[${Array.from(tokens, (t) => JSON.stringify(t)).join(",")}]`;
}

/** rnnkit.vocab_sha256 of a token list: hex SHA-256 of the UTF-8 of vocabJson(tokens). */
export function vocabChecksum(tokens) {
  return sha256Hex(new TextEncoder().encode(vocabJson(tokens)));
}
