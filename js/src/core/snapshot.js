// The snapshot byte format shared by Stream and TagStream, and by every runtime (docs/FORMAT.md,
// "Snapshots") — a port of runtime/snapshot.py, versions 4 and 5:
//
//     magic "RNNKSNAP" · u16 version · u32 header length      (little-endian)
//     header: UTF-8 JSON object (compact; keys kind, model, states, shape, pending, consumed,
//             logits, then the kind's extra object, then signed)
//     body: float32 little-endian — each state array (layers × 1 × hidden), then the last
//           logits (n_out) when the header's "logits" is not null
//     the first 16 bytes of SHA-256 of everything before it
//     version 5 only: HMAC-SHA256 of everything before it, under the caller's key
//
// A snapshot is untrusted input: every field is checked before anything is restored, as
// Python checks it (its JSON is read with Python's rules: 5.0 is not an integer), and one
// that does not fit the model is refused with a StateError. Versions 1–3 (blake2b digests)
// are read only by the Python runtime.

import { ConfigError, StateError } from "./errors.js";
import { hmacSha256, sha256 } from "./sha256.js";
import { loads } from "./pyjson.js";
import { typeName } from "./util.js";

export const MAGIC = "RNNKSNAP";
export const VERSION = 4;
export const SIGNED = 5;
export const KINDS = Object.freeze({ stream: "model.stream(snapshot)", tag: "model.tagStream(snapshot)" });
export const MAX_CONSUMED = 2 ** 53; // a counter every runtime reads exactly
const HEADER = 14; // magic, u16 version, u32 header length
const DIGEST = 16;
const TAG = 32; // HMAC-SHA256
const SIGNATURE = "hmac-sha256";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A signing key as bytes (a string is encoded UTF-8), or null; ConfigError if empty. */
export function checkKey(key) {
  if (key === null || key === undefined) return null;
  let bytes;
  if (typeof key === "string") {
    if (!key.isWellFormed()) {
      throw new ConfigError("a snapshot key that is a str must be encodable as UTF-8 (it holds a lone "
        + "surrogate); pass bytes");
    }
    bytes = encoder.encode(key);
  } else if (key instanceof Uint8Array) {
    bytes = key.slice();
  } else if (key instanceof ArrayBuffer) {
    bytes = new Uint8Array(key.slice(0));
  } else if (ArrayBuffer.isView(key)) {
    bytes = new Uint8Array(key.buffer.slice(key.byteOffset, key.byteOffset + key.byteLength));
  } else {
    throw new TypeError(`a snapshot key is bytes or str, got ${typeName(key)}`);
  }
  if (!bytes.length) {
    throw new ConfigError("a snapshot key must not be empty; use a secret of 32 random bytes "
      + "(crypto.getRandomValues(new Uint8Array(32)))");
  }
  return bytes;
}

function digest(data) {
  return sha256(data).subarray(0, DIGEST);
}

function sameBytes(a, b) { // constant-time for equal lengths
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Snapshot bytes of one stream: its state arrays (each layers × 1 × hidden), last logits,
 * counters; signed when key (bytes from checkKey) is given.
 */
export function pack(model, kind, state, logits, { pending, consumed, extra = null, key = null }) {
  const spec = model.spec;
  const header = {
    kind, model: model.identity, states: state.length, shape: [spec.layers, 1, spec.hidden],
    pending, consumed, logits: logits === null ? null : logits.length,
  };
  if (extra && Object.keys(extra).length) header[kind] = extra;
  if (key !== null) header.signed = SIGNATURE;
  const raw = encoder.encode(JSON.stringify(header)); // Python's json.dumps(separators=(",", ":")) bytes
  const arrays = [...state, ...(logits === null ? [] : [logits])];
  const body = new Uint8Array(4 * arrays.reduce((n, a) => n + a.length, 0));
  const view = new DataView(body.buffer);
  let at = 0;
  for (const a of arrays) {
    for (let i = 0; i < a.length; i++, at += 4) view.setFloat32(at, a[i], true);
  }
  const head = new Uint8Array(HEADER);
  const hv = new DataView(head.buffer);
  for (let i = 0; i < 8; i++) head[i] = MAGIC.charCodeAt(i);
  hv.setUint16(8, key === null ? VERSION : SIGNED, true);
  hv.setUint32(10, raw.length, true);
  let data = concat([head, raw, body]);
  data = concat([data, digest(data)]);
  return key === null ? data : concat([data, hmacSha256(key, data)]);
}

function asBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError(`a snapshot is bytes, got ${typeName(data)}`);
}

