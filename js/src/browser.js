// rnnkit for browsers: onnxruntime-web (WebAssembly) and jieba-wasm's web build, initialised
// only for a jieba word model, and jieba's dictionary (core/jieba-freq.txt, fetched next to this
// module) only when one of its streams first cuts. Every .wasm file comes from the page's own origin: onnxruntime-web
// finds its files next to its own module (as served by the page), or where `wasmPaths` says
// (ort.env.wasm.wasmPaths, set only when the caller passes it) — never from a CDN.

import * as ortWeb from "onnxruntime-web";
import { loadModel as loadWith } from "./core/index.js";
import { MissingDependencyError } from "./core/errors.js";
import { JiebaDictionary } from "./core/jiebadict.js";

export * from "./core/index.js";

let jiebaWeb = null;
let dictionaryWeb = null;

/** A string without a scheme ("model.onnx", "/models/m.onnx") is a URL relative to the page (or
 * worker), as fetch() reads it; a browser has no paths. */
function pageRelative(source) {
  if (typeof source !== "string" || /^[a-z][a-z0-9+.-]*:/i.test(source)) return source;
  const base = globalThis.document?.baseURI ?? globalThis.location?.href;
  return base ? new URL(source, base) : source;
}

async function defaultJieba(wasm) {
  if (!jiebaWeb) {
    jiebaWeb = (async () => {
      try {
        const module = await import("jieba-wasm/web");
        await module.default(wasm === undefined ? undefined : { module_or_path: wasm });
        return { cut: (text, hmm) => module.cut(text, hmm) };
      } catch (e) {
        jiebaWeb = null;
        throw new MissingDependencyError(`jieba-wasm's web build did not start (${e?.message ?? e}); this model `
          + "cuts words with jieba: serve node_modules/jieba-wasm from the page's origin, or pass { jieba }", { cause: e });
      }
    })();
  }
  return jiebaWeb;
}

/** jieba's dictionary (src/core/jieba-freq.txt) as a JiebaDictionary, fetched from next to this
 * module (the page's origin serves rnnkit's src/) and parsed once per page (again after a
 * failure): what a jieba word stream's cut reads. */
export function loadJiebaDictionary() {
  if (!dictionaryWeb) {
    dictionaryWeb = (async () => {
      const url = new URL("./core/jieba-freq.txt", import.meta.url);
      let response;
      try {
        response = await fetch(url);
      } catch (e) {
        throw new MissingDependencyError(`jieba's dictionary (${url}) could not be fetched: ${e?.message ?? e}`, { cause: e });
      }
      if (!response.ok) {
        throw new MissingDependencyError(`jieba's dictionary (${url}) could not be fetched: HTTP ${response.status}; `
          + "serve rnnkit's src/ whole, or pass { jiebaDictionary }");
      }
      return JiebaDictionary.parse(await response.text());
    })();
    dictionaryWeb.catch(() => {
      dictionaryWeb = null;
    });
  }
  return dictionaryWeb;
}

/**
 * Load an rnnkit ONNX file in a browser: source is the bytes, a URL (fetched), a Blob or File.
 * options: executionProviders (default ["wasm"]), threads, maxBytes, maxCallBytes, onWarning;
 * wasmPaths: where onnxruntime-web's .wasm files are (same origin); jiebaWasm: the URL of
 * jieba-wasm's .wasm file; ort, jieba and jiebaDictionary replace onnxruntime-web, jieba-wasm
 * and rnnkit's jieba-freq.txt.
 */
export async function loadModel(source, options = {}) {
  const { wasmPaths, jiebaWasm, ...rest } = options ?? {};
  source = pageRelative(source);
  const ort = rest.ort ?? ortWeb;
  if (wasmPaths !== undefined) ort.env.wasm.wasmPaths = wasmPaths;
  return loadWith(source, { ...rest, ort, jieba: rest.jieba ?? (() => defaultJieba(jiebaWasm)),
    jiebaDictionary: rest.jiebaDictionary ?? loadJiebaDictionary });
}
