// Model: one loaded file, shared by every stream — a port of runtime/model.py (and of the
// engine calls of runtime/engine.py). The model holds no per-call state: streams own theirs.
//
// Arrays: a state is one Float32Array per state tensor (h, then c for an LSTM), each
// layers × batch × hidden in C order; logits are a flat Float32Array with their dims beside.

import { StreamBatcher } from "./batcher.js";
import {
  BudgetError, ConfigError, InputError, MetadataError, NonFiniteError, StateError, TaskError,
} from "./errors.js";
import { givenTokens, tagTokenLists, tokenIds, tokenLists } from "./pretokenized.js";
import { MAX_SEED, Sampler, StopMatcher, continuation } from "./sampling.js";
import { FEED_CHARS, Stream } from "./stream.js";
import { TagStream, joinTags } from "./tagging.js";
import { argmax, byteSize, checkText, cpLength, isPositiveInt, show, typeName } from "./util.js";

export const CALL_STEPS = 256; // steps per session call for long inputs: memory of 256 steps, calls stay few

/** A classification: the best label, its probability, and every label's probability. */
export class Prediction {
  constructor(label, score, scores) {
    this.label = label;
    this.score = score;
    this.scores = scores;
    Object.freeze(this);
  }
}

export class Model {
  /**
   * Use loadModel(); this wires what it read (LOAD's openModel and TOK's tokenizer) together.
   * @param {{spec: object, session: object, identity: string, warnings: string[], budget: object,
   *          tokenizer: object, vocab: object, ort: object, name?: string}} parts
   */
  constructor({ spec, session, identity, warnings, budget, tokenizer, vocab, ort, name = "the model file" }) {
    this.spec = spec;
    this.session = session;
    this.identity = identity; // hex SHA-256 of the file's bytes
    this.warnings = warnings;
    this.budget = budget; // graphcheck.js's Budget: callBytes, maxBatch, maxSeq
    this.tokenizer = tokenizer;
    this.vocab = vocab;
    this.vocabSize = spec.vocab.length;
    this.task = spec.task;
    this.labels = [...spec.labels];
    this.nOut = spec.nOut;
    this.name = name;
    this._ort = ort;
    this._startState = null;
    this._startLogits = null;
  }

  /** The model with its start state computed: one step runs now, so a graph onnxruntime cannot
   * run, or whose weights give NaN, fails at load rather than at the first call. */
  static async create(parts) {
    const model = new Model(parts);
    await model._start();
    return model;
  }

  async _start() {
    const afterBos = this.task === "lm" && this.spec.bos;
    const token = afterBos ? this.vocab.bosId : this.vocabSize - 1;
    let out;
    try {
      out = await this._session(BigInt64Array.of(BigInt(token)), 1, 1, this.zeroState(1));
    } catch (e) {
      const why = String(e?.message ?? e).split(/\s+/).join(" ").slice(0, 200);
      throw new MetadataError(`inconsistent model: onnxruntime cannot run one step of the graph (${why}); `
        + "re-export the model", null, { cause: e });
    }
    if (![out.logits, ...out.state].every(allFinite)) {
      throw new NonFiniteError(`${this.name}: one step of the model gives NaN or infinite values; its weights `
        + "are corrupt: re-export a good checkpoint");
    }
    this._startState = afterBos ? out.state : this.zeroState(1);
    this._startLogits = afterBos ? out.logits : null;
  }

  // -- the engine -----------------------------------------------------------------------------
  /** Zero state arrays, each layers × batch × hidden. */
  zeroState(batch = 1) {
    const size = this.spec.layers * batch * this.spec.hidden;
    return Array.from({ length: this.spec.nState }, () => new Float32Array(size));
  }

  /** New arrays holding where every stream starts (each layers × batch × hidden): after <bos>
   * for an lm that learned it, zeros otherwise. */
  startState(batch = 1) {
    return this._startState.map((one) => repeatRows(one, this.spec.layers, this.spec.hidden, batch));
  }

  /** A copy of the logits a stream starts with: an lm's after <bos>, else null. */
  startLogits() {
    return this._startLogits === null ? null : this._startLogits.slice();
  }

