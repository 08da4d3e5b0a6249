// Tag results, B/M/E/S words, and tagging text as it arrives — a port of runtime/tagging.py.
// Positions count code points of the caller's text, as Python's do.

import { StateError } from "./errors.js";
import { isDict, isInt, checkKey, pack, unpack } from "./snapshot.js";
import { Stream, serial } from "./stream.js";
import { checkText, cpLength, wellFormed } from "./util.js";

/**
 * [[token, tag], ...] over the caller's text; spans[i] is token i's [start, end) in code points
 * (for a TagStream: in all the text fed since it started); words holds a B/M/E/S model's words.
 */
export class TagResult extends Array {
  constructor(pairs = [], spans = [], words = null) {
    super();
    for (const pair of pairs) this.push(pair);
    this.spans = spans;
    this.words = words;
  }

  static get [Symbol.species]() {
    return Array; // map/filter of a result give plain arrays
  }
}

/** What a tag stream returned piece by piece, as one result (feeds, then end). */
export function joinTags(parts) {
  const pairs = parts.flatMap((p) => [...p]);
  const spans = parts.flatMap((p) => p.spans);
  const words = parts.some((p) => p.words === null) ? null : parts.flatMap((p) => p.words);
  return new TagResult(pairs, spans, words);
}

/** Word spans [start, end) from B/M/E/S tags: a word starts at B or S and right after E or S. */
export function bmesSpans(tags) {
  const spans = [];
  let start = 0;
  for (let i = 1; i < tags.length; i++) {
    if (tags[i] === "B" || tags[i] === "S" || tags[i - 1] === "E" || tags[i - 1] === "S") {
      spans.push([start, i]);
      start = i;
    }
  }
  if (tags.length) spans.push([start, tags.length]);
  return spans;
}

/** The words of chars (a sequence of strings) cut by tags. */
export function bmesWords(chars, tags) {
  return bmesSpans(tags).map(([a, b]) => chars.slice(a, b).join(""));
}

/** How many leading tags end whole words whatever tags come next (0 if none do). */
function settledWords(tags) {
  const n = tags.length;
  if (n && (tags[n - 1] === "E" || tags[n - 1] === "S")) return n;
  for (let i = n - 1; i > 0; i--) {
    if (tags[i] === "B" || tags[i] === "S" || tags[i - 1] === "E" || tags[i - 1] === "S") return i;
  }
  return 0;
}

/** What a tag stream has read but not yet handed over. */
class Open {
  constructor(pending = "", offset = 0, tokens = [], tail = "", tags = []) {
    this.pending = pending; // fed text not yet tokenized (a word model's open block)
    this.offset = offset; // where pending starts in all the text fed since the start
    this.tokens = tokens; // consumed, not handed over: [text, start, end, the text between it and the token before]
    this.tail = tail; // consumed text after the last token (whitespace a tokenizer drops)
    this.tags = tags; // the settled tags of tokens[:tags.length]
  }

  copy() {
    return new Open(this.pending, this.offset, this.tokens.map((t) => [...t]), this.tail, [...this.tags]);
  }

  /** The snapshot header's "tag" object (pending travels in the header itself). */
  toJSON() {
    return { offset: this.offset, tokens: this.tokens.map((t) => [...t]), tail: this.tail, tags: [...this.tags] };
  }

  /** Check a snapshot's "tag" object field by field (it is untrusted) and rebuild it. */
  static fromJSON(value, pending, labels, { consumed, lookahead }) {
    const bad = () => new StateError("this tag stream snapshot is corrupt (its open tokens do not fit the model)");
    const keys = isDict(value) ? Object.keys(value) : [];
    if (!isDict(value) || keys.length !== 4 || !["offset", "tokens", "tail", "tags"].every((k) => keys.includes(k))) {
      throw bad();
    }
    const { offset, tokens, tail, tags } = value;
    if (!isInt(offset) || offset < 0 || typeof tail !== "string" || !Array.isArray(tokens)) throw bad();
    if (typeof offset === "bigint") throw bad(); // past 2^53: no text fed is that long
    if (!Array.isArray(tags) || tags.length > tokens.length || !tags.every((t) => typeof t === "string" && labels.includes(t))) {
      throw bad();
    }
    const checked = [];
    let previous = 0;
    for (const t of tokens) {
      if (!(Array.isArray(t) && t.length === 4 && typeof t[0] === "string" && t[0] && isInt(t[1]) && isInt(t[2])
            && typeof t[3] === "string" && previous <= t[1] && t[1] < t[2] && t[2] <= offset)) {
        throw bad();
      }
      checked.push([t[0], Number(t[1]), Number(t[2]), t[3]]);
      previous = t[2];
    }
    if (checked.length - tags.length !== Math.min(consumed, lookahead)) throw bad();
    return new Open(pending, offset, checked, tail, [...tags]);
  }
}

/**
 * Tags text that arrives in pieces, handing over each token once its tag is settled; a
 * B/M/E/S model hands over whole words only. Everything feed and end return, joined, equals
 * model.tag(wholeText) however the text was cut into pieces.
 */
