// JSON read as Python's json.loads reads it, so a metadata value is accepted or refused alike in
// both runtimes: NaN, Infinity and -Infinity are numbers; an integer (no fraction, no exponent) is
// a Python int, kept apart from a float (the schemas' "integer" refuses 1.0); an object keeps its
// keys in order, the last of a repeated key winning; lone surrogate escapes stay in the string.
// Errors carry Python's messages ("Expecting value: line 1 column 1 (char 0)").
//
// The result is a tree for schema.js: strings, booleans, null, Array, Map (objects), BigInt
// (ints) and Number (floats). toPlain() turns it into ordinary JavaScript values. The parser is
// iterative: any nesting parses, and `depth` says how deep it went (contract.js caps it).

/** Python's json.JSONDecodeError: `message` is what str(e) gives in Python. */
export class JsonError extends Error {
  constructor(message) {
    super(message);
    this.name = "JSONDecodeError";
  }
}

const WS = new Set([0x20, 0x09, 0x0a, 0x0d]);
const ESCAPES = { '"': '"', "\\": "\\", "/": "/", b: "\b", f: "\f", n: "\n", r: "\r", t: "\t" };
const NUMBER = /-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/y;
const MAX_INT_DIGITS = 4300; // sys.get_int_max_str_digits() by default

function fail(text, what, pos) {
  // Python counts characters (code points), JavaScript UTF-16 units: count the pairs before pos
  let chars = 0;
  let line = 1;
  let lastNewline = -1;
  for (let i = 0; i < pos; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < pos) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    if (c === 0x0a) {
      line++;
      lastNewline = chars;
    }
    chars++;
  }
  const column = chars - lastNewline;
  throw new JsonError(`${what}: line ${line} column ${column} (char ${chars})`);
}

function skip(text, pos) {
  while (pos < text.length && WS.has(text.charCodeAt(pos))) pos++;
  return pos;
}

function scanString(text, start) {
  // start: the opening quote
  let pos = start + 1;
  let out = "";
  let chunk = pos;
  for (;;) {
    if (pos >= text.length) fail(text, "Unterminated string starting at", start);
    const c = text.charCodeAt(pos);
    if (c === 0x22) {
      out += text.slice(chunk, pos);
      return [out, pos + 1];
    }
    if (c < 0x20) fail(text, "Invalid control character at", pos);
    if (c !== 0x5c) {
      pos++;
      continue;
    }
    out += text.slice(chunk, pos);
    if (pos + 1 >= text.length) fail(text, "Unterminated string starting at", start);
    const e = text[pos + 1];
    if (e !== "u") {
      if (!(e in ESCAPES)) fail(text, "Invalid \\escape", pos);
      out += ESCAPES[e];
      pos += 2;
      chunk = pos;
      continue;
    }
    let code = hex4(text, pos + 2);
    if (code < 0) fail(text, "Invalid \\uXXXX escape", pos + 1);
    pos += 6;
    if (code >= 0xd800 && code <= 0xdbff && text[pos] === "\\" && text[pos + 1] === "u") {
      const low = hex4(text, pos + 2);
      if (low >= 0xdc00 && low <= 0xdfff) {
        out += String.fromCharCode(code, low);
        pos += 6;
        chunk = pos;
        continue;
      }
    }
    out += String.fromCharCode(code);
    chunk = pos;
  }
}

function hex4(text, pos) {
  if (pos + 4 >= text.length) return -1; // Python wants the closing quote after the digits too
  const digits = text.slice(pos, pos + 4);
  return /^[0-9a-fA-F]{4}$/.test(digits) ? parseInt(digits, 16) : -1;
}

/** Parse one value at `pos` that is not an array or object; returns [value, end] or null. */
function scalar(text, pos) {
  const c = text[pos];
  if (c === '"') return scanString(text, pos);
  if (c === "n" && text.startsWith("null", pos)) return [null, pos + 4];
  if (c === "t" && text.startsWith("true", pos)) return [true, pos + 4];
  if (c === "f" && text.startsWith("false", pos)) return [false, pos + 5];
  if (c === "N" && text.startsWith("NaN", pos)) return [NaN, pos + 3];
  if (c === "I" && text.startsWith("Infinity", pos)) return [Infinity, pos + 8];
  if (c === "-" && text.startsWith("-Infinity", pos)) return [-Infinity, pos + 9];
  NUMBER.lastIndex = pos;
  const m = NUMBER.exec(text);
  if (m === null) return null;
  const integer = m[1] === undefined && m[2] === undefined;
  const digits = m[0].length - (m[0][0] === "-" ? 1 : 0);
  if (integer && digits > MAX_INT_DIGITS) { // Python's int-from-text limit (a ValueError there too)
    throw new JsonError(`Exceeds the limit (${MAX_INT_DIGITS} digits) for integer string conversion: value has `
      + `${digits} digits; use sys.set_int_max_str_digits() to increase the limit`);
  }
  const value = integer ? BigInt(m[0]) : Number(m[0]);
  return [value, pos + m[0].length];
}

/**
 * Python's json.loads(text): returns {value, depth}; throws JsonError. `depth` counts nested
 * arrays and objects (a scalar is 0), as contract.py's _depth does.
 */
export function loads(text) {
  const stack = []; // {container, key} frames
  let depth = 0;
  let pos = skip(text, 0);
  let value;
  for (;;) {
    // parse a value at pos
    const c = text[pos];
    let done = false;
    if (c === "[" || c === "{") {
      const frame = c === "[" ? { list: [], key: null } : { map: new Map(), key: null };
      stack.push(frame);
      if (stack.length > depth) depth = stack.length;
      pos = skip(text, pos + 1);
      if (c === "[") {
        if (text[pos] === "]") {
          stack.pop();
          value = frame.list;
          pos += 1;
          done = true;
        } else continue;
      } else {
        if (text[pos] === "}") {
          stack.pop();
          value = frame.map;
          pos += 1;
          done = true;
        } else {
          pos = objectKey(text, pos, frame);
          continue;
        }
      }
    } else {
      const got = pos < text.length ? scalar(text, pos) : null;
      if (got === null) fail(text, "Expecting value", pos);
      [value, pos] = got;
      done = true;
    }
    // a value is complete: hand it to its container, closing every container it completes
    while (done) {
      const frame = stack[stack.length - 1];
      if (frame === undefined) {
        pos = skip(text, pos);
        if (pos !== text.length) fail(text, "Extra data", pos);
        return { value, depth };
      }
      if (frame.list) frame.list.push(value);
      else frame.map.set(frame.key, value);
      pos = skip(text, pos);
      const close = frame.list ? "]" : "}";
      if (text[pos] === close) {
        stack.pop();
        value = frame.list || frame.map;
        pos += 1;
        continue;
      }
      if (text[pos] !== ",") fail(text, "Expecting ',' delimiter", pos);
      pos = skip(text, pos + 1);
      if (frame.map) pos = objectKey(text, pos, frame);
      done = false;
    }
  }
}

function objectKey(text, pos, frame) {
  if (text[pos] !== '"') fail(text, "Expecting property name enclosed in double quotes", pos);
  const [key, end] = scanString(text, pos);
  frame.key = key;
  pos = skip(text, end);
  if (text[pos] !== ":") fail(text, "Expecting ':' delimiter", pos);
  return skip(text, pos + 1);
}

/** The tree of loads() as plain JavaScript values (objects for Maps, Numbers for ints). */
export function toPlain(value) {
  if (typeof value === "bigint") return Number(value);
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) {
    const out = {};
    for (const [k, v] of value) Object.defineProperty(out, k, { value: toPlain(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}
