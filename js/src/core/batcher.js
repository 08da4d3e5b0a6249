// StreamBatcher: many streams of one model advanced in one session call — a port of
// runtime/batcher.py. Each stream reads exactly as it would alone: the batcher gathers the
// streams' states into the rows of one call and hands each its row back after it.

import { InputError, StateError } from "./errors.js";
import { Stream, checkTokenId, serial } from "./stream.js";
import { TagStream } from "./tagging.js";
import { checkText } from "./util.js";

export class StreamBatcher {
  constructor(model) {
    this.model = model;
  }

  /** One token per stream; resolves to each stream's logits (n_out each), as its own step would. */
  step(streams, tokenIds) {
    const list = this._check(streams, false);
    const ids = [...tokenIds];
    if (ids.length !== list.length) throw new InputError(`${list.length} streams but ${ids.length} token ids`);
    ids.forEach((t) => checkTokenId(t, this.model.vocabSize));
    if (!list.length) return Promise.resolve([]);
    return serial(list, async () => {
      for (const s of list) if (s._pending) await s._flush(); // as its own step does: held-back text first
      const model = this.model, batch = list.length;
      const state = gather(model, list.map((s) => s._state));
      const { logits, state: next } = await model._call(BigInt64Array.from(ids, BigInt), batch, 1, state);
      const n = model.nOut;
      return list.map((s, row) => {
        s._state = scatter(model, next, row, batch);
        s._logits = logits.slice(row * n, (row + 1) * n);
        s.consumed += 1;
        return s._logits;
      });
    });
  }

  /**
   * One piece of text per stream, all in as few session calls as the lengths allow; resolves,
   * per stream, to what its own feed would: a stream's latest logits (null if nothing was
   * consumed), a tag stream's newly settled tokens.
   */
  feed(streams, texts) {
    const list = this._check(streams, true);
    const pieces = [...texts];
    if (pieces.length !== list.length) throw new InputError(`${list.length} streams but ${pieces.length} texts`);
    pieces.forEach((t) => checkText(t));
    this.model.callLength(list.length); // a batch that cannot fit is refused before any text is taken
    return serial(cores(list), async () => {
      const loading = this.model.tokenizer.ready(); // a jieba word stream's first cut loads jieba's dictionary
      if (loading) await loading;
      return this._runText(list, list.map((s, i) => s._takeIds(pieces[i])), false);
    });
  }

  /** End what each stream holds back: a stream's latest logits, a tag stream's end(). */
  flush(streams) {
    const list = this._check(streams, true);
    this.model.callLength(list.length);
    return serial(cores(list), () => this._runText(list, list.map((s) => s._takeIds("", true)), true));
  }

  async _runText(list, ids, final) {
    const tagging = list.map((s) => s instanceof TagStream);
    const steps = await this._runIds(cores(list), ids, tagging);
    return list.map((s, i) => {
      if (tagging[i]) return s._accept(steps[i], final);
      return ids[i].length || final ? s._logits : null;
    });
  }

  /** Run each stream's ids, batched while several have ids left; returns, where keep, every
   * step's logits (T × n_out, flat) of that stream. */
  async _runIds(streams, ids, keep) {
    const model = this.model, n = model.nOut;
    const done = streams.map(() => 0);
    const kept = streams.map((_, i) => (keep[i] ? new Float32Array(ids[i].length * n) : null));
    for (;;) {
      const active = streams.map((_, i) => i).filter((i) => done[i] < ids[i].length);
      if (!active.length) break;
      // every active stream has at least `width` ids left: one call moves them all
      const width = active.reduce((w, i) => Math.min(w, ids[i].length - done[i]), model.callLength(active.length));
      const batch = active.length;
      const tokens = new BigInt64Array(batch * width); // (B, width)
      active.forEach((i, row) => tokens.set(ids[i].slice(done[i], done[i] + width).map(BigInt), row * width));
      const state = gather(model, active.map((i) => streams[i]._state));
      const { logits, state: next } = await model._call(tokens, batch, width, state); // (B, width, n_out)
      active.forEach((i, row) => {
        const s = streams[i];
        s._state = scatter(model, next, row, batch);
        s._logits = logits.slice(((row + 1) * width - 1) * n, (row + 1) * width * n);
        s.consumed += width;
        if (kept[i]) kept[i].set(logits.subarray(row * width * n, (row + 1) * width * n), done[i] * n);
        done[i] += width;
      });
    }
    return kept.map((k) => k ?? new Float32Array(0));
  }

  _check(streams, text) {
    const list = [...streams];
    for (const s of list) {
      if (!(s instanceof Stream || s instanceof TagStream) || s.model !== this.model) {
        throw new StateError("every stream must come from the batcher's model (model.stream() or model.tagStream())");
      }
      if (s instanceof TagStream && !text) {
        throw new TypeError("a tag stream reads text, not token ids: use batcher.feed() and batcher.flush()");
      }
    }
    if (new Set(cores(list)).size !== list.length) throw new InputError("the same stream appears twice in one batch");
    return list;
  }
}

function cores(list) {
  return list.map((s) => (s instanceof TagStream ? s.stream : s));
}

/** Each stream's state (layers × 1 × hidden) stacked into rows (layers × batch × hidden). */
function gather(model, states) {
  const { layers, hidden } = model.spec, batch = states.length;
  return model.zeroState(batch).map((dst, k) => {
    states.forEach((state, row) => {
      for (let l = 0; l < layers; l++) dst.set(state[k].subarray(l * hidden, (l + 1) * hidden), (l * batch + row) * hidden);
    });
    return dst;
  });
}

/** Row `row` of a batched state, as one stream's (layers × 1 × hidden). */
function scatter(model, state, row, batch) {
  const { layers, hidden } = model.spec;
  return state.map((src) => {
    const out = new Float32Array(layers * hidden);
    for (let l = 0; l < layers; l++) out.set(src.subarray((l * batch + row) * hidden, (l * batch + row + 1) * hidden), l * hidden);
    return out;
  });
}
