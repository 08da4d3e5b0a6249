// The small JSON Schema validator of runtime/schema.py, for the keywords the model format's
// schemas use, with Python's semantics: values are pyjson.js trees (Map objects, BigInt ints,
// Number floats), lengths count code points, and messages are Python's
// ("$.a[3]: expected string, got int 4").

import { pyStr } from "./protobuf.js";

const TYPES = {
  object: (v) => v instanceof Map,
  array: (v) => Array.isArray(v),
  string: (v) => typeof v === "string",
  integer: (v) => typeof v === "bigint",
  number: (v) => typeof v === "bigint" || typeof v === "number",
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
};
const PATTERNS = new Map();

/** The length of `text` in code points (Python's len). */
export function codePoints(text) {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n--;
        i++;
      }
    }
  }
  return n;
}

/** The first `n` code points of `text` (Python's text[:n]). */
export function headChars(text, n) {
  if (text.length <= n) return text;
  let out = 0;
  for (let seen = 0; out < text.length && seen < n; seen++) {
    const c = text.charCodeAt(out);
    out += c >= 0xd800 && c <= 0xdbff && out + 1 < text.length
      && (text.charCodeAt(out + 1) & 0xfc00) === 0xdc00 ? 2 : 1;
  }
  return text.slice(0, out);
}

function regex(pattern) {
  // JSON Schema's patterns are ECMA-262's, as runtime/schema.py reads them too ($ is the end of the text)
  let re = PATTERNS.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, "u");
    PATTERNS.set(pattern, re);
  }
  return re;
}

/** Python's == for JSON values (1 == 1.0 == True). */
export function pyEquals(a, b) {
  const numeric = (v) => typeof v === "bigint" || typeof v === "number" || typeof v === "boolean";
  if (numeric(a) && numeric(b)) {
    const x = typeof a === "boolean" ? BigInt(a) : a;
    const y = typeof b === "boolean" ? BigInt(b) : b;
    return typeof x === typeof y ? x === y : x == y; // eslint-disable-line eqeqeq
  }
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => pyEquals(v, b[i]));
  if (a instanceof Map && b instanceof Map) {
    return a.size === b.size && [...a].every(([k, v]) => b.has(k) && pyEquals(v, b.get(k)));
  }
  if (a instanceof Map || b instanceof Map) {
    const [m, o] = a instanceof Map ? [a, b] : [b, a];
    if (o === null || typeof o !== "object" || Array.isArray(o)) return false;
    const keys = Object.keys(o);
    return m.size === keys.length && keys.every((k) => m.has(k) && pyEquals(m.get(k), o[k]));
  }
  return a === b;
}

/** Python's repr of a float. */
export function floatRepr(x) {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, exp] = x.toExponential().split("e");
  const e = Number(exp);
  if (e < -4 || e >= 16) {
    const m = mantissa.replace(".", "").length > 1 ? mantissa : mantissa.replace(/\.0*$/, "");
    return `${m}e${e < 0 ? "-" : "+"}${String(Math.abs(e)).padStart(2, "0")}`;
  }
  const text = String(x);
  return text.includes(".") || text.includes("e") ? text : `${text}.0`;
}

/**
 * Python's repr of a JSON value, cut near `limit` characters: a pyjson tree (its Numbers are
 * floats), or with `floats: false` plain values from the schemas (their Numbers are ints).
 */
export function pyRepr(value, limit = Infinity, { floats = true } = {}) {
  const out = [];
  let size = 0;
  const put = (s) => {
    out.push(s);
    size += s.length;
    return size > limit;
  };
  const walk = (v) => {
    if (typeof v === "string") return put(pyStr(v));
    if (typeof v === "bigint") return put(String(v));
    if (typeof v === "number") return put(floats ? floatRepr(v) : String(v));
    if (typeof v === "boolean") return put(v ? "True" : "False");
    if (v === null || v === undefined) return put("None");
    if (Array.isArray(v)) {
      if (put("[")) return true;
      for (let i = 0; i < v.length; i++) {
        if ((i && put(", ")) || walk(v[i])) return true;
      }
      return put("]");
    }
    const entries = v instanceof Map ? [...v] : Object.entries(v);
    if (put("{")) return true;
    for (let i = 0; i < entries.length; i++) {
      if ((i && put(", ")) || walk(entries[i][0]) || put(": ") || walk(entries[i][1])) return true;
    }
    return put("}");
  };
  walk(value);
  return out.join("");
}

