// Text → tokens, a port of runtime/tokenizers.py: the same pieces (per-character normalisation
// from the generated tables of unicode.js), the same tokens and spans (in code points), the same
// stream cuts, the same refusals. A jieba word stream's cut reads jieba's prefix dictionary,
// which jieba-wasm does not expose: it comes from jieba-freq.txt (jiebadict.js), loaded only
// when a stream first needs it.
import { ConfigError, MetadataError, MissingDependencyError, StateError } from "./errors.js";
import { JIEBA_VERSION, inBlock, jiebaCut } from "./jieba.js";
import { JiebaDictionary } from "./jiebadict.js";
import { NORMALIZATIONS, cpLength, isSpace, pieces as textPieces } from "./text.js";
import { checkText, show } from "./util.js";

/** A word stream holds back at most this many normalised characters of one run of Chinese text. */
export const MAX_HELD = 48;
/** The whitespace tokenizer's longest token, in normalised characters. */
export const MAX_WORD = 512;
/** How a word-level tokenizer cuts words. */
export const SEGMENTERS = Object.freeze(["jieba", "whitespace"]);
const WINDOW = 256; // input characters findSplit reads first; it reads further back only if undecided
// Scores closer than this are a tie (rule d of docs/FORMAT.md, "Chunked input"), as in Python.
const TIE = 1e-6;

function token(text, start, end) {
  return Object.freeze({ text, start, end });
}

function splitPoint(index, exact) {
  return Object.freeze({ index, exact });
}

function normalizationText() {
  return `(${NORMALIZATIONS.map(show).join(", ")})`;
}

/** Common interface: tokenize, detokenize, encode/decode with a vocabulary. */
export class Tokenizer {
  constructor({ normalize = "NFKC", lowercase = false, keepWhitespace = true } = {}) {
    if (!NORMALIZATIONS.includes(normalize)) {
      throw new ConfigError(`normalize must be one of ${normalizationText()}, got ${show(normalize)}`);
    }
    this.normalize = normalize;
    this.lowercase = Boolean(lowercase);
    this.keepWhitespace = Boolean(keepWhitespace);
  }

  get kind() { return ""; }

  /** How a word tokenizer cuts words (SEGMENTERS); null for characters. */
  get segmenter() { return null; }

  /** One normalised piece per input code point (a piece may be longer than one character). */
  pieces(text) {
    return textPieces(checkText(text), this.normalize, this.lowercase);
  }

  /** The tokens of `text` with their spans [start, end) in code points of `text`. */
  tokenizeSpans(text) {
    throw new Error(`${this.constructor.name} does not implement tokenizeSpans`);
  }

  /** The tokens of `text`, in order. */
  tokenize(text) {
    return this.tokenizeSpans(text).map((t) => t.text);
  }

  /** Normalise an already-cut token (e.g. a word of a segmented corpus) as text would be. */
  normalizeToken(tokenText) {
    return this.pieces(tokenText).join("");
  }

  /** What goes between two tokens written back as text ("" but for dropped spaces). */
  get separator() {
    return "";
  }

  detokenize(tokens) {
    return Array.from(tokens).join(this.separator);
  }

  /** Token ids of `text`; unknown tokens become vocab.unkId. */
  encode(text, vocab) {
    return vocab.encode(this.tokenize(text));
  }

  /** Text of `ids`; pad/bos/eos are dropped and unknown tokens render as `unk`. */
  decode(ids, vocab, { unk = "\ufffd" } = {}) {
    const out = [];
    for (const raw of ids) {
      const i = Number(raw);
      if (i === vocab.padId || i === vocab.bosId || i === vocab.eosId) continue;
      out.push(i === vocab.unkId ? unk : vocab.token(i));
    }
    return out.join(this.separator);
  }

  /** How much of `text` (a prefix length in code points) tokenizes the same whatever follows it. */
  splitPoint(text) {
    return cpLength(checkText(text));
  }

