// Text that is already cut into tokens: model.tag({tokens}) and model.classify({tokens}) — a
// port of runtime/pretokenized.py. A token is normalised as the model's tokenizer normalises
// text and looked up in the vocabulary (unknown → <unk>); nothing is cut again.

import { InputError } from "./errors.js";
import { TagResult, bmesWords } from "./tagging.js";
import { cpLength, typeName } from "./util.js";

const ONE_OR_MANY = "tokens takes one list of str tokens, or a list of such lists";

const iterable = (x) => x !== null && x !== undefined && typeof x[Symbol.iterator] === "function";

/** Whether a call was given tokens rather than texts; both, or neither, is a TypeError. */
export function givenTokens(call, texts, tokens) {
  if ((texts === null || texts === undefined) === (tokens === null || tokens === undefined)) {
    throw new TypeError(`${call}() takes texts or {tokens} (text already cut into tokens): one of them, `
      + `not ${tokens !== null && tokens !== undefined ? "both" : "neither"}`);
  }
  return tokens !== null && tokens !== undefined;
}

/** {single, lists}: tokens as token lists, and whether it was one list (a list of str). */
export function tokenLists(tokens, call) {
  if (typeof tokens === "string" || ArrayBuffer.isView(tokens) || !iterable(tokens)) {
    throw new TypeError(`${ONE_OR_MANY}; got ${typeName(tokens)}`);
  }
  const items = [...tokens];
  if (!items.length || items.some((t) => typeof t === "string")) return { single: true, lists: [checked(items, null, call)] };
  const lists = items.map((item, i) => {
    if (ArrayBuffer.isView(item) || typeof item === "string" || !iterable(item)) {
      throw new TypeError(`${ONE_OR_MANY}; item ${i} is ${typeName(item)}`);
    }
    return checked([...item], i, call);
  });
  return { single: false, lists };
}

function checked(tokens, index, call) {
  const where = index === null ? "" : ` of list ${index}`;
  if (!tokens.length) {
    throw new InputError(`${index === null ? "the token list" : `token list ${index}`} is empty; nothing to ${call}`);
  }
  tokens.forEach((token, j) => {
    if (typeof token !== "string") throw new TypeError(`tokens must be str: token ${j}${where} is ${typeName(token)}`);
    if (!token) throw new InputError(`token ${j}${where} is an empty string; a token holds at least one character`);
  });
  return tokens;
}

/** The vocabulary ids of tokens, each normalised as the model's tokenizer normalises text. */
export function tokenIds(model, tokens) {
  return model.vocab.encode(tokens.map((t) => model.tokenizer.normalizeToken(t)));
}

/** Tag each token list as given, batchSize lists a session call (pads after the tokens). */
export async function tagTokenLists(model, lists, batchSize) {
  const k = model.spec.lookahead, labels = model.labels, n = model.nOut;
  const bmes = model.spec.tagScheme === "bmes";
  const ids = lists.map((tokens) => tokenIds(model, tokens));
  const results = lists.map(() => null);
  const rows = Math.max(1, Math.min(batchSize, model.budget.maxBatch()));
  const order = lists.map((_, i) => i).sort((a, b) => ids[a].length - ids[b].length);
  for (let at = 0; at < order.length; at += rows) {
    const chunk = order.slice(at, at + rows);
    const width = ids[chunk[chunk.length - 1]].length + k;
    const batch = new BigInt64Array(chunk.length * width).fill(BigInt(model.vocab.padId)); // (B, T)
    chunk.forEach((i, row) => batch.set(ids[i].map(BigInt), row * width));
    const best = new Int32Array(chunk.length * width); // (B, T): each step's likeliest tag
    for await (const { start, steps, logits } of model._chunks(batch, chunk.length, width, model.startState(chunk.length))) {
      for (let row = 0; row < chunk.length; row++) {
        for (let t = 0; t < steps; t++) {
          const base = (row * steps + t) * n;
          let top = 0;
          for (let j = 1; j < n; j++) if (logits[base + j] > logits[base + top]) top = j;
          best[row * width + start + t] = top;
        }
      }
    }
    chunk.forEach((i, row) => {
      const tags = Array.from(best.subarray(row * width + k, row * width + k + ids[i].length), (j) => labels[j]);
      results[i] = tokenResult(lists[i], tags, bmes);
    });
  }
  return results;
}

/** A TagResult over tokens as given: spans in tokens.join(""), in code points; words joined tokens. */
export function tokenResult(tokens, tags, bmes) {
  const spans = [];
  let end = 0;
  for (const token of tokens) {
    const size = cpLength(token);
    spans.push([end, end + size]);
    end += size;
  }
  return new TagResult(tokens.map((t, i) => [t, tags[i]]), spans, bmes ? bmesWords(tokens, tags) : null);
}