/**
 * The header, state arrays and logits of a `kind` snapshot of model; StateError otherwise.
 * With key (bytes from checkKey) only a snapshot signed with it restores; without, only an
 * unsigned one. Every value restored is finite.
 * @returns {{header: object, state: Float32Array[], logits: Float32Array|null}}
 */
export function unpack(model, input, kind, { key = null } = {}) {
  let data = asBytes(input).slice(); // a copy: the caller's buffer may change under us
  if (data.length < HEADER) throw new StateError("this is not a stream snapshot (or it is truncated)");
  const dv = new DataView(data.buffer);
  const magic = String.fromCharCode(...data.subarray(0, 8));
  const version = dv.getUint16(8, true);
  const size = dv.getUint32(10, true);
  if (magic === MAGIC && version >= 1 && version <= 3) {
    throw new StateError(`this is a version ${version} snapshot, which only the Python runtime reads (its `
      + "checksum is blake2b): restore it there with an rnnkit that writes version 4 and snapshot it again");
  }
  if (magic !== MAGIC || (version !== VERSION && version !== SIGNED)) {
    throw new StateError("this is not a stream snapshot of this rnnkit version");
  }
  const signed = version === SIGNED;
  if (signed && key === null) {
    throw new StateError("this snapshot is signed: restore it with the key it was signed with (key=...)");
  }
  if (!signed && key !== null) {
    throw new StateError("this snapshot is not signed and a key was given: only snapshots signed with "
      + "that key restore (take them with snapshot({key}))");
  }
  if (signed) { // the signature first: nothing of a forged snapshot is parsed
    if (data.length < HEADER + DIGEST + TAG
        || !sameBytes(hmacSha256(key, data.subarray(0, data.length - TAG)), data.subarray(data.length - TAG))) {
      throw new StateError("this snapshot's signature does not match the key: it was signed with another "
        + "key, or edited");
    }
    data = data.subarray(0, data.length - TAG);
  }
  let header, lone;
  try {
    const text = decoder.decode(data.subarray(HEADER, Math.min(data.length, HEADER + size)));
    ({ value: header, lone } = parsePythonJson(text));
  } catch (e) {
    if (e instanceof StateError) throw e;
    throw new StateError("this is not a stream snapshot (or it is truncated)");
  }
  if (lone) { // JSON escapes can spell lone surrogates, which no text holds
    throw new StateError("this snapshot is corrupt (its text holds a lone surrogate, which is not Unicode text)");
  }
  if (!isDict(header)) throw new StateError("this is not a stream snapshot of this rnnkit version");
  if (header.model !== model.identity) {
    throw new StateError("this snapshot was taken from another model; restore it with the model that made it");
  }
  const found = header.kind;
  if (found !== kind) {
    if (typeof found === "string" && Object.hasOwn(KINDS, found)) {
      throw new StateError(`this is a ${found} snapshot, not a ${kind} one: restore it with ${KINDS[found]}`);
    }
    throw new StateError("this snapshot is corrupt (its header does not fit the model)");
  }
  const spec = model.spec;
  const shape = [spec.layers, 1, spec.hidden];
  const { logits: nLogits, pending, consumed } = header;
  const shapeOk = Array.isArray(header.shape) && header.shape.length === 3
    && header.shape.every((d, i) => pyEqual(d, shape[i]));
  if (!pyEqual(header.states, spec.nState) || !shapeOk
      || (nLogits !== null && nLogits !== undefined && (!isInt(nLogits) || nLogits !== model.nOut))
      || typeof pending !== "string" || !isInt(consumed) || !(consumed >= 0 && consumed <= MAX_CONSUMED)
      || !pyEqual(header.signed ?? null, signed ? SIGNATURE : null)) {
    throw new StateError("this snapshot is corrupt (its header does not fit the model)");
  }
  const sizeState = spec.layers * spec.hidden;
  const nValues = spec.nState * sizeState + (nLogits ?? 0);
  const bodyStart = HEADER + size, bodyEnd = data.length - DIGEST;
  if (Math.max(0, bodyEnd - bodyStart) !== 4 * nValues) throw new StateError("this snapshot is truncated or corrupt");
  if (!sameBytes(digest(data.subarray(0, bodyEnd)), data.subarray(bodyEnd))) {
    throw new StateError("this snapshot was edited or damaged (its checksum does not match)");
  }
  const flat = new Float32Array(nValues);
  const body = new DataView(data.buffer, data.byteOffset + bodyStart, 4 * nValues);
  for (let i = 0; i < nValues; i++) {
    flat[i] = body.getFloat32(4 * i, true);
    if (!Number.isFinite(flat[i])) {
      throw new StateError("this snapshot holds NaN or infinity in its state or logits; it is corrupt, or its "
        + "stream had diverged: start a new stream");
    }
  }
  const state = Array.from({ length: spec.nState }, (_, i) => flat.slice(i * sizeState, (i + 1) * sizeState));
  const logits = nLogits ? flat.slice(spec.nState * sizeState) : null;
  return { header, state, logits };
}

