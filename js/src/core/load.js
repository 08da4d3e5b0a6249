// Reading a model file that may be hostile, as runtime/model.py's load_model does: the bytes are
// read under a size cap, parsed, and every check (metadata, graph, sizes, the onnxruntime version
// a quantized file needs) runs BEFORE onnxruntime sees them; the session is then built from those
// very bytes. Core stays environment-free: paths are read by an injected `readFile` (the Node
// entry passes one made by makeFileReader(fs/promises)); URLs by `fetch`.

import { specFromMetadata, sha256Hex } from "./contract.js";
import {
  ConfigError, MetadataError, MissingDependencyError, ModelFileError, ModelNotFoundError, ProviderError,
} from "./errors.js";
import { checkModel, requiredOnnxruntime } from "./graphcheck.js";
import { OnnxFormatError, readOnnx } from "./protobuf.js";
import { pyRepr } from "./schema.js";
import { LIMITS } from "./schemas.js";

export const MAX_FILE_BYTES = LIMITS.MAX_FILE_BYTES; // protobuf's own limit: 2 GiB - 1
const MAX_THREADS = LIMITS.MAX_THREADS;
const URL_SCHEME = /^(https?|blob|data|file):/i;
const STRERROR = {
  ENOENT: "No such file or directory", EACCES: "Permission denied", EPERM: "Operation not permitted",
  ENOTDIR: "Not a directory", EISDIR: "Is a directory", ENAMETOOLONG: "File name too long",
  ELOOP: "Too many levels of symbolic links", EMFILE: "Too many open files", EIO: "Input/output error",
};

function isBlob(source) {
  return typeof Blob !== "undefined" && source instanceof Blob;
}

/** How messages name a model source: its path, its URL, a File's name, or "the model file". */
export function describeSource(source) {
  if (typeof source === "string") return source;
  if (source instanceof URL) return source.protocol === "file:" ? decodeURIComponent(source.pathname) : source.href;
  if (isBlob(source) && typeof source.name === "string" && source.name) return source.name;
  return "the model file";
}

function tooLarge(name, size, maxBytes) {
  if (maxBytes === MAX_FILE_BYTES) {
    return new ModelFileError(`${name} is ${size} bytes, more than an ONNX file can hold (2 GiB); `
      + "re-export it with its weights in external data");
  }
  return new ModelFileError(`${name} is ${size} bytes, more than maxBytes (${maxBytes}); refused`);
}

function checkMaxBytes(maxBytes) {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_FILE_BYTES) {
    throw new ConfigError(`maxBytes must be an integer from 1 to ${MAX_FILE_BYTES}, got ${pyRepr(maxBytes ?? null)}`);
  }
}