function typeName(v) {
  if (typeof v === "string") return "str";
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return "float";
  if (typeof v === "boolean") return "bool";
  if (v === null) return "NoneType";
  return Array.isArray(v) ? "list" : "dict";
}

function describe(value) {
  // JSON floats are Numbers here: repr them as Python floats
  const text = typeof value === "number" ? floatRepr(value) : pyRepr(value, 200);
  const more = codePoints(text) > 40 ? "…" : "";
  return `${typeName(value)} ${headChars(text, 40)}${more}`;
}

function show(schemaValue) {
  // a schema's own values are plain JSON from Python: its Numbers are ints
  return pyRepr(schemaValue, Infinity, { floats: false });
}

function hasDuplicates(items) {
  const seen = new Set();
  const unhashable = items.some((v) => Array.isArray(v) || v instanceof Map);
  for (const v of items) {
    let key;
    if (unhashable) key = pyRepr(v);
    else if (typeof v === "string") key = "s" + v;
    else if (v === null) key = "None";
    else if (typeof v === "number" && !Number.isInteger(v)) key = "f" + String(v);
    else key = "n" + String(typeof v === "boolean" ? Number(v) : v).replace(/\.0$/, "");
    if (seen.has(key)) return true;
    seen.add(key);
  }
  return false;
}

/** Every way `value` breaks `schema`, as "$.a[3]: message" strings (empty if valid). */
export function schemaErrors(value, schema, path = "$") {
  let errors = [];
  const types = schema.type;
  if (types !== undefined) {
    const names = typeof types === "string" ? [types] : types;
    if (!names.some((t) => TYPES[t](value))) return [`${path}: expected ${names.join(" or ")}, got ${describe(value)}`];
  }
  if ("enum" in schema && !schema.enum.some((e) => pyEquals(value, e))) {
    errors.push(`${path}: ${pyRepr(value)} is not one of ${show(schema.enum)}`);
  }
  if (typeof value === "string") {
    const length = codePoints(value);
    if (length < (schema.minLength ?? 0)) errors.push(`${path}: shorter than ${schema.minLength} characters`);
    if ("maxLength" in schema && length > schema.maxLength) {
      errors.push(`${path}: longer than ${schema.maxLength} characters`);
    }
    if ("pattern" in schema && !regex(schema.pattern).test(value)) {
      errors.push(`${path}: ${pyStr(headChars(value, 40))} does not match ${schema.pattern}`);
    }
  }
  if (TYPES.number(value)) {
    const shown = typeof value === "number" ? floatRepr(value) : String(value);
    if ("minimum" in schema && value < schema.minimum) errors.push(`${path}: ${shown} is below the minimum ${schema.minimum}`);
    if ("maximum" in schema && value > schema.maximum) errors.push(`${path}: ${shown} is above the maximum ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (value.length < (schema.minItems ?? 0)) errors.push(`${path}: fewer than ${schema.minItems} items`);
    if ("maxItems" in schema && value.length > schema.maxItems) {
      return [...errors, `${path}: more than ${schema.maxItems} items`]; // not worth walking the items
    }
    if ("items" in schema) {
      for (let i = 0; i < value.length; i++) {
        errors = errors.concat(schemaErrors(value[i], schema.items, `${path}[${i}]`));
        if (errors.length > 20) return errors; // enough to say what is wrong
      }
    }
    if (schema.uniqueItems && hasDuplicates(value)) errors.push(`${path}: items are not unique`);
  }
  if (value instanceof Map) {
    const props = schema.properties ?? {};
    for (const key of schema.required ?? []) {
      if (!value.has(key)) errors.push(`${path}: missing required key ${pyStr(key)}`);
    }
    const extra = schema.additionalProperties ?? true;
    for (const [key, item] of value) {
      if (Object.hasOwn(props, key)) errors = errors.concat(schemaErrors(item, props[key], `${path}.${key}`));
      else if (extra === false) errors.push(`${path}: unexpected key ${pyStr(key)}`);
      else if (typeof extra === "object") errors = errors.concat(schemaErrors(item, extra, `${path}.${key}`));
    }
  }
  return errors;
}