  /** The most steps one session call of `batch` rows carries: CALL_STEPS, fewer where
   * maxCallBytes needs; BudgetError if not even one fits. */
  callLength(batch = 1) {
    const fits = this.budget.maxSeq(batch);
    if (fits < 1) {
      const need = this.budget.callBytes(batch, 1), cap = this.budget.maxCallBytes;
      throw new BudgetError(`a batch of ${batch} rows needs ${byteSize(need)} a step (${byteSize(this.budget.rowBytes)} `
        + `a token: logits ${this.nOut}, state ${this.spec.layers} × ${this.spec.hidden}), more than the `
        + `${byteSize(cap)} a call may use: use smaller batches or raise maxCallBytes`, need, cap);
    }
    return Math.min(CALL_STEPS, fits);
  }

  /**
   * One session call: ids (B rows of T token ids) → {logits (B × T × n_out, flat), dims, state}.
   * state defaults to zeros (an lm's streams start after <bos>: pass startState(B)).
   */
  async run(ids, state = null) {
    const rectangular = Array.isArray(ids) && ids.length > 0 && ids.every((row) => Array.isArray(row)
      && row.length === ids[0].length && row.length > 0 && row.every((t) => typeof t === "number" && Number.isInteger(t)));
    if (!rectangular) {
      throw new InputError(`ids must be a non-empty rectangular list of integer lists (batch, seq), got ${describe(ids)}`);
    }
    const batch = ids.length, seq = ids[0].length;
    const need = this.budget.callBytes(batch, seq), cap = this.budget.maxCallBytes;
    if (need > cap) {
      throw new BudgetError(`a call of ${batch} × ${seq} tokens needs ${byteSize(need)} (${byteSize(this.budget.rowBytes)} `
        + `a token), more than the ${byteSize(cap)} a call may use: feed it through streams, use smaller batches, `
        + "or raise maxCallBytes", need, cap);
    }
    const flat = ids.flat();
    let lo = Infinity, hi = -Infinity;
    for (const id of flat) {
      if (id < lo) lo = id;
      if (id > hi) hi = id;
    }
    if (lo < 0 || hi >= this.vocabSize) {
      throw new InputError(`token id ${lo < 0 ? lo : hi} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
    const size = this.spec.layers * batch * this.spec.hidden;
    const given = state ?? this.zeroState(batch);
    if (!Array.isArray(given) || given.length !== this.spec.nState
        || given.some((a) => !(ArrayBuffer.isView(a) || Array.isArray(a)) || a.length !== size)) {
      throw new StateError(`state must be ${this.spec.nState} array(s) of ${size} values (layers ${this.spec.layers} `
        + `× batch ${batch} × hidden ${this.spec.hidden}), got ${describe(given)}`);
    }
    const arrays = given.map((a) => (a instanceof Float32Array ? a : Float32Array.from(a)));
    for (const a of arrays) { // onnxruntime's clamped activations can hide a NaN state: refuse it here
      if (!allFinite(a)) {
        throw new NonFiniteError("the state given holds NaN or infinite values; start from model.startState() "
          + "or a good snapshot");
      }
    }
    const out = await this._call(BigInt64Array.from(flat, BigInt), batch, seq, arrays);
    return { logits: out.logits, dims: [batch, seq, this.nOut], state: out.state };
  }

  /** A session call of checked tokens (B × T, int64) and state; outputs checked finite. */
  async _call(tokens, batch, seq, state) {
    const out = await this._session(tokens, batch, seq, state);
    if (!allFinite(out.logits)) throw modelNonFinite("logits");
    for (const a of out.state) if (!allFinite(a)) throw modelNonFinite("state");
    return out;
  }

  async _session(tokens, batch, seq, state) {
    const Tensor = this._ort.Tensor;
    const spec = this.spec;
    const inputs = spec.inputNames, outputs = spec.outputNames;
    const dims = [spec.layers, batch, spec.hidden];
    const feeds = {};
    feeds[inputs[0]] = new Tensor("int64", tokens, [batch, seq]);
    for (let i = 1; i < inputs.length; i++) feeds[inputs[i]] = new Tensor("float32", state[i - 1], dims);
    const results = await this.session.run(feeds);
    const next = new Array(outputs.length - 1);
    for (let i = 1; i < outputs.length; i++) next[i - 1] = results[outputs[i]].data;
    return { logits: results[outputs[0]].data, state: next };
  }

  /**
   * Run tokens (B × T, int64) from state in calls of at most callLength(B) steps; yields
   * {start, steps, logits (B × steps × n_out), state (the state after the call)}.
   */
  async* _chunks(tokens, batch, seq, state) {
    const length = this.callLength(batch);
    let current = state;
    for (let start = 0; start < seq; start += length) {
      const steps = Math.min(length, seq - start);
      let part = tokens;
      if (steps !== seq) {
        part = new BigInt64Array(batch * steps);
        for (let b = 0; b < batch; b++) part.set(tokens.subarray(b * seq + start, b * seq + start + steps), b * steps);
      }
      const out = await this._call(part, batch, steps, current);
      current = out.state;
      yield { start, steps, logits: out.logits, state: current };
    }
  }

  // -- streams --------------------------------------------------------------------------------
  /**
   * A new stream at the start state, or one restored from Stream.snapshot() bytes. key (bytes,
   * or a string encoded UTF-8) signs the stream's snapshots; with a snapshot, only bytes signed
   * with that key restore.
   */
  stream(snapshot = null, options = {}) {
    [snapshot, options] = snapshotArgs(snapshot, options);
    this.tokenizer.ready(); // starts loading what a stream's cut needs (jieba's dictionary); feed awaits it
    return snapshot === null ? new Stream(this, options) : Stream.restore(this, snapshot, options);
  }

  /** Steps and feeds many live streams (and tag streams) in one session call. */
  batcher() {
    return new StreamBatcher(this);
  }

  /** Tags text as it arrives (tag models); with a snapshot, the tag stream as it was then. */
  tagStream(snapshot = null, options = {}) {
    this._require("tag", "tagStream");
    [snapshot, options] = snapshotArgs(snapshot, options);
    this.tokenizer.ready(); // starts loading what a stream's cut needs (jieba's dictionary); feed awaits it
    return snapshot === null ? new TagStream(this, options) : TagStream.restore(this, snapshot, options);
  }

  // -- text in, ids out -----------------------------------------------------------------------
  encode(text) {
    return this.tokenizer.encode(checkText(text), this.vocab);
  }

  decode(ids) {
    return this.tokenizer.decode(ids, this.vocab);
  }

  // -- tasks ----------------------------------------------------------------------------------
  /**
   * Text pieces continuing prompt (lm models), as an async iterator; temperature 0 is greedy.
   * Ends at <eos>, after maxTokens tokens, or before the first stop string. The arguments are
   * checked now, before the first piece is asked for.
   */
  generate(prompt = "", options = {}) {
    const { maxTokens = 100, temperature = 1.0, topK = null, topP = null, seed = null, stop = null } = options ?? {};
    this._require("lm", "generate");
    checkText(prompt, "prompt");
    if (!(typeof maxTokens === "number" && Number.isInteger(maxTokens) && maxTokens >= 0)) {
      throw new ConfigError(`maxTokens must be a non-negative integer, got ${show(maxTokens)}`);
    }
    const sampler = new Sampler({ temperature, topK, topP, seed });
    const matcher = new StopMatcher(stop);
    if (!this.spec.bos && !this.encode(prompt).length) {
      throw new InputError("this model was trained without <bos>, so it cannot begin a text: give generate a "
        + "prompt (one with at least one token)");
    }
    return continuation(this, prompt, maxTokens, sampler, matcher);
  }

  /**
   * Label one text (→ Prediction) or many (→ Prediction[]), read at each text's last token.
   * {tokens} instead of texts takes text already cut (one list of strings, or a list of lists).
   */
  async classify(texts, options = {}) {
    [texts, options] = textsArgs(texts, options);
    const { tokens = null, batchSize = 64 } = options;
    this._require("classify", "classify");
    checkBatchSize(batchSize);
    if (givenTokens("classify", texts, tokens)) {
      const { single, lists } = tokenLists(tokens, "classify");
      const preds = await this._classifyIds(lists.map((t) => tokenIds(this, t)), lists.map(() => null), batchSize);
      return single ? preds[0] : preds;
    }
    const single = typeof texts === "string";
    if (!single && !isTextList(texts)) throw new TypeError(`texts must be str or a sequence of str, got ${typeName(texts)}`);
    const items = single ? [texts] : [...texts];
    const preds = items.map(() => null);
    const ids = items.map(() => []);
    for (let i = 0; i < items.length; i++) {
      const text = items[i];
      if (typeof text === "string" && cpLength(text) > FEED_CHARS) preds[i] = await this._classifyLong(text);
      else ids[i] = this._ids(text);
    }
    const done = await this._classifyIds(ids, preds, batchSize);
    return single ? done[0] : done;
  }

  async _classifyIds(ids, preds, batchSize) {
    const order = ids.map((_, i) => i).filter((i) => preds[i] === null).sort((a, b) => ids[a].length - ids[b].length);
    const rows = Math.max(1, Math.min(batchSize, this.budget.maxBatch()));
    for (let at = 0; at < order.length; at += rows) {
      const chunk = order.slice(at, at + rows);
      const width = ids[chunk[chunk.length - 1]].length;
      const tokens = new BigInt64Array(chunk.length * width).fill(BigInt(this.vocab.padId)); // (B, T)
      chunk.forEach((i, row) => tokens.set(ids[i].map(BigInt), row * width));
      const last = chunk.map((i) => ids[i].length - 1);
      for await (const { start, steps, logits } of this._chunks(tokens, chunk.length, width, this.startState(chunk.length))) {
        chunk.forEach((i, row) => {
          if (start <= last[row] && last[row] < start + steps) {
            const at = (row * steps + last[row] - start) * this.nOut;
            preds[i] = this.prediction(logits.subarray(at, at + this.nOut));
          }
        });
      }
    }
    return preds;
  }

  async _classifyLong(text) {
    const stream = this.stream();
    await stream.feed(text);
    const logits = await stream.flush();
    if (logits === null) throw new InputError("a text has no tokens (it is empty or only whitespace); nothing to classify");
    return this.prediction(logits);
  }

  /** Softmax of one step's logits (n_out) as a Prediction. */
  prediction(logits) {
    let m = -Infinity;
    for (const x of logits) if (x > m) m = x;
    const p = Float64Array.from(logits, (x) => Math.exp(x - m));
    let total = 0;
    for (const x of p) total += x;
    for (let i = 0; i < p.length; i++) p[i] /= total;
    const best = argmax(p);
    const scores = {};
    this.labels.forEach((label, i) => {
      scores[label] = p[i];
    });
    return new Prediction(this.labels[best], p[best], scores);
  }

  /**
   * Tag every token of a text (→ TagResult) or of many (→ TagResult[], batchSize texts a call).
   * For a B/M/E/S model, result.words holds the cut words (slices of the text). {tokens} tags
   * text already cut into tokens, as given.
   */
  async tag(texts, options = {}) {
    [texts, options] = textsArgs(texts, options);
    const { tokens = null, batchSize = 64 } = options;
    this._require("tag", "tag");
    checkBatchSize(batchSize);
    if (givenTokens("tag", texts, tokens)) {
      const { single, lists } = tokenLists(tokens, "tag");
      const results = await tagTokenLists(this, lists, batchSize);
      return single ? results[0] : results;
    }
    if (typeof texts === "string") {
      const result = await new TagStream(this).end(texts); // one session call: the text and the lookahead pads
      if (!result.length) throw new InputError("the text has no tokens to tag (it is empty or only whitespace)");
      return result;
    }
    if (!isTextList(texts)) throw new TypeError(`texts must be str or a sequence of str, got ${typeName(texts)}`);
    const items = [...texts];
    for (const text of items) checkText(text);
    const results = [];
    const rows = Math.max(1, Math.min(batchSize, this.budget.maxBatch()));
    const batcher = this.batcher();
    for (let at = 0; at < items.length; at += rows) {
      const chunk = items.slice(at, at + rows);
      const streams = chunk.map(() => new TagStream(this));
      const settled = await batcher.feed(streams, chunk);
      const rest = await batcher.flush(streams);
      settled.forEach((first, j) => {
        const result = joinTags([first, rest[j]]);
        if (!result.length) throw new InputError(`text ${at + j} has no tokens to tag (it is empty or only whitespace)`);
        results.push(result);
      });
    }
    return results;
  }

  // -- helpers --------------------------------------------------------------------------------
  _require(task, call) {
    if (this.task !== task) {
      const fits = { lm: "generate/stream", classify: "classify/stream", tag: "tag/stream" }[this.task];
      throw new TaskError(`${call}() needs ${a(task)} model; ${this.name} is ${a(this.task)} model (use ${fits})`);
    }
  }

  _ids(text) {
    const ids = this.encode(checkText(text));
    if (!ids.length) throw new InputError("a text has no tokens (it is empty or only whitespace); nothing to classify");
    return ids;
  }

  toString() {
    const s = this.spec;
    return `Model(task=${s.task}, cell=${s.cell}, layers=${s.layers}, hidden=${s.hidden}, vocab=${this.vocabSize})`;
  }
}

export { MAX_SEED };

const a = (task) => (task === "lm" ? `an ${task}` : `a ${task}`);

function allFinite(array) {
  if (!(array instanceof Float32Array)) {
    for (let i = 0; i < array.length; i++) if (!Number.isFinite(array[i])) return false;
    return true;
  }
  // Float32 values summed in float64 cannot overflow, so a group's sum is finite exactly when
  // every value in it is (an infinity or a NaN makes it Inf or NaN), and sum × 0 is ±0 for
  // finite sums and NaN otherwise: one multiply per four values, no branch in the loop.
  const n = array.length;
  let s0 = 0, s1 = 0, i = 0;
  for (; i + 7 < n; i += 8) {
    s0 += (array[i] + array[i + 1] + (array[i + 2] + array[i + 3])) * 0;
    s1 += (array[i + 4] + array[i + 5] + (array[i + 6] + array[i + 7])) * 0;
  }
  for (; i < n; i++) s0 += array[i] * 0;
  return s0 + s1 === 0;
}

function modelNonFinite(what) {
  return new NonFiniteError(`the model gave NaN or infinite ${what}: its weights or the state it was given are `
    + "corrupt; reload the model and restart the stream (or restore a good snapshot)");
}

/** One row's state (layers × 1 × hidden) repeated into `batch` rows (layers × batch × hidden). */
function repeatRows(one, layers, hidden, batch) {
  const out = new Float32Array(layers * batch * hidden);
  for (let l = 0; l < layers; l++) {
    const row = one.subarray(l * hidden, (l + 1) * hidden);
    for (let b = 0; b < batch; b++) out.set(row, (l * batch + b) * hidden);
  }
  return out;
}

function describe(x) {
  if (Array.isArray(x)) {
    return `a list of ${x.length} (${x.slice(0, 4).map((r) => (ArrayBuffer.isView(r) || Array.isArray(r) ? `${r.length} values` : typeName(r))).join(", ")}${x.length > 4 ? ", …" : ""})`;
  }
  return typeName(x);
}

function checkBatchSize(batchSize) {
  if (!isPositiveInt(batchSize)) throw new ConfigError(`batchSize must be a positive integer, got ${show(batchSize)}`);
}

function isTextList(x) {
  return x !== null && typeof x === "object" && typeof x[Symbol.iterator] === "function" && !ArrayBuffer.isView(x);
}

function isBytes(x) {
  return x instanceof ArrayBuffer || ArrayBuffer.isView(x);
}

/** (snapshot, options) of stream()/tagStream(): stream({key}) is stream(null, {key}). */
function snapshotArgs(snapshot, options) {
  if (snapshot !== null && snapshot !== undefined && !isBytes(snapshot) && typeof snapshot === "object") {
    return [null, snapshot];
  }
  return [snapshot ?? null, options ?? {}];
}

/** (texts, options) of classify()/tag(): tag({tokens}) is tag(undefined, {tokens}). */
function textsArgs(texts, options) {
  if (texts !== null && typeof texts === "object" && !Array.isArray(texts) && typeof texts[Symbol.iterator] !== "function") {
    return [null, texts];
  }
  return [texts ?? null, options ?? {}];
}