  /** splitPoint(text) and whether that cut is exact for any continuation: {index, exact}. */
  findSplit(text) {
    return splitPoint(this.splitPoint(text), true);
  }

  /** What findSplit needs loaded first: null when it can cut now, else a promise that resolves
   * when it can (a stream awaits it before it cuts; only jieba word tokenizers load anything). */
  ready() {
    return null;
  }

  /** The config stored in rnnkit.tokenizer (Python's keys). */
  toConfig() {
    return { kind: this.kind, normalize: this.normalize, lowercase: this.lowercase, keep_whitespace: this.keepWhitespace };
  }

  equals(other) {
    return other instanceof Tokenizer && other.constructor === this.constructor
      && JSON.stringify(other.toConfig()) === JSON.stringify(this.toConfig());
  }

  toString() {
    const args = Object.entries(this.toConfig()).filter(([k]) => k !== "kind").map(([k, v]) => `${k}=${show(v)}`);
    return `${this.constructor.name}(${args.join(", ")})`;
  }
}

/**
 * One token per character.
 *
 *     new CharTokenizer().tokenize("ＡI 好")  // ["A", "I", " ", "好"]
 */
export class CharTokenizer extends Tokenizer {
  get kind() { return "char"; }

  tokenizeSpans(text) {
    const keep = this.keepWhitespace;
    const out = [];
    this.pieces(text).forEach((p, i) => {
      if (p && (keep || !isSpace(p))) out.push(token(p, i, i + 1));
    });
    return out;
  }
}

/**
 * Words cut as Python jieba 0.42.1 cuts them in precise mode (`hmm` switches its HMM), from an
 * injected jieba-wasm (`{ cut(text, hmm) }`, see jieba.js).
 *
 *     new WordTokenizer({ jieba }).tokenize("我爱北京")  // ["我", "爱", "北京"]
 *
 * A stream's cut (findSplit) is Python's (docs/FORMAT.md, "Chunked input"): it reads jieba's
 * prefix dictionary, from `dictionary` — a JiebaDictionary, the text of jieba-freq.txt, or a
 * function giving (or resolving to) either — loaded by ready(), which a stream awaits before its
 * first cut. Tokenizing whole texts never loads it.
 */
export class WordTokenizer extends Tokenizer {
  constructor({ hmm = true, jiebaVersion = null, jieba = null, dictionary = null, ...rest } = {}) {
    super(rest);
    this.hmm = Boolean(hmm);
    this.jiebaVersion = jiebaVersion || JIEBA_VERSION;
    this._jieba = jieba;
    this._dictionary = dictionary;
    this._dict = dictionary instanceof JiebaDictionary ? checkDictionary(dictionary) : null;
    this._loading = null;
  }

  get kind() { return "word"; }
  get segmenter() { return "jieba"; }

  _cut(normalized) {
    const jieba = this._jieba;
    if (!jieba || typeof jieba.cut !== "function") {
      throw new MissingDependencyError("word tokenization needs jieba: pass { jieba } (jieba-wasm) to loadModel or "
        + "to the tokenizer, or use rnnkit's node or browser entry, which loads it");
    }
    return jiebaCut(jieba, normalized, this.hmm);
  }

  tokenizeSpans(text) {
    const ps = this.pieces(text);
    if (ps.length === 0) return [];
    const owner = []; // owner[k]: the input character that normalised code point k came from
    ps.forEach((p, i) => {
      for (const _ of p) owner.push(i);
    });
    const out = [];
    let pos = 0;
    for (const word of this._cut(ps.join(""))) {
      const start = pos;
      pos += cpLength(word);
      if (!this.keepWhitespace && isSpace(word)) continue;
      out.push(token(word, owner[start], owner[pos - 1] + 1));
    }
    return out;
  }

  splitPoint(text) {
    return this.findSplit(text).index;
  }

