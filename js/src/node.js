// rnnkit for Node: onnxruntime-node (or the caller's own `ort`), jieba-wasm's Node build loaded
// only for a jieba word model, jieba's dictionary (core/jieba-freq.txt) read only when one of its
// streams first cuts, and model files read from paths or file: URLs.

import { loadModel as loadWith } from "./core/index.js";
import { MissingDependencyError } from "./core/errors.js";
import { JiebaDictionary } from "./core/jiebadict.js";
import { makeFileReader } from "./core/load.js";

export * from "./core/index.js";

let ortNode = null;
let jiebaNode = null;
let dictionaryNode = null;

async function defaultOrt() {
  if (!ortNode) {
    try {
      ortNode = await import("onnxruntime-node");
    } catch (e) {
      throw new MissingDependencyError("onnxruntime-node is not installed (npm install onnxruntime-node), or pass "
        + "{ ort } (for example onnxruntime-web)", { cause: e });
    }
  }
  return ortNode;
}

async function defaultJieba() {
  if (!jiebaNode) {
    try {
      const module = await import("jieba-wasm/node");
      jiebaNode = { cut: (text, hmm) => module.cut(text, hmm) };
    } catch (e) {
      throw new MissingDependencyError("jieba-wasm is not installed (npm install jieba-wasm); this model cuts "
        + "words with jieba", { cause: e });
    }
  }
  return jiebaNode;
}

/** jieba's dictionary (src/core/jieba-freq.txt) as a JiebaDictionary, read and parsed once per
 * process (again after a failure): what a jieba word stream's cut reads. */
export function loadJiebaDictionary() {
  if (!dictionaryNode) {
    dictionaryNode = (async () => {
      const { readFile } = await import("node:fs/promises");
      return JiebaDictionary.parse(await readFile(new URL("./core/jieba-freq.txt", import.meta.url), "utf8"));
    })();
    dictionaryNode.catch(() => {
      dictionaryNode = null;
    });
  }
  return dictionaryNode;
}

/**
 * Load an rnnkit ONNX file in Node: source is a path, a file: URL, or the bytes.
 * options: executionProviders, threads, maxBytes, maxCallBytes, onWarning; ort, jieba and
 * jiebaDictionary replace onnxruntime-node, jieba-wasm and rnnkit's jieba-freq.txt.
 */
export async function loadModel(source, options = {}) {
  const ort = options?.ort ?? await defaultOrt();
  const readFile = options?.readFile ?? makeFileReader(await import("node:fs/promises"));
  return loadWith(source, { ...options, ort, readFile, jieba: options?.jieba ?? defaultJieba,
    jiebaDictionary: options?.jiebaDictionary ?? loadJiebaDictionary });
}
