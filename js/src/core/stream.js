// Stream: one caller's recurrent state over a shared Model — a port of runtime/stream.py.
//
// Every call that runs the model is async; a stream runs its own calls one after another (an
// internal promise chain), so `feed` twice without `await` still reads the text in order.

import { InputError, NonFiniteError, StateError, TaskError } from "./errors.js";
import { checkKey, pack, unpack } from "./snapshot.js";
import { checkText, cpLength, typeName, wellFormed } from "./util.js";

export const FEED_CHARS = 16_384; // code points tokenized at a time by feed, as a live stream would get them

/** Runs fn after every call queued on `holders` (streams), and makes it the call they wait on next.
 * A holder's _tail may be a call that rejects (Stream.step's direct path): fn runs after it either way. */
export function serial(holders, fn) {
  const before = holders.length === 1 ? holders[0]._tail : Promise.allSettled(holders.map((h) => h._tail));
  for (const h of holders) h._busy++; // queued or running: snapshot() and fork() must wait for it
  const go = () => fn();
  const run = before.then(go, go).finally(() => {
    for (const h of holders) h._busy--;
  });
  const settled = run.then(() => undefined, () => undefined);
  for (const h of holders) h._tail = settled;
  return run;
}

export class Stream {
  /**
   * A stream at the start state; use model.stream() rather than this.
   * @param {import("./model.js").Model} model
   * @param {{key?: Uint8Array|string|null}} [options]
   */
  constructor(model, { key = null } = {}) {
    this.model = model;
    this._key = checkKey(key); // signs this stream's snapshots (and its forks')
    this._size = model.vocabSize;
    model.callLength(1); // a model too large for even one step is refused before any stream exists
    this._tail = Promise.resolve();
    this._busy = 0;
    this._load(model.startState(), model.startLogits(), 0, "");
  }

  // -- advancing ------------------------------------------------------------------------------
  /** Advance one token; resolve to the logits (n_out) after it. Held-back text is consumed first. */
  step(tokenId) {
    const token = checkTokenId(tokenId, this._size);
    if (this._busy !== 0) return serial([this], () => this._step(token));
    // nothing queued or running on this stream: run now, without a promise chain to wait on
    this._busy++;
    const run = this._stepNow(token);
    this._tail = run;
    return run;
  }

  /** Tokenize and consume text; resolve to the logits of the last consumed step, or null when
   * nothing new was consumed (a word model holding back an open word). */
  feed(text) {
    checkText(text);
    return serial([this], () => this._feed(text));
  }

  /** Consume any held-back text; resolve to the latest logits (null before any step). */
  flush() {
    return serial([this], () => this._flush());
  }

  // -- reading --------------------------------------------------------------------------------
  /** Logits (n_out) after the last consumed token (for lm: of the next token); null before the
   * first token, except in an lm that learned <bos>. Read only. */
  get logits() {
    return this._logits;
  }

  /** Copies of the state arrays, each layers × 1 × hidden (C order). */
  get state() {
    return this._state.map((a) => a.slice());
  }

  /** Text fed but not yet consumed (word models only). */
  get pending() {
    return this._pending;
  }

  /** The running classification of what was consumed so far (null before any token). */
  prediction() {
    if (this.model.task !== "classify") {
      throw new TaskError(`prediction() needs a classify model; this is a ${this.model.task} model `
        + "(use model.classify() only with a classifier)");
    }
    return this._logits === null ? null : this.model.prediction(this._logits);
  }

  // -- lifecycle ------------------------------------------------------------------------------
  /** Back to the start state, with nothing pending. */
  reset() {
    this._idle("reset");
    this._load(this.model.startState(), this.model.startLogits(), 0, "");
  }

  /** An independent copy that continues from here (signing its snapshots with the same key). */
  fork() {
    this._idle("fork");
    return this._fork();
  }

  /**
   * The stream as bytes (state, pending text, last logits, a checksum); restore with
   * model.stream(bytes). With key (default: the stream's own), signed with HMAC-SHA256.
   */
  snapshot({ key = null } = {}) {
    this._idle("snapshot");
    const k = key === null || key === undefined ? this._key : checkKey(key);
    return pack(this.model, "stream", this._state, this._logits, { pending: this._pending,
      consumed: this.consumed, key: k });
  }

