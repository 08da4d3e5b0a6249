// SplitMix64 (Steele, Lea & Flood 2014): the seeded generator rnnkit's sampling uses in every
// runtime (docs/FORMAT.md, "Sampling"), so a seed gives the same draws in Python and JavaScript.

import { ConfigError } from "./errors.js";

const MASK = (1n << 64n) - 1n;
const GAMMA = 0x9e3779b97f4a7c15n;
const MIX1 = 0xbf58476d1ce4e5b9n;
const MIX2 = 0x94d049bb133111ebn;
const UNIT = 2 ** -53;

export class SplitMix64 {
  /** @param {number|bigint} seed an integer 0..2^64-1 (rnnkit's seeds are 0..2^32-1) */
  constructor(seed) {
    const ok = (typeof seed === "bigint" || (typeof seed === "number" && Number.isInteger(seed)))
      && seed >= 0 && seed <= MASK;
    if (!ok) throw new ConfigError(`a SplitMix64 seed is an integer 0 … 2^64 - 1, got ${String(seed).slice(0, 40)}`);
    this.state = BigInt(seed);
  }

  /** The next 64-bit output, as a BigInt. */
  next() {
    this.state = (this.state + GAMMA) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * MIX1) & MASK;
    z = ((z ^ (z >> 27n)) * MIX2) & MASK;
    return z ^ (z >> 31n);
  }

  /** A float64 uniform in [0, 1): the top 53 bits of next(), times 2^-53. */
  uniform() {
    return Number(this.next() >> 11n) * UNIT;
  }
}

/** A generator seeded from the platform's cryptographic source (no seed given). */
export function randomRng() {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return new SplitMix64((BigInt(words[0]) << 32n) | BigInt(words[1]));
}
