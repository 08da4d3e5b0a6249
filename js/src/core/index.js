// rnnkit's environment-free entry: everything public, and loadModel(source, {ort, jieba, ...}).
// src/node.js and src/browser.js supply `ort` (onnxruntime-node / onnxruntime-web) and jieba;
// this module never imports either.

import { MissingDependencyError } from "./errors.js";
import { describeSource, openModel, readModelBytes } from "./load.js";
import { UNICODE_VERSION } from "./text.js";
import { Model } from "./model.js";
import { tokenizerFromConfig } from "./tokenizers.js";
import { Vocabulary } from "./vocab.js";

export * from "./errors.js";
export { openModel, readModelBytes } from "./load.js";
export { CALL_STEPS, Model, Prediction } from "./model.js";
export { FEED_CHARS, Stream } from "./stream.js";
export { TagResult, TagStream, bmesSpans, bmesWords, joinTags } from "./tagging.js";
export { StreamBatcher } from "./batcher.js";
export { MAX_SEED, Sampler, StopMatcher } from "./sampling.js";
export { SplitMix64 } from "./rng.js";
export { KINDS, SIGNED, VERSION as SNAPSHOT_VERSION } from "./snapshot.js";
export { CharTokenizer, WhitespaceTokenizer, WordTokenizer, tokenizerFromConfig } from "./tokenizers.js";
export { JiebaDictionary } from "./jiebadict.js";
export { Vocabulary } from "./vocab.js";
export { UNICODE_VERSION } from "./text.js";

/** Whether a tokenizer config (as stored in rnnkit.tokenizer) cuts words with jieba. */
export function needsJieba(config) {
  return config?.kind === "word" && (config.segmenter ?? "jieba") === "jieba";
}

/**
 * Load an rnnkit ONNX file.
 *
 *     const model = await loadModel(bytes, { ort });
 *     (await model.classify("这本书很好看")).label  // "pos"
 *
 * source: bytes (Uint8Array, ArrayBuffer), or what readModelBytes reads (a URL, a Blob; a
 * path in Node). ort: the onnxruntime module (onnxruntime-node or onnxruntime-web). jieba:
 * { cut(text, hmm) } or an async function giving one, asked for only by jieba word models.
 * jiebaDictionary: jieba's prefix dictionary (a JiebaDictionary, the text of jieba-freq.txt, or
 * a function giving or resolving to either), read only when a jieba word stream first cuts.
 * The file is read and its graph checked before onnxruntime sees it.
 */
export async function loadModel(source, options = {}) {
  const { ort, jieba = null, jiebaDictionary = null, onWarning, ...rest } = options ?? {};
  if (!ort || typeof ort.InferenceSession?.create !== "function" || typeof ort.Tensor !== "function") {
    throw new MissingDependencyError("loadModel needs onnxruntime: pass { ort } (onnxruntime-node or "
      + "onnxruntime-web), or import rnnkit's node or browser entry, which brings its own");
  }
  const warn = typeof onWarning === "function" ? onWarning : (message) => console.warn(`Warning: ${message}`);
  const bytes = await readModelBytes(source, rest);
  const name = describeSource(source);
  const opened = await openModel(bytes, { ...rest, ort, name, unicodeVersion: UNICODE_VERSION, onWarning: warn });
  const { spec, warnings } = opened;
  let cutter = null;
  if (needsJieba(spec.tokenizer)) {
    if (!jieba) {
      throw new MissingDependencyError("this model cuts words with jieba: pass { jieba } (jieba-wasm's cut), or "
        + "import rnnkit's node or browser entry, which loads jieba-wasm");
    }
    cutter = typeof jieba === "function" ? await jieba() : jieba;
  }
  const onTokenizerWarning = (message) => {
    warnings.push(message);
    warn(message);
  };
  const tokenizer = tokenizerFromConfig(spec.tokenizer, { jieba: cutter, jiebaDictionary, onWarning: onTokenizerWarning });
  const vocab = new Vocabulary(spec.vocab);
  return Model.create({ spec, session: opened.session, identity: opened.identity, warnings, budget: opened.budget,
    tokenizer, vocab, ort, name });
}