  /** The stream snapshot() wrote, for the model that wrote it (with key: signed with it). */
  static restore(model, data, { key = null } = {}) {
    const k = checkKey(key);
    const { header, state, logits } = unpack(model, data, "stream", { key: k });
    const stream = new Stream(model, { key: k });
    stream._load(state, logits, header.consumed, header.pending);
    return stream;
  }

  // -- the engine side (streams, tag streams and batchers of this package) -----------------
  _idle(call) {
    if (this._busy) {
      throw new StateError(`${call}() while a feed, step or flush of this stream is still running: await it first`);
    }
  }

  _fork() {
    const twin = new Stream(this.model, { key: this._key });
    twin._load(this._state, this._logits, this.consumed, this._pending);
    return twin;
  }

  async _stepNow(token) {
    try {
      return await this._step(token);
    } finally {
      this._busy--;
    }
  }

  async _step(token) {
    if (this._pending) await this._flush();
    const { logits, state } = await this.model._call(BigInt64Array.of(BigInt(token)), 1, 1, this._state);
    this._state = state;
    this._logits = logits;
    this.consumed += 1;
    return logits;
  }

  async _feed(text) {
    const loading = this.model.tokenizer.ready(); // a jieba word stream's first cut loads jieba's dictionary
    if (loading) await loading;
    const cps = Array.from(text);
    let logits = null;
    for (let start = 0; start < cps.length; start += FEED_CHARS) { // a long text costs one piece's tokens
      const ids = this._takeIds(cps.slice(start, start + FEED_CHARS).join(""));
      if (ids.length) logits = await this._feedIds(ids);
    }
    return logits;
  }

  async _flush() {
    const ids = this._takeIds("", true);
    if (ids.length) await this._feedIds(ids);
    return this._logits;
  }

  /** Add text to the held-back text and take the ids ready to run now (all of it when final). */
  _takeIds(text = "", final = false) {
    const whole = this._pending + wellFormed(text);
    const n = final ? cpLength(whole) : this.model.tokenizer.splitPoint(whole);
    const cps = Array.from(whole);
    this._pending = cps.slice(n).join("");
    return n ? this.model.encode(cps.slice(0, n).join("")) : [];
  }

  /**
   * Consume ids (at least one) in calls of model.callLength() steps; resolve to the last
   * step's logits, or with every, every step's (T × n_out, flat). Held-back text is not
   * consumed first.
   */
  async _feedIds(ids, every = false) {
    const kept = every ? new Float32Array(ids.length * this.model.nOut) : null;
    const tokens = BigInt64Array.from(ids, BigInt);
    if (ids.length <= this.model.callLength(1)) { // one session call: no chunking generator
      const n = this.model.nOut, steps = ids.length;
      const { logits, state } = await this.model._call(tokens, 1, steps, this._state);
      this._state = state;
      this._logits = steps === 1 ? logits : logits.slice((steps - 1) * n, steps * n);
      this.consumed += steps;
      if (kept) kept.set(logits, 0);
      return every ? kept : this._logits;
    }
    for await (const { start, logits, steps, state } of this.model._chunks(tokens, 1, ids.length, this._state)) {
      const n = this.model.nOut;
      this._state = state;
      this._logits = logits.slice((steps - 1) * n, steps * n);
      this.consumed += steps;
      if (kept) kept.set(logits, start * n);
    }
    return every ? kept : this._logits;
  }

  /** Make state (arrays layers × 1 × hidden), logits and consumed this stream's own (copied). */
  _load(state, logits, consumed, pending = null) {
    for (const a of state) checkGiven(a, "state");
    if (logits !== null) checkGiven(logits, "logits");
    this._state = state.map((a) => Float32Array.from(a));
    this._logits = logits === null ? null : Float32Array.from(logits);
    this.consumed = consumed;
    if (pending !== null) this._pending = pending;
  }
}

function checkGiven(array, what) {
  for (let i = 0; i < array.length; i++) {
    if (!Number.isFinite(array[i])) {
      throw new NonFiniteError(`the ${what} given holds NaN or infinite values; start from model.startState() `
        + "or a good snapshot");
    }
  }
}

/** A token id checked against the vocabulary size: TypeError if not an integer, InputError if outside. */
export function checkTokenId(tokenId, size) {
  if (typeof tokenId !== "number" || !Number.isInteger(tokenId)) {
    throw new TypeError(`a token id must be an int, got ${typeName(tokenId)}`);
  }
  if (!(tokenId >= 0 && tokenId < size)) {
    throw new InputError(`token id ${tokenId} is outside the vocabulary (0..${size - 1})`);
  }
  return tokenId;
}
