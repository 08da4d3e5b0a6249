// jieba's prefix dictionary and its route, for a word stream's cut: a port of what
// runtime/tokenizers.py's find_split reads from Python jieba 0.42.1 (FREQ, total, get_DAG, calc).
// jieba-wasm cuts the text but does not expose these, so they come from jieba-freq.txt (made by
// js/tools/gen_jieba_dict.py from Python jieba's dict.txt; its docstring describes the format),
// read only when a jieba word stream needs a cut. The entries (node.js, browser.js) read the file;
// this module only parses it.
//
// FREQ's keys are prefix-closed, so they are the nodes of a trie: node 0 is the empty string,
// node c of (p, code) is p's key plus one UTF-16 unit (every key is in the BMP). The edges live
// in one open-addressing hash table of typed arrays (a Map of half a million strings takes ten
// times the time to build and five times the memory).

import { ConfigError } from "./errors.js";

function notOurs() {
  return new ConfigError("this is not rnnkit's jieba dictionary (js/src/core/jieba-freq.txt)");
}

/**
 * jieba's prefix dictionary, parsed from the text of jieba-freq.txt.
 *
 *     const dict = JiebaDictionary.parse(text);
 *     dict.dag(Array.from("北京大学"))  // [[0, 1, 3], [1], [2, 3], [3]]
 */
export class JiebaDictionary {
  /** Parse jieba-freq.txt (ConfigError if it is not one). */
  static parse(text) {
    if (typeof text !== "string") throw new ConfigError(`jieba's dictionary must be text, got ${typeof text}`);
    const first = text.indexOf("\n");
    let at = text.indexOf("\n", first + 1);
    let header = null;
    try {
      header = JSON.parse(text.slice(first + 1, at));
    } catch {
      // refused below
    }
    if (first < 0 || at < 0 || !header || ![header.keys, header.freqs, header.words].every(Number.isInteger)) {
      throw notOurs();
    }
    at++;
    const logs = new Float64Array(header.freqs + 1); // logs[0] = math.log(1): a prefix's score
    const rank = new Map(); // frequency → its index in logs
    for (let i = 1; i <= header.freqs; i++) {
      const tab = text.indexOf("\t", at);
      const end = text.indexOf("\n", tab);
      if (tab < 0 || end < 0) throw notOurs();
      rank.set(Number(text.slice(at, tab)), i);
      logs[i] = Number(text.slice(tab + 1, end));
      at = end + 1;
    }
    rank.set(0, 0);
    const dict = new JiebaDictionary(header, logs);
    const path = new Int32Array(64); // path[d]: the node of the current word's first d units
    for (let w = 0; w < header.words; w++) {
      let depth = text.charCodeAt(at++) - 48;
      if (depth > 9) depth -= 39; // a-f
      if (!(depth >= 0 && depth <= 15)) throw notOurs();
      let node = path[depth];
      for (let c = text.charCodeAt(at); c !== 9; c = text.charCodeAt(++at)) {
        if (Number.isNaN(c) || c === 10) throw notOurs();
        node = dict._add(node, c);
        path[++depth] = node;
      }
      let f = 0;
      for (let c = text.charCodeAt(++at); c !== 10; c = text.charCodeAt(++at)) {
        if (!(c >= 48 && c <= 57)) throw notOurs();
        f = f * 10 + c - 48;
      }
      at++;
      const r = rank.get(f);
      if (r === undefined) throw notOurs();
      dict._word[node] = r;
      if (depth > dict.longest) dict.longest = depth;
    }
    if (dict._nodes !== header.keys + 1) throw notOurs();
    return dict;
  }

  constructor(header, logs) {
    this.version = header.jieba; // the Python jieba whose dict.txt this is
    this.total = header.total; // jieba's total: the sum of every line's frequency
    this.logTotal = header.logtotal; // Python's math.log(total)
    this.longest = 0; // the longest key of FREQ (16 for jieba 0.42.1)
    this._logs = logs; // Python's math.log of each frequency (index 0: of 1, for a prefix)
    this._word = new Uint16Array(header.keys + 1); // node → index in _logs of its frequency, 0 if a prefix only
    this._nodes = 1;
    let size = 1;
    while (size < 2 * header.keys) size *= 2;
    this._mask = size - 1;
    this._parent = new Int32Array(size);
    this._code = new Uint16Array(size);
    this._child = new Int32Array(size); // 0: an empty slot (no edge leads to the root)
  }

  _slot(parent, code) {
    let h = Math.imul(parent, 0x9e3779b1) ^ Math.imul(code + 1, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    for (let s = h & this._mask; ; s = (s + 1) & this._mask) {
      if (this._child[s] === 0 || (this._parent[s] === parent && this._code[s] === code)) return s;
    }
  }

  _add(parent, code) {
    const s = this._slot(parent, code);
    if (this._child[s] === 0) {
      if (this._nodes >= this._word.length) throw notOurs();
      this._parent[s] = parent;
      this._code[s] = code;
      this._child[s] = this._nodes++;
    }
    return this._child[s];
  }

  /** The node of FREQ's key `node`'s key + `ch` (one BMP character), or 0 when that is no key. */
  next(node, ch) {
    if (ch.length !== 1) return 0;
    return this._child[this._slot(node, ch.charCodeAt(0))];
  }

  /** The node of chars[from:to] (code points), -1 when it is no key of FREQ (0: the empty key). */
  find(chars, from = 0, to = chars.length) {
    let node = 0;
    for (let i = from; i < to; i++) {
      node = this.next(node, chars[i]);
      if (node === 0) return -1;
    }
    return node;
  }

  /** Whether chars[from:to] is a key of FREQ (a word, or a prefix of one). */
  has(chars, from = 0, to = chars.length) {
    return this.find(chars, from, to) >= 0;
  }

  /** Python's math.log(FREQ.get(chars[from:to]) or 1). */
  logFreq(chars, from = 0, to = chars.length) {
    const node = this.find(chars, from, to);
    return node > 0 ? this._logs[this._word[node]] : 0;
  }

  /**
   * jieba's get_DAG of `chars` (code points): dag[k] lists the last index of every word starting
   * at k, ascending (just k when none is a word).
   */
  dag(chars) {
    const n = chars.length;
    const dag = new Array(n);
    for (let k = 0; k < n; k++) {
      const ends = [];
      for (let i = k, node = this.next(0, chars[k]); node !== 0;) {
        if (this._word[node]) ends.push(i);
        if (++i >= n) break;
        node = this.next(node, chars[i]);
      }
      dag[k] = ends.length ? ends : [k];
    }
    return dag;
  }

  /**
   * jieba's calc: route[i] = [score, last index of the best word at i], the best over dag[i] of
   * log(freq or 1) - log(total) + route[end + 1][0], ties to the larger index (Python's max of
   * tuples); route[n] = [0, 0]. The logarithms are Python's, so every score is Python's bit for bit.
   */
  route(chars, dag) {
    const n = chars.length;
    const route = new Array(n + 1);
    route[n] = [0, 0];
    for (let i = n - 1; i >= 0; i--) {
      let best = -Infinity, at = -1;
      for (const x of dag[i]) {
        const score = this.logFreq(chars, i, x + 1) - this.logTotal + route[x + 1][0];
        if (score >= best) { // dag[i] ascends: an equal score goes to the larger index
          best = score;
          at = x;
        }
      }
      route[i] = [best, at];
    }
    return route;
  }
}
