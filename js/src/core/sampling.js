// Generating text: the next token chosen from logits (greedy, temperature, top-k, top-p), stop
// strings, and the loop of Model.generate — a port of runtime/sampling.py. choose() does the
// operations docs/FORMAT.md ("Sampling") lists, in float64 and in the same order as Python, so a
// seed gives the same tokens wherever the logits agree (Math.exp and numpy's exp may differ in
// the last bit).

import { ConfigError, NonFiniteError } from "./errors.js";
import { SplitMix64, randomRng } from "./rng.js";
import { isSpace } from "./text.js";
import { codePoints, show } from "./util.js";

export const MAX_SEED = 2 ** 32 - 1; // the seed range training shares

const isNumber = (x) => typeof x === "number";
const isInt = (x) => typeof x === "number" && Number.isInteger(x);

export class Sampler {
  /**
   * temperature 0 is greedy; topK / topP restrict the candidates; seed repeats runs.
   * @param {{temperature?: number, topK?: number|null, topP?: number|null, seed?: number|null}} [options]
   */
  constructor(options = {}) {
    const { temperature = 1.0, topK = null, topP = null, seed = null } = options ?? {};
    const t = temperature, k = topK ?? null, p = topP ?? null, s = seed ?? null;
    if (!(isNumber(t) && t >= 0 && t < Infinity)) {
      throw new ConfigError(`temperature must be a finite number ≥ 0 (0 is greedy), got ${show(t)}`);
    }
    if (k !== null && !(isInt(k) && k >= 1)) throw new ConfigError(`topK must be a positive integer, got ${show(k)}`);
    if (p !== null && !(isNumber(p) && p > 0 && p <= 1)) throw new ConfigError(`topP must be in (0, 1], got ${show(p)}`);
    if (s !== null && !(isInt(s) && s >= 0 && s <= MAX_SEED)) {
      throw new ConfigError(`seed must be an integer in 0..${MAX_SEED}, got ${show(s).slice(0, 40)}`);
    }
    this.temperature = t;
    this.topK = k;
    this.topP = p;
    this.seed = s;
    Object.freeze(this);
  }

  /** A fresh generator: SplitMix64 of the seed, or seeded from the platform without one. */
  rng() {
    return this.seed === null ? randomRng() : new SplitMix64(this.seed);
  }

  /**
   * One token id from logits (n_out,), never one of banned.
   * @param {ArrayLike<number>} logits
   * @param {{uniform(): number}} rng
   * @param {number[]} [banned]
   */
  choose(logits, rng, banned = []) {
    const n = logits.length;
    const z = Float64Array.from(logits);
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(z[i])) {
        throw new NonFiniteError("the logits hold NaN or infinity, so there is nothing to sample from: the "
          + "model's weights or the stream's state are broken; reset the stream or re-export the model");
      }
    }
    for (const b of banned) z[b] = -Infinity;
    if (this.temperature === 0) return argmax(z);
    // Shift first, then divide: every value is ≤ 0, so a tiny temperature sends the others to
    // -inf (probability 0) instead of the top ones to +inf (inf - inf = NaN).
    let m = -Infinity;
    for (let i = 0; i < n; i++) if (z[i] > m) m = z[i];
    for (let i = 0; i < n; i++) z[i] = (z[i] - m) / this.temperature;
    if (this.topK !== null && this.topK < n) {
      const sorted = Float64Array.from(z).sort(); // ascending; duplicates counted
      const kth = sorted[n - this.topK];
      for (let i = 0; i < n; i++) if (z[i] < kth) z[i] = -Infinity;
    }
    const w = z.map(Math.exp);
    if (this.topP !== null && this.topP < 1) {
      const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => w[b] - w[a] || a - b);
      const c = new Float64Array(n);
      let run = 0;
      for (let j = 0; j < n; j++) c[j] = run += w[order[j]];
      const need = this.topP * c[n - 1];
      let keep = n;
      for (let j = 0; j < n; j++) {
        if (c[j] >= need) {
          keep = j + 1;
          break;
        }
      }
      for (let j = keep; j < n; j++) w[order[j]] = 0;
    }
    let total = 0;
    for (let i = 0; i < n; i++) total += w[i];
    const target = rng.uniform() * total;
    let run = 0, last = -1;
    for (let i = 0; i < n; i++) {
      run += w[i];
      if (run > target) return i;
      if (w[i] > 0) last = i;
    }
    return last; // rounding left no running sum above the target
  }
}

function argmax(z) {
  let best = 0;
  for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
  return best;
}

/** Releases generated text while holding back what could still become a stop string. */
export class StopMatcher {
  /** @param {string|string[]|null|undefined} stop */
  constructor(stop) {
    let stops;
    if (stop === null || stop === undefined) stops = [];
    else if (typeof stop === "string" || stop[Symbol.iterator] === undefined) stops = [stop];
    else stops = [...stop];
    if (stops.some((s) => typeof s !== "string" || !s)) {
      throw new ConfigError(`stop must be a non-empty string or a list of them, got ${show(stop)}`);
    }
    this.stops = stops;
    // every proper prefix of each stop string, in code points, longest first
    this._prefixes = stops.map((s) => {
      const cps = codePoints(s);
      const out = [];
      for (let k = cps.length - 1; k >= 1; k--) out.push(cps.slice(0, k).join(""));
      return out;
    });
    this.held = "";
    this.stopped = false;
  }

  /** Add a piece; return the text that is now safe to emit ("" if held back or stopped). */
  push(piece) {
    if (this.stopped) return "";
    const text = this.held + piece;
    let first = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) first = i;
    }
    if (first >= 0) {
      this.stopped = true;
      this.held = "";
      return text.slice(0, first);
    }
    let keep = 0; // UTF-16 units of the longest tail that begins a stop string
    for (const prefixes of this._prefixes) {
      const hit = prefixes.find((p) => text.endsWith(p));
      if (hit !== undefined && hit.length > keep) keep = hit.length;
    }
    this.held = keep ? text.slice(text.length - keep) : "";
    return text.slice(0, text.length - keep);
  }

  flush() {
    const out = this.held;
    this.held = "";
    return this.stopped ? "" : out;
  }
}

/**
 * The text pieces model.generate yields (its arguments already checked): prompt read from a
 * fresh stream, then a token at a time until <eos>, maxTokens or a stop string.
 */
export async function* continuation(model, prompt, maxTokens, sampler, matcher) {
  const stream = model.stream();
  await stream.feed(prompt);
  let logits = await stream.flush(); // never null here: a model without <bos> was given a prompt with tokens
  const rng = sampler.rng();
  const v = model.vocab;
  // <eos> of a model that never learned it has a constant −1e4 logit: banned too, to say so
  const banned = [v.padId, v.unkId, v.bosId, ...(model.spec.eos ? [] : [v.eosId])];
  // Words cut on whitespace are written back with one space between them; the first after an
  // empty prompt, or one ending in whitespace, needs none.
  const sep = model.tokenizer.separator;
  const last = codePoints(prompt).pop();
  let glue = last === undefined || isSpace(last) ? "" : sep;
  for (let i = 0; i < maxTokens; i++) {
    const token = sampler.choose(logits, rng, banned);
    if (token === v.eosId) break;
    const text = matcher.push(glue + v.token(token));
    glue = sep;
    if (text) yield text;
    if (matcher.stopped) return;
    if (i + 1 < maxTokens) logits = await stream.step(token); // the last token's logits would go unused
  }
  const tail = matcher.flush();
  if (tail) yield tail;
}