export class TagStream {
  constructor(model, { key = null, stream = null, held = null } = {}) {
    // stream and held: the parts of a forked or restored tag stream
    this.model = model;
    this._key = checkKey(key); // signs this tag stream's snapshots (and its forks')
    this.stream = stream ?? new Stream(model, { key: this._key }); // holds the recurrent state
    this._k = model.spec.lookahead;
    this._bmes = model.spec.tagScheme === "bmes";
    this._open = held ?? new Open();
  }

  /** Consume text; resolve to the tokens (and words) settled by it, in order. */
  feed(text) {
    checkText(text);
    return serial([this.stream], async () => {
      const loading = this.model.tokenizer.ready(); // a jieba word stream's first cut loads jieba's dictionary
      if (loading) await loading;
      return this._accept(await this._run(this._takeIds(text)));
    });
  }

  /** The text ends (with text, if given): tag everything still open, return it, start over. */
  end(text = "") {
    checkText(text);
    return serial([this.stream], () => this._end(text));
  }

  /** What end() would return now, leaving the stream exactly as it is. */
  peek() {
    return serial([this.stream], () => this._fork()._end(""));
  }

  /** Back to the start, with nothing fed. */
  reset() {
    this.stream._idle("reset");
    this._reset();
  }

  /** An independent copy that continues from here. */
  fork() {
    this.stream._idle("fork");
    return this._fork();
  }

  /** The tag stream as bytes, in the stream snapshot format; restore with model.tagStream(bytes). */
  snapshot({ key = null } = {}) {
    const s = this.stream;
    s._idle("snapshot");
    const k = key === null || key === undefined ? this._key : checkKey(key);
    return pack(this.model, "tag", s._state, s._logits, { pending: this._open.pending, consumed: s.consumed,
      extra: this._open.toJSON(), key: k });
  }

  /** The tag stream snapshot() wrote, for the model that wrote it (with key: signed with it). */
  static restore(model, data, { key = null } = {}) {
    const k = checkKey(key);
    const { header, state, logits } = unpack(model, data, "tag", { key: k });
    const held = Open.fromJSON(header.tag, header.pending, model.labels, { consumed: header.consumed,
      lookahead: model.spec.lookahead });
    const stream = new Stream(model, { key: k });
    stream._load(state, logits, header.consumed);
    return new TagStream(model, { stream, held, key: k });
  }

  /** Text fed but not yet tokenized (word models only). */
  get pending() {
    return this._open.pending;
  }

  // -- the engine side ------------------------------------------------------------------------
  _reset() {
    this.stream._load(this.model.startState(), this.model.startLogits(), 0, "");
    this._open = new Open();
  }

  _fork() {
    return new TagStream(this.model, { stream: this.stream._fork(), held: this._open.copy(), key: this._key });
  }

  async _end(text) {
    return this._accept(await this._run(this._takeIds(text, true)), true);
  }

  /** Add text and take the ids to run now (with final, the rest and the lookahead pads). */
  _takeIds(text = "", final = false) {
    const held = this._open, tokenizer = this.model.tokenizer;
    const whole = held.pending + wellFormed(text);
    const n = final ? cpLength(whole) : tokenizer.splitPoint(whole);
    const cps = Array.from(whole);
    const chunk = cps.slice(0, n);
    held.pending = cps.slice(n).join("");
    const tokens = tokenizer.tokenizeSpans(chunk.join(""));
    const base = held.offset;
    let end = 0;
    held.offset += n;
    for (const t of tokens) {
      const gap = held.tail + chunk.slice(end, t.start).join("");
      held.tokens.push([chunk.slice(t.start, t.end).join(""), base + t.start, base + t.end, gap]);
      held.tail = "";
      end = t.end;
    }
    held.tail += chunk.slice(end).join("");
    const ids = this.model.vocab.encode(tokens.map((t) => t.text));
    if (final && held.tags.length < held.tokens.length) {
      for (let i = 0; i < this._k; i++) ids.push(this.model.vocab.padId);
    }
    return ids;
  }

  /** Take every step's logits (T × n_labels, flat) of the ids _takeIds gave (run on stream);
   * return the tokens they settle (all of them when final, which starts over). */
  _accept(logits, final = false) {
    const held = this._open, n = this.model.nOut;
    const steps = logits.length / n;
    if (steps) { // the output at step t is the tag of token t − lookahead
      const skip = Math.max(0, this._k - (this.stream.consumed - steps)); // outputs before the first token's tag
      for (let t = skip; t < steps; t++) {
        let top = 0;
        for (let j = 1; j < n; j++) if (logits[t * n + j] > logits[t * n + top]) top = j;
        held.tags.push(this.model.labels[top]);
      }
    }
    let count = held.tags.length;
    if (this._bmes && !final) count = settledWords(held.tags);
    const tokens = held.tokens.splice(0, count), tags = held.tags.splice(0, count);
    let words = null;
    if (this._bmes) { // a word runs from its first token to its last, with the text between them
      words = bmesSpans(tags).map(([a, b]) => tokens[a][0] + tokens.slice(a + 1, b).map(([text, , , gap]) => gap + text).join(""));
    }
    const result = new TagResult(tokens.map(([text], i) => [text, tags[i]]), tokens.map(([, start, stop]) => [start, stop]), words);
    if (final) this._reset();
    return result;
  }

  async _run(ids) {
    if (!ids.length) return new Float32Array(0);
    return this.stream._feedIds(ids, true);
  }
}
