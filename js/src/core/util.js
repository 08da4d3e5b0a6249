// Small helpers the core modules share: code points (Python's str indexing), Python-like
// value display for error messages, and argument checks.

/** The code points of a string, each as a string (a lone surrogate stays one element). */
export function codePoints(text) {
  return Array.from(text);
}

/** The number of code points in a string (Python's len). */
export function cpLength(text) {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** A string with every lone surrogate read as U+FFFD (Python cannot hold one in a model file). */
export function wellFormed(text) {
  return typeof text.toWellFormed === "function" ? text.toWellFormed()
    : text.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
}

/** A value as Python's repr would show it in an error message (close enough for one line). */
export function show(x) {
  if (x === null || x === undefined) return "None";
  if (x === true) return "True";
  if (x === false) return "False";
  if (typeof x === "string") return `'${x.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
  if (typeof x === "number") return Number.isNaN(x) ? "nan" : x === Infinity ? "inf" : x === -Infinity ? "-inf" : String(x);
  if (typeof x === "bigint") return String(x);
  if (Array.isArray(x)) return `[${x.map(show).join(", ")}]`;
  if (typeof x === "function") return `<function ${x.name || "anonymous"}>`;
  try {
    return JSON.stringify(x) ?? String(x);
  } catch {
    return String(x);
  }
}

/** The type name a TypeError message shows, as Python's type(x).__name__ would read. */
export function typeName(x) {
  if (x === null || x === undefined) return "NoneType";
  if (typeof x === "string") return "str";
  if (typeof x === "boolean") return "bool";
  if (typeof x === "number") return Number.isInteger(x) ? "int" : "float";
  if (Array.isArray(x)) return "list";
  return x?.constructor?.name ?? typeof x;
}

/** Whether x is a positive integer (booleans are not numbers here). */
export function isPositiveInt(x) {
  return typeof x === "number" && Number.isInteger(x) && x >= 1;
}

/** A text argument, or TypeError (as Python's). */
export function checkText(text, what = "text") {
  if (typeof text !== "string") throw new TypeError(`${what} must be str, got ${typeName(text)}`);
  return text;
}

/** The code points [start, end) of text (Python's text[start:end]). */
export function cpSlice(text, start, end) {
  return Array.from(text).slice(start, end).join("");
}

/** n bytes for a message: "512 bytes", "1.5 MiB" (as runtime/text.py's byte_size). */
export function byteSize(n) {
  for (const [unit, scale] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (n >= scale) return `${(n / scale).toFixed(1)} ${unit}`;
  }
  return `${n.toFixed(0)} bytes`;
}

/** The index of the first largest value (numpy's argmax) in values[from, to). */
export function argmax(values, from = 0, to = values.length) {
  let best = from;
  for (let i = from + 1; i < to; i++) if (values[i] > values[best]) best = i;
  return best - from;
}