// -- the header as Python's json.loads reads it ----------------------------------------------
// pyjson.js parses (Python's rules: NaN and Infinity are floats, duplicate keys keep the last
// value, ints apart from floats); the tree is then made what the checks below and tagging.js
// read: objects as plain objects, an int as a Number (a BigInt past 2^53), a float as a PyFloat,
// so `type(x) is int` checks still tell 5 from 5.0.

/** A JSON number with a fraction or an exponent (a Python float). */
export class PyFloat {
  constructor(value) {
    this.value = value;
  }
}

/** Whether x is what Python's json reads as an int. */
export function isInt(x) {
  return (typeof x === "number" && Number.isInteger(x)) || typeof x === "bigint";
}

/** Whether x is what Python's json reads as a dict. */
export function isDict(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x) && !(x instanceof PyFloat);
}

/** Python's == between a JSON value and a number, string or null (True == 1 == 1.0). */
export function pyEqual(x, want) {
  if (want === null) return x === null || x === undefined;
  if (typeof want === "string") return x === want;
  const n = typeof x === "boolean" ? Number(x) : x instanceof PyFloat ? x.value : x;
  return (typeof n === "number" || typeof n === "bigint") && n == want; // eslint-disable-line eqeqeq
}

const MAX_DEPTH = 1000; // past Python's recursion limit json.loads fails

/** Parse JSON text as Python's json.loads does; throws where it would fail. `lone`: a string
 * (or key) holds a lone surrogate. */
export function parsePythonJson(text) {
  const { value, depth } = loads(text);
  if (depth > MAX_DEPTH) throw new SyntaxError("JSON nested too deep");
  let lone = false;
  const str = (s) => {
    if (!s.isWellFormed()) lone = true;
    return s;
  };
  const convert = (v) => {
    if (typeof v === "string") return str(v);
    if (typeof v === "bigint") return v >= -(2n ** 53n) && v <= 2n ** 53n ? Number(v) : v;
    if (typeof v === "number") return new PyFloat(v);
    if (Array.isArray(v)) return v.map(convert);
    if (v instanceof Map) {
      const obj = Object.create(null);
      for (const [k, x] of v) obj[str(k)] = convert(x);
      return obj;
    }
    return v; // null, true, false
  };
  return { value: convert(value), lone };
}
