// A model's metadata read and checked as runtime/contract.py's ModelSpec.from_metadata does it:
// the same keys, schemas, caps and cross-key rules (from the generated schemas.js), the same
// error classes and messages. The result is a frozen `spec` object.

import { FormatVersionError, MetadataError } from "./errors.js";
import { pyStr } from "./protobuf.js";
import { JsonError, loads, toPlain } from "./pyjson.js";
import { headChars, pyRepr, schemaErrors } from "./schema.js";
import {
  FORMAT_VERSION, INPUT_C0, INPUT_H0, INPUT_TOKENS, JSON_KEYS, KEYS, LIMITS, OPTIONAL, OUTPUT_CN, OUTPUT_HN,
  OUTPUT_LOGITS, PREFIX, REQUIRED, SCHEMAS, SPECIALS,
} from "./schemas.js";

const SPECIAL_NAMES = Object.values(SPECIALS);
const JSON_SET = new Set(JSON_KEYS);
const LONE_SURROGATE = /[\ud800-\udfff]/u;

/** The hex SHA-256 of `bytes`: WebCrypto where there is one, else the pure-JS sha256.js. */
export async function sha256Hex(bytes) {
  let digest;
  const subtle = globalThis.crypto?.subtle;
  if (subtle) {
    digest = new Uint8Array(await subtle.digest("SHA-256", bytes));
  } else {
    const { sha256 } = await import("./sha256.js");
    digest = sha256(bytes);
  }
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** The canonical JSON of a vocabulary, whose SHA-256 is `rnnkit.vocab_sha256` (docs/FORMAT.md). */
export function vocabJson(tokens) {
  // JSON.stringify escapes exactly what Python's json.dumps(ensure_ascii=False) does for text
  // without lone surrogates (which the loader refuses before): " \ and C0 controls.
  return JSON.stringify(tokens);
}

/** The oldest format that holds a model with this tokenizer config and framing. */
export function formatFor(tokenizer, { bos = true, eos = true } = {}) {
  if (!(bos && eos)) return 3;
  const segmenter = tokenizer?.segmenter ?? "jieba";
  return segmenter !== "jieba" ? 2 : 1;
}

function utf8Size(text) {
  if (text.length > LIMITS.MAX_VALUE_BYTES) return text.length;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function checkVersion(raw) {
  if (raw === undefined) {
    throw new MetadataError(`metadata key ${pyStr(KEYS.FORMAT)} is missing; re-export the model`, KEYS.FORMAT);
  }
  if (typeof raw !== "string" || !/^[0-9]{1,6}$/.test(raw)) {
    throw new MetadataError(`metadata ${pyStr(KEYS.FORMAT)} must be an integer, got ${pyStr(headChars(String(raw), 20))}`,
      KEYS.FORMAT);
  }
  const version = Number(raw);
  if (version > FORMAT_VERSION) {
    throw new FormatVersionError(`model format ${version} is newer than this rnnkit reads (${FORMAT_VERSION}): `
      + "upgrade rnnkit", KEYS.FORMAT);
  }
  if (version < 1) throw new FormatVersionError(`unknown model format ${version}; re-export the model`, KEYS.FORMAT);
}

function checkVocabulary(tokens) {
  // Vocabulary.from_json / Vocabulary(tokens): ConfigError there, MetadataError on rnnkit.vocab here
  const key = "rnnkit.vocab";
  if (tokens.length < 4 || SPECIAL_NAMES.some((name, i) => tokens[i] !== name)) {
    throw new MetadataError(`a vocabulary must start with ${pyRepr(SPECIAL_NAMES)}; build one with Vocabulary.build()`,
      key);
  }
  const counts = new Map();
  for (let i = 4; i < tokens.length; i++) counts.set(tokens[i], (counts.get(tokens[i]) ?? 0) + 1);
  if (counts.size !== tokens.length - 4 || SPECIAL_NAMES.some((name) => counts.has(name))) {
    const dupes = [...counts].filter(([t, n]) => n > 1 || SPECIAL_NAMES.includes(t)).map(([t]) => t);
    dupes.sort(byCodePoint);
    throw new MetadataError(`vocabulary has duplicate or reserved tokens: ${pyRepr(dupes.slice(0, 5))}`, key);
  }
}

/** Python's order of strings: by code point (JavaScript's < compares UTF-16 units). */
export function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

function checkTokenizer(tokenizer, version) {
  // what the schema cannot say: which keys go with which kind and segmenter, and the format they need
  const segmenter = tokenizer.get("segmenter") ?? null;
  const jiebaKeys = ["hmm", "mode", "jieba_version"].some((k) => tokenizer.has(k));
  if (tokenizer.get("kind") === "char") {
    if (segmenter !== null || jiebaKeys) {
      throw new MetadataError("a char tokenizer takes no segmenter, hmm, mode or jieba_version", KEYS.TOKENIZER);
    }
    return;
  }
  const needs = formatFor({ segmenter: segmenter ?? undefined });
  if (needs > version) {
    throw new MetadataError(`a ${segmenter === null ? "None" : segmenter} word tokenizer needs model format ${needs}, `
      + `and the file says format ${version}; re-export the model`, KEYS.TOKENIZER);
  }
  if ((segmenter === null || segmenter === "jieba") && !tokenizer.has("jieba_version")) {
    throw new MetadataError("a word tokenizer must record its jieba_version", KEYS.TOKENIZER);
  }
  if (segmenter === "whitespace" && jiebaKeys) {
    throw new MetadataError("a whitespace tokenizer takes no hmm, mode or jieba_version (those are jieba's)",
      KEYS.TOKENIZER);
  }
}

function freeze(value) {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freeze(v);
  }
  return value;
}

/**
 * Parse and validate a model's `metadata_props` (a Map or an object of strings) as Python's
 * ModelSpec.from_metadata does; resolve to the frozen spec, or throw MetadataError naming the key.
 */
export async function specFromMetadata(metadata) {
  const props = metadata instanceof Map ? metadata : new Map(Object.entries(metadata ?? {}));
  if (![...props.keys()].some((k) => typeof k === "string" && k.startsWith(PREFIX))) {
    throw new MetadataError("this ONNX file has no rnnkit metadata; export models with `rnnkit export`", KEYS.FORMAT);
  }
  checkVersion(props.get(KEYS.FORMAT));
  const values = new Map();
  for (const key of [...REQUIRED, ...OPTIONAL]) {
    if (!props.has(key)) {
      if (OPTIONAL.includes(key)) continue;
      throw new MetadataError(`metadata key ${pyStr(key)} is missing; re-export the model`, key);
    }
    const raw = props.get(key);
    if (typeof raw !== "string") {
      throw new MetadataError(`metadata ${pyStr(key)} must be a string, got ${raw === null ? "NoneType" : typeof raw}`, key);
    }
    if (utf8Size(raw) > LIMITS.MAX_VALUE_BYTES) {
      throw new MetadataError(`metadata ${pyStr(key)} is larger than ${LIMITS.MAX_VALUE_BYTES} bytes`, key);
    }
    let value = raw;
    if (JSON_SET.has(key)) {
      let parsed;
      try {
        parsed = loads(raw);
      } catch (e) {
        if (!(e instanceof JsonError)) throw e;
        throw new MetadataError(`metadata ${pyStr(key)} is not valid JSON (${e.message})`, key);
      }
      if (parsed.depth > LIMITS.MAX_DEPTH) {
        throw new MetadataError(`metadata ${pyStr(key)} is nested deeper than ${LIMITS.MAX_DEPTH} levels`, key);
      }
      value = parsed.value;
    }
    const errors = schemaErrors(value, SCHEMAS[key]);
    if (errors.length) {
      const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
      throw new MetadataError(`metadata ${pyStr(key)} is invalid: ${errors[0]}${more}`, key);
    }
    values.set(key, value);
  }

  for (const key of [KEYS.VOCAB, KEYS.LABELS]) { // JSON escapes can spell a lone surrogate, which no text holds
    if (values.get(key).some((t) => LONE_SURROGATE.test(t))) {
      throw new MetadataError(`metadata ${pyStr(key)} holds a lone surrogate (\\ud800-\\udfff), which is not `
        + "text; re-export the model from clean data", key);
    }
  }
  const vocab = values.get(KEYS.VOCAB);
  checkVocabulary(vocab);
  if (await sha256Hex(new TextEncoder().encode(vocabJson(vocab))) !== values.get(KEYS.VOCAB_SHA256)) {
    throw new MetadataError("the vocabulary does not match its checksum: the file was edited or corrupted",
      KEYS.VOCAB_SHA256);
  }
  const task = values.get(KEYS.TASK);
  const labels = values.get(KEYS.LABELS);
  const scheme = values.get(KEYS.TAG_SCHEME);
  if (task === "lm" && labels.length) throw new MetadataError("an lm model must have no labels", KEYS.LABELS);
  if (task !== "lm" && labels.length < 2) {
    throw new MetadataError(`a ${task} model needs at least 2 labels, got ${labels.length}`, KEYS.LABELS);
  }
  if ((task === "tag") !== (scheme !== "none")) {
    throw new MetadataError(`tag_scheme ${pyStr(scheme)} does not fit task ${pyStr(task)}`, KEYS.TAG_SCHEME);
  }
  if (task !== "tag" && values.get(KEYS.LOOKAHEAD) !== "0") {
    throw new MetadataError(`only a tag model reads ahead; a ${task} model's lookahead must be 0`, KEYS.LOOKAHEAD);
  }
  if (scheme === "bmes" && (new Set(labels).size !== 4 || !["B", "M", "E", "S"].every((l) => labels.includes(l)))) {
    throw new MetadataError(`a bmes tagger needs labels B, M, E, S, got ${pyRepr(labels)}`, KEYS.LABELS);
  }
  const format = Number(values.get(KEYS.FORMAT));
  checkTokenizer(values.get(KEYS.TOKENIZER), format);
  const cell = values.get(KEYS.CELL);
  const activation = values.get(KEYS.ACTIVATION) ?? "tanh";
  if (activation !== "tanh" && cell !== "rnn") {
    throw new MetadataError(`only an rnn cell takes an activation; a ${cell} cell's are fixed`, KEYS.ACTIVATION);
  }
  const framing = values.has(KEYS.FRAMING) ? toPlain(values.get(KEYS.FRAMING)) : { bos: true, eos: true };
  if (task !== "lm" && values.has(KEYS.FRAMING)) {
    throw new MetadataError(`only an lm is framed by <bos> and <eos>; a ${task} model takes no framing`, KEYS.FRAMING);
  }
  if (!(framing.bos && framing.eos) && format < 3) {
    throw new MetadataError(`an lm framed without <bos> or <eos> needs model format 3, and the file says `
      + `format ${values.get(KEYS.FORMAT)}; re-export the model`, KEYS.FRAMING);
  }
  for (const key of [KEYS.LAYERS, KEYS.HIDDEN, KEYS.EMBED]) {
    if (parseInt(values.get(key), 10) > LIMITS.MAX_DIM) {
      throw new MetadataError(`metadata ${pyStr(key)} = ${values.get(key)} is implausibly large`, key);
    }
  }
  const [layers, hidden, embed] = [KEYS.LAYERS, KEYS.HIDDEN, KEYS.EMBED].map((k) => parseInt(values.get(k), 10));
  const nOut = task === "lm" ? vocab.length : labels.length;
  const widest = Math.max(hidden, embed);
  for (const [product, cap, what, key] of [
    [layers * hidden, LIMITS.MAX_STATE, `layers × hidden = ${layers} × ${hidden}`, KEYS.HIDDEN],
    [vocab.length * embed, LIMITS.MAX_MATRIX, `vocabulary × embed = ${vocab.length} × ${embed}`, KEYS.EMBED],
    [hidden * nOut, LIMITS.MAX_MATRIX, `hidden × outputs = ${hidden} × ${nOut}`, KEYS.HIDDEN],
    [hidden * widest, LIMITS.MAX_MATRIX, `hidden × max(hidden, embed) = ${hidden} × ${widest}`, KEYS.HIDDEN],
  ]) {
    if (product > cap) {
      throw new MetadataError(`metadata sizes ${what} = ${product} exceed what rnnkit loads (${cap}); `
        + "the file is not a model rnnkit can run", key);
    }
  }
  const stateNames = cell === "lstm" ? [[INPUT_H0, OUTPUT_HN], [INPUT_C0, OUTPUT_CN]] : [[INPUT_H0, OUTPUT_HN]];
  return freeze({
    format,
    task,
    cell,
    layers,
    hidden,
    embed,
    tokenizer: toPlain(values.get(KEYS.TOKENIZER)),
    vocab: [...vocab],
    labels: [...labels],
    tagScheme: scheme,
    lookahead: parseInt(values.get(KEYS.LOOKAHEAD), 10),
    quantization: toPlain(values.get(KEYS.QUANTIZATION)),
    provenance: toPlain(values.get(KEYS.PROVENANCE)),
    metrics: toPlain(values.get(KEYS.METRICS)),
    activation,
    bos: framing.bos,
    eos: framing.eos,
    unicode: KEYS.UNICODE !== undefined && values.has(KEYS.UNICODE) ? values.get(KEYS.UNICODE) : null,
    nOut,
    nState: stateNames.length,
    stateNames,
    inputNames: [INPUT_TOKENS, ...stateNames.map(([i]) => i)],
    outputNames: [OUTPUT_LOGITS, ...stateNames.map(([, o]) => o)],
  });
}

/** ModelSpec.check_graph: the metadata against the graph's static sizes (null: unknown). */
export function checkGraph(spec, { nOut = null, layers = null, hidden = null, vocabRows = null }) {
  const lm = spec.task === "lm";
  const checks = [
    [nOut, spec.nOut, lm ? KEYS.VOCAB : KEYS.LABELS, `the logits' last axis is ${nOut}`,
      lm ? "vocabulary size" : "label count"],
    [layers, spec.layers, KEYS.LAYERS, `the state's layer axis is ${layers}`, "layers"],
    [hidden, spec.hidden, KEYS.HIDDEN, `the state's hidden axis is ${hidden}`, "hidden"],
    [vocabRows, spec.vocab.length, KEYS.VOCAB, `the embedding has ${vocabRows} rows`, "vocabulary size"],
  ];
  for (const [actual, expected, key, what, name] of checks) {
    if (actual !== null && actual !== expected) {
      throw new MetadataError(`inconsistent model: ${what} but the metadata's ${name} is ${expected}; `
        + "re-export the model", key);
    }
  }
}