  /** Load jieba's dictionary (once; a failed load is tried again on the next call): null when
   * it is loaded (or there is none to load: then a cut inside Chinese text throws
   * MissingDependencyError), else a promise that resolves when it is. */
  ready() {
    if (this._dict || !this._dictionary) return null;
    if (!this._loading) {
      this._loading = (async () => {
        const source = this._dictionary;
        let dict = typeof source === "function" ? await source() : source;
        if (typeof dict === "string") dict = JiebaDictionary.parse(dict);
        if (!(dict instanceof JiebaDictionary)) {
          throw new ConfigError("jieba's dictionary must be a JiebaDictionary or the text of jieba-freq.txt");
        }
        this._dict = checkDictionary(dict);
      })();
      this._loading.catch(() => {
        this._loading = null;
      });
    }
    return this._loading;
  }

  /** Where a stream may cut `text` (code points): {index, exact}. Reads only the end of the text;
   * a cut inside a run of Chinese text needs jieba's dictionary loaded (ready()). */
  findSplit(text) {
    const chars = Array.from(checkText(text));
    for (let size = WINDOW; ; size *= 4) {
      const offset = Math.max(0, chars.length - size);
      const found = this._splitTail(chars.slice(offset), offset === 0);
      if (found !== null) return splitPoint(offset + found.index, found.exact);
    }
  }

  _splitTail(tail, whole) {
    const ps = textPieces(tail.join(""), this.normalize, this.lowercase);
    const normalized = [];
    const starts = new Map(); // normalised offset of each input character → its index
    ps.forEach((p, i) => {
      starts.set(normalized.length, i);
      for (const ch of p) normalized.push(ch);
    });
    starts.set(normalized.length, ps.length);
    const n = normalized.length;
    let begin = n;
    while (begin && inBlock(normalized[begin - 1])) begin--;
    let limit = n;
    if (begin < n) { // the trailing block may go on in the next chunk
      if (begin === 0 && !whole) return null; // the rule needs the whole block
      const cut = this._cutBlock(normalized.slice(begin), (p) => starts.has(begin + p));
      if (cut.index) return splitPoint(starts.get(begin + cut.index), cut.exact);
      limit = begin;
    } else if (normalized[n - 1] === "\r") { // may be half of "\r\n"
      limit = n - 1;
    }
    for (let p = limit; p > 0; p--) {
      const inside = p < n && inBlock(normalized[p - 1]) && inBlock(normalized[p]);
      const crlf = normalized[p - 1] === "\r" && normalized[p] === "\n";
      if (starts.has(p) && !inside && !crlf) return splitPoint(starts.get(p), true);
    }
    return whole ? splitPoint(0, true) : null;
  }

  // The cut inside the trailing jieba block (normalised code points), 0 for its start: Python's
  // _cut_block, rules (a)-(d) and the backstop of docs/FORMAT.md. allowed(p): p falls between
  // input characters.
  _cutBlock(block, allowed) {
    const dict = this._dict;
    if (!dict) {
      if (!this._dictionary) throw noDictionary();
      throw new StateError("a jieba word stream's cut needs jieba's dictionary, which is not loaded yet: "
        + "await tokenizer.ready() first (streams do)");
    }
    const longest = dict.longest;
    const n = block.length;
    const dag = dict.dag(block); // dag[i]: the last index of every word starting at i, ascending
    const route = dict.route(block, dag);
    // (a) free[p]: no word of the known text crosses p
    const free = new Array(n + 1).fill(false);
    for (let p = 1, reach = 0; p < n; p++) {
      reach = Math.max(reach, dag[p - 1][dag[p - 1].length - 1]);
      free[p] = reach < p;
    }
    // (b) FREQ's keys are prefix-closed, so a word can start at i and run past the end only if
    // block[i:] is a key: no cut after the first such i
    let last = n;
    for (let i = Math.max(0, n - longest); i < n; i++) {
      if (dict.has(block, i, n)) {
        last = i;
        break;
      }
    }
    const words = []; // [start, end] of each word of jieba's route
    for (let x = 0; x < n;) {
      const y = route[x][1] + 1;
      // (d) a (near) tie at x, as in 忙忙忙 = 忙忙+忙 = 忙+忙忙: no cut after it
      if (last > x && nearTie(dict, block, dag, route, x)) last = x;
      words.push([x, y]);
      x = y;
    }
    // (c) a multi-character word ends at the cut
    let exact = 0;
    for (let w = words.length - 1; w >= 0; w--) {
      const [start, end] = words[w];
      if (end - start > 1 && end <= last && end < n && free[end] && allowed(end)) {
        exact = end;
        break;
      }
    }
    if (n - exact <= MAX_HELD) return splitPoint(exact, true);
    // Backstop: a word boundary in [n - MAX_HELD, n - longest] (a free one if there is one)
    const low = n - MAX_HELD, high = n - longest;
    const ends = words.map(([, end]) => end).filter((end) => low <= end && end <= high && allowed(end));
    let forced = -1;
    for (const end of ends) if (free[end] && end > forced) forced = end;
    if (forced < 0) for (const end of ends) if (end > forced) forced = end;
    if (forced < 0) { // every boundary falls inside one input character's normalisation
      forced = exact;
      for (let p = high; p >= low; p--) {
        if (allowed(p)) {
          forced = p;
          break;
        }
      }
    }
    return forced > exact ? splitPoint(forced, false) : splitPoint(exact, true);
  }