async function fetchBytes(url, name, maxBytes, fetchImpl) {
  const get = fetchImpl ?? globalThis.fetch;
  if (typeof get !== "function") throw new ConfigError(`cannot fetch ${name}: this environment has no fetch`);
  let response;
  try {
    response = await get(url);
  } catch (e) {
    throw new ModelFileError(`cannot read ${name}: ${e?.message ?? e}; check the URL`, { cause: e });
  }
  if (response.status === 404) throw new ModelNotFoundError(`no model file at ${name} (HTTP 404)`);
  if (!response.ok) throw new ModelFileError(`cannot read ${name}: HTTP ${response.status} ${response.statusText}`.trimEnd());
  const declared = Number(response.headers?.get?.("content-length"));
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge(name, declared, maxBytes);
  if (!response.body?.getReader) {
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > maxBytes) throw tooLarge(name, bytes.length, maxBytes);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(name, `more than ${maxBytes}`, maxBytes);
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/**
 * The bytes of a model: a Uint8Array or ArrayBuffer (copied, so a change after the checks cannot
 * slip in), a Blob/File, a URL (http(s), blob, data; file: and plain paths through `readFile`).
 * Refuses more than `maxBytes` (default 2 GiB - 1, protobuf's limit) before reading where the
 * size is known.
 *
 * @param {Uint8Array|ArrayBuffer|Blob|URL|string} source
 * @param {{maxBytes?: number, readFile?: (path: string|URL, maxBytes: number) => Promise<Uint8Array>,
 *          fetch?: typeof fetch}} [options]
 */
export async function readModelBytes(source, { maxBytes = MAX_FILE_BYTES, readFile, fetch } = {}) {
  checkMaxBytes(maxBytes);
  const name = describeSource(source);
  if (source instanceof Uint8Array || source instanceof ArrayBuffer) {
    const size = source.byteLength;
    if (size > maxBytes) throw tooLarge(name, size, maxBytes);
    return source instanceof ArrayBuffer ? new Uint8Array(source.slice(0)) : source.slice();
  }
  if (ArrayBuffer.isView(source)) {
    throw new ConfigError(`a model's bytes are a Uint8Array or an ArrayBuffer, got ${source.constructor.name}`);
  }
  if (isBlob(source)) {
    if (source.size > maxBytes) throw tooLarge(name, source.size, maxBytes);
    const bytes = new Uint8Array(await source.arrayBuffer());
    if (bytes.length > maxBytes) throw tooLarge(name, bytes.length, maxBytes);
    return bytes;
  }
  const isUrl = source instanceof URL || (typeof source === "string" && URL_SCHEME.test(source));
  if (isUrl) {
    const url = source instanceof URL ? source : new URL(source);
    if (url.protocol !== "file:") return fetchBytes(url, name, maxBytes, fetch);
  } else if (typeof source !== "string") {
    throw new ConfigError("a model source is a Uint8Array, an ArrayBuffer, a Blob/File, a URL or a path, "
      + `got ${source === null ? "null" : typeof source}`);
  }
  if (typeof readFile !== "function") {
    throw new ConfigError(`cannot read the path ${name} here: pass the model's bytes, a File or an http(s) URL `
      + "(paths are read by the Node entry)");
  }
  const bytes = await readFile(source instanceof URL ? source : String(source), maxBytes);
  if (bytes.length > maxBytes) throw new ModelFileError(`${name} grew past ${maxBytes} bytes while it was read; refused`);
  return bytes;
}

/**
 * A `readFile(path, maxBytes)` for readModelBytes from Node's `fs/promises`, refusing what
 * runtime/session.py refuses (a missing file, a folder, a pipe or device, a file too large) with
 * the same error classes and messages.
 */
export function makeFileReader(fs) {
  return async function readFile(path, maxBytes = MAX_FILE_BYTES) {
    const name = describeSource(path);
    const fail = (e) => {
      if (e?.code === "ENOENT") return new ModelNotFoundError(`no model file at ${name}`);
      const why = STRERROR[e?.code] ?? e?.message ?? String(e);
      return new ModelFileError(`cannot read ${name}: ${why}; check the path and its permissions`, { cause: e });
    };
    let info;
    try {
      info = await fs.stat(path);
    } catch (e) {
      throw fail(e);
    }
    if (info.isDirectory()) throw new ModelFileError(`${name} is a folder; give the .onnx file`);
    if (!info.isFile()) { // reading a FIFO or a device would block or never end
      throw new ModelFileError(`${name} is not a regular file (a pipe or a device); give the .onnx file`);
    }
    let handle;
    try {
      handle = await fs.open(path, "r");
      const size = (await handle.stat()).size;
      if (size > maxBytes) throw tooLarge(name, size, maxBytes);
      const bytes = await handle.readFile();
      if (bytes.length > maxBytes) {
        throw new ModelFileError(`${name} grew past ${maxBytes === MAX_FILE_BYTES ? "2 GiB" : `${maxBytes} bytes`} `
          + "while it was read; refused");
      }
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    } catch (e) {
      if (e instanceof ModelFileError) throw e;
      throw fail(e);
    } finally {
      await handle?.close();
    }
  };
}

// -- onnxruntime -------------------------------------------------------------------------------
/** "1.20.1" → [1, 20, 1]: each part's leading digits (a "-dev" or "+cu12" suffix is dropped). */
export function versionTuple(text) {
  const parts = [];
  for (const piece of String(text).split("+")[0].split(".").slice(0, 3)) {
    const digits = /^[0-9]+/.exec(piece);
    if (digits === null) break;
    parts.push(Number(digits[0]));
  }
  while (parts.length < 3) parts.push(0);
  return parts;
}

function older(a, b) {
  const x = versionTuple(a);
  const y = versionTuple(b);
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i];
  return false;
}

/** The onnxruntime version an `ort` module reports (onnxruntime-common's env.versions), or null. */
export function ortVersion(ort) {
  return ort?.env?.versions?.common ?? null;
}

/**
 * Refuse a file whose operators need a newer onnxruntime than `installed` (session.py's
 * check_onnxruntime_version): the metadata's min_onnxruntime, and what the graph's own operators need.
 */
export function checkOnnxruntimeVersion(quantization, where, installed, { graphNeeds = null } = {}) {
  const needs = [quantization.min_onnxruntime, graphNeeds].filter((v) => v);
  if (!needs.length || installed === null) return;
  const need = needs.reduce((best, v) => (older(best, v) ? v : best));
  if (older(installed, need)) {
    const ops = (quantization.operators ?? []).join(", ") || "its operators";
    throw new ModelFileError(`${where} (${quantization.mode ?? "None"}) needs onnxruntime ≥ ${need} for ${ops}; this `
      + `one is ${installed}: upgrade it (npm install onnxruntime-node@latest or onnxruntime-web@latest), or export `
      + "the model with --quantize int8, which runs on every supported onnxruntime");
  }
}