  toConfig() {
    return { ...super.toConfig(), hmm: this.hmm, mode: "precise", jieba_version: this.jiebaVersion };
  }
}

/** Whether jieba's best and second-best word at x score within TIE of each other. */
function nearTie(dict, block, dag, route, x) {
  if (dag[x].length < 2) return false;
  const scores = dag[x].map((y) => dict.logFreq(block, x, y + 1) - dict.logTotal + route[y + 1][0]);
  scores.sort((a, b) => a - b);
  return scores[scores.length - 1] - scores[scores.length - 2] < TIE;
}

function noDictionary() {
  return new MissingDependencyError("a jieba word stream's cut needs jieba's dictionary (rnnkit's "
    + "src/core/jieba-freq.txt): pass { jiebaDictionary } to loadModel or { dictionary } to the tokenizer, "
    + "or use rnnkit's node or browser entry, which loads it");
}

function checkDictionary(dict) {
  if (dict.version !== JIEBA_VERSION) {
    throw new ConfigError(`jieba's dictionary is jieba ${show(dict.version)}'s; rnnkit cuts as jieba ${JIEBA_VERSION} does`);
  }
  return dict;
}

/**
 * Words split on Unicode whitespace (str.isspace): for English and other space-separated or
 * pre-tokenized text. A token is a maximal run of non-whitespace pieces, cut into pieces of at
 * most MAX_WORD normalised characters; whitespace is dropped by default and written back as one
 * space (with keepWhitespace every whitespace run is a token too and decoding joins tokens as they are).
 *
 *     new WhitespaceTokenizer().tokenize("The  cat\tsat.")  // ["The", "cat", "sat."]
 *     new WhitespaceTokenizer().findSplit("the ca")         // {index: 4, exact: true}
 */
export class WhitespaceTokenizer extends Tokenizer {
  constructor({ keepWhitespace = false, ...rest } = {}) {
    super({ ...rest, keepWhitespace });
  }

  get kind() { return "word"; }
  get segmenter() { return "whitespace"; }

  get separator() {
    return this.keepWhitespace ? "" : " ";
  }

  tokenizeSpans(text) {
    const ps = this.pieces(text);
    return this._runs(ps).filter((r) => r.kept).map((r) => token(ps.slice(r.start, r.end).join(""), r.start, r.end));
  }