function sessionOptions(executionProviders, threads) {
  if (threads !== null && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    const cores = globalThis.navigator?.hardwareConcurrency;
    throw new ConfigError(`threads must be an integer from 1 to ${MAX_THREADS} or None, got ${pyRepr(threads ?? null)}`
      + (cores ? ` (this machine has ${cores} cores)` : ""));
  }
  const options = {
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    logSeverityLevel: 3, // errors only: the host app's console is not ours to fill
    // idle worker threads must not busy-wait (session.py: spin=False)
    extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
  };
  if (threads !== null) options.intraOpNumThreads = threads;
  if (executionProviders === undefined || executionProviders === null || executionProviders === "auto") {
    return options; // onnxruntime's own default: cpu in Node, wasm in browsers
  }
  if (typeof executionProviders === "string") {
    options.executionProviders = executionProviders === "cuda" ? ["cuda", "cpu"] : [executionProviders];
  } else if (Array.isArray(executionProviders) && executionProviders.length) {
    options.executionProviders = [...executionProviders];
  } else {
    throw new ConfigError("executionProviders must be 'auto', a provider name ('cpu', 'wasm', 'webgpu', …) or a "
      + `non-empty list of them, got ${Array.isArray(executionProviders) ? "[]" : typeof executionProviders}`);
  }
  return options;
}

function loadError(where, e) {
  const text = String(e?.message ?? e).replace(/\s*\n\s*/g, " ");
  if (/backend|execution provider|provider/i.test(text) && !/protobuf/i.test(text)) {
    return new ProviderError(`onnxruntime cannot start the requested execution provider for ${where}: `
      + `${text.slice(0, 300)}`, { cause: e });
  }
  if (/Protobuf parsing failed|INVALID_PROTOBUF|No graph was found/.test(text)) {
    return new ModelFileError(`${where} is not an ONNX model or is truncated; re-export it with \`rnnkit export\``,
      { cause: e });
  }
  return new ModelFileError(`onnxruntime cannot load ${where}: ${text.slice(0, 300)}`, { cause: e });
}

/**
 * Check a model's bytes the way the Python runtime does, then build its onnxruntime session.
 *
 * Resolves to {spec, session, identity (hex SHA-256 of the bytes), warnings (string[]), budget}.
 * Nothing reaches onnxruntime before every check has passed.
 *
 * @param {Uint8Array} bytes
 * @param {{ort: any, executionProviders?: string|string[], threads?: number|null,
 *          maxCallBytes?: number, name?: string, unicodeVersion?: string|null,
 *          onWarning?: (message: string) => void}} options
 */
export async function openModel(bytes, {
  ort, executionProviders, threads = 1, maxCallBytes = LIMITS.DEFAULT_CALL_BYTES, name = "the model file",
  unicodeVersion = null, onWarning = (message) => console.warn(message),
} = {}) {
  if (!(bytes instanceof Uint8Array)) throw new ConfigError("openModel takes the model's bytes as a Uint8Array");
  if (!Number.isSafeInteger(maxCallBytes) || maxCallBytes < 1) {
    throw new ConfigError(`max_call_bytes must be a positive integer, got ${pyRepr(maxCallBytes ?? null)}`);
  }
  const options = sessionOptions(executionProviders, threads);
  if (!ort?.InferenceSession?.create) {
    throw new MissingDependencyError("no onnxruntime: pass `ort` (onnxruntime-node or onnxruntime-web), "
      + "or use the package's node or browser entry");
  }
  let graph;
  try {
    graph = readOnnx(bytes);
  } catch (e) {
    if (!(e instanceof OnnxFormatError)) throw e;
    throw new ModelFileError(`${name} is not an ONNX model or is truncated (${e.message}); `
      + "re-export it with `rnnkit export`");
  }
  if (!graph.hasGraph) {
    throw new ModelFileError(`${name} is not an ONNX model or is truncated (it has no graph); `
      + "re-export it with `rnnkit export`");
  }
  const spec = await specFromMetadata(graph.metadata);
  const budget = checkModel(graph, spec, name, { maxCallBytes });
  const warnings = [];
  const warn = (message) => {
    warnings.push(message);
    onWarning?.(message);
  };
  const installed = ortVersion(ort);
  const graphNeeds = requiredOnnxruntime(graph);
  if (installed === null && (spec.quantization.min_onnxruntime || graphNeeds)) {
    warn(`${name} (${spec.quantization.mode}) needs onnxruntime ≥ ${spec.quantization.min_onnxruntime ?? graphNeeds}, `
      + "and this ort does not say its version (ort.env.versions.common)");
  }
  checkOnnxruntimeVersion(spec.quantization, name, installed, { graphNeeds });
  graph = null; // its tensors are views of `bytes`: let them go before the session holds its own copy
  const identity = await sha256Hex(bytes);
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, options);
  } catch (e) {
    throw loadError(name, e);
  }
  const outputs = [...(session.outputNames ?? spec.outputNames)];
  if (outputs.length !== spec.outputNames.length || outputs.some((o, i) => o !== spec.outputNames[i])) {
    await session.release?.();
    throw new MetadataError(`inconsistent model: onnxruntime reports outputs ${pyRepr(outputs)}, `
      + `not ${pyRepr(spec.outputNames)}; re-export it`, null);
  }
  if (spec.unicode !== null && unicodeVersion !== null && spec.unicode !== unicodeVersion) {
    warn(`this model's text was normalised with Unicode ${spec.unicode} tables and rnnkit's JavaScript tables are `
      + `Unicode ${unicodeVersion}; the few characters whose mapping changed between them may tokenize differently: `
      + `run it on a Python with Unicode ${spec.unicode} for identical results`);
  }
  return { spec, session, identity, warnings, budget };
}