  // {start, end, kept, closed} of every run (a word or a stretch of whitespace, at most MAX_WORD
  // normalised characters): kept, it is a token; closed, no continuation can change it.
  _runs(ps) {
    const runs = [];
    const n = ps.length;
    let i = 0;
    while (i < n) {
      const space = isSpace(ps[i]);
      const start = i;
      let size = 0;
      while (i < n && isSpace(ps[i]) === space && size + cpLength(ps[i]) <= MAX_WORD) {
        size += cpLength(ps[i]);
        i++;
      }
      runs.push({ start, end: i, kept: this.keepWhitespace || !space, closed: i < n || size === MAX_WORD });
    }
    return runs;
  }

  /** The end of the last closed run: the open word (or whitespace run) is held back. */
  splitPoint(text) {
    let cut = 0;
    for (const { start, end, kept, closed } of this._runs(this.pieces(text))) cut = closed || !kept ? end : start;
    return cut;
  }

  toConfig() {
    return { ...super.toConfig(), segmenter: this.segmenter };
  }
}

const TYPED_KEYS = [["lowercase", "boolean", "true or false"], ["keep_whitespace", "boolean", "true or false"],
  ["hmm", "boolean", "true or false"], ["jieba_version", "string", "a string"]];

/**
 * Rebuild a tokenizer from toConfig() (as stored in rnnkit.tokenizer), with Python's refusals
 * (MetadataError, key "rnnkit.tokenizer").
 *
 * options.jieba: jieba-wasm (`{ cut(text, hmm) }`), needed by jieba word tokenizers to tokenize;
 * options.jiebaDictionary: what their streams' cuts read (WordTokenizer's `dictionary`);
 * options.onWarning(message): told when the file's jieba_version is not the 0.42.1 this
 * runtime cuts as (its cuts, and so its ids, may differ).
 */
export function tokenizerFromConfig(config, { jieba = null, jiebaDictionary = null, onWarning = null } = {}) {
  if (config instanceof Map) config = Object.fromEntries(config);
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new MetadataError("tokenizer config must be a JSON object", "rnnkit.tokenizer");
  }
  const has = (k) => Object.prototype.hasOwnProperty.call(config, k);
  for (const [key, type, what] of TYPED_KEYS) {
    if (has(key) && typeof config[key] !== type) {
      throw new MetadataError(`tokenizer ${key} must be ${what}, got ${show(config[key]).slice(0, 40)}`, "rnnkit.tokenizer");
    }
  }
  const common = {};
  if (has("normalize")) common.normalize = config.normalize;
  if (has("lowercase")) common.lowercase = config.lowercase;
  if (has("keep_whitespace")) common.keepWhitespace = config.keep_whitespace;
  const segmenter = has("segmenter") ? config.segmenter : "jieba";
  try {
    if (config.kind === "char") return new CharTokenizer(common);
    if (config.kind === "word" && segmenter === "whitespace") return new WhitespaceTokenizer(common);
    if (config.kind === "word" && segmenter === "jieba") {
      const tok = new WordTokenizer({ ...common, hmm: has("hmm") ? config.hmm : true,
        jiebaVersion: has("jieba_version") ? config.jieba_version : null, jieba, dictionary: jiebaDictionary });
      if (tok.jiebaVersion !== JIEBA_VERSION && typeof onWarning === "function") {
        onWarning(`this model's words were cut by jieba ${tok.jiebaVersion} and rnnkit's JavaScript runtime cuts as `
          + `jieba ${JIEBA_VERSION} does; cuts may differ: re-export the model with jieba==${JIEBA_VERSION} for `
          + "identical results");
      }
      return tok;
    }
  } catch (e) {
    if (e instanceof ConfigError) throw new MetadataError(e.message, "rnnkit.tokenizer");
    throw e;
  }
  if (config.kind === "word") {
    throw new MetadataError(`unknown word segmenter ${show(segmenter ?? null).slice(0, 40)}; expected one of `
      + `${SEGMENTERS.join(", ")}`, "rnnkit.tokenizer");
  }
  throw new MetadataError(`unknown tokenizer kind ${show(config.kind ?? null)}; expected 'char' or 'word'`,
    "rnnkit.tokenizer");
}
