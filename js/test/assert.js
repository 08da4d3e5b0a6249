// Tiny assertions shared by the test cases, in Node and in the browser (no node:assert there).
//
//   equal(actual, expected, what?)            Object.is, or === for numbers (so 0 equals -0)
//   deepEqual(actual, expected, what?)        structure: arrays and typed arrays element by element
//                                             (an Array equals a typed array of the same numbers),
//                                             plain objects by own keys (any order), Uint8Array bytes
//   close(actual, expected, tol, what?)       numbers, or (nested) arrays / typed arrays of numbers,
//                                             |a - e| <= tol everywhere (absolute); NaN never is close
//   ok(value, what?)                          truthy
//   throwsAsync(fn, errorName, messagePart?)  fn() (sync throw or rejected promise) fails with an
//                                             error whose .name is errorName (and whose message
//                                             contains messagePart, a string or RegExp); returns it
//   throws(fn, errorName, messagePart?)       the same for a synchronous fn
//
// Every failure is an AssertionError whose message says what, where and by how much.

export class AssertionError extends Error {
  constructor(message) {
    super(message);
    this.name = "AssertionError";
  }
}

function show(value) {
  if (value === undefined) return "undefined";
  if (typeof value === "bigint") return `${value}n`;
  if (ArrayBuffer.isView(value)) {
    const items = Array.from(value.slice(0, 8), String);
    return `${value.constructor.name}(${value.length}) [${items.join(", ")}${value.length > 8 ? ", …" : ""}]`;
  }
  try {
    const s = JSON.stringify(value);
    if (s === undefined) return String(value);
    return s.length > 300 ? `${s.slice(0, 300)}…` : s;
  } catch {
    return String(value);
  }
}

function fail(what, message) {
  throw new AssertionError(what ? `${what}: ${message}` : message);
}

export function ok(value, what) {
  if (!value) fail(what, `expected a truthy value, got ${show(value)}`);
}

export function equal(actual, expected, what) {
  const same = typeof actual === "number" && typeof expected === "number"
    ? actual === expected || (Number.isNaN(actual) && Number.isNaN(expected))
    : Object.is(actual, expected);
  if (!same) fail(what, `expected ${show(expected)}, got ${show(actual)}`);
}

function isSequence(v) {
  return Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));
}

function isPlainObject(v) {
  if (v === null || typeof v !== "object") return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// The path of the first difference, or null when equal.
function firstDifference(a, e, path) {
  if (isSequence(a) && isSequence(e)) {
    if (a.length !== e.length) return `${path || "value"}: length ${a.length}, expected ${e.length}`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], e[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (isSequence(a) !== isSequence(e)) {
    return `${path || "value"}: ${show(a)}, expected ${show(e)}`;
  }
  if (isPlainObject(e) || (e !== null && typeof e === "object" && a !== null && typeof a === "object"
      && Object.getPrototypeOf(a) === Object.getPrototypeOf(e))) {
    if (a === null || typeof a !== "object") return `${path || "value"}: ${show(a)}, expected an object ${show(e)}`;
    const ak = Object.keys(a).sort();
    const ek = Object.keys(e).sort();
    const missing = ek.filter((k) => !Object.hasOwn(a, k));
    const extra = ak.filter((k) => !Object.hasOwn(e, k));
    if (missing.length || extra.length) {
      return `${path || "value"}: keys differ (missing ${show(missing)}, unexpected ${show(extra)})`;
    }
    for (const k of ek) {
      const d = firstDifference(a[k], e[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  const same = typeof a === "number" && typeof e === "number"
    ? a === e || (Number.isNaN(a) && Number.isNaN(e))
    : Object.is(a, e);
  return same ? null : `${path || "value"}: ${show(a)}, expected ${show(e)}`;
}

export function deepEqual(actual, expected, what) {
  const d = firstDifference(actual, expected, "");
  if (d) fail(what, d);
}

function flatten(v, out, path) {
  if (isSequence(v)) {
    for (let i = 0; i < v.length; i++) flatten(v[i], out, `${path}[${i}]`);
  } else {
    out.push([v, path]);
  }
  return out;
}

export function close(actual, expected, tol, what) {
  if (typeof tol !== "number" || !(tol >= 0)) fail(what, `close() needs a tolerance >= 0, got ${show(tol)}`);
  if (isSequence(actual) !== isSequence(expected)) {
    fail(what, `${show(actual)} and ${show(expected)} are not both numbers or both arrays`);
  }
  const a = flatten(actual, [], "");
  const e = flatten(expected, [], "");
  if (a.length !== e.length) fail(what, `${a.length} numbers, expected ${e.length}`);
  let worst = -1;
  let worstAt = -1;
  let bad = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i][0];
    const y = e[i][0];
    if (typeof x !== "number" || typeof y !== "number") {
      fail(what, `${a[i][1] || "value"}: ${show(x)} vs ${show(y)} (not numbers)`);
    }
    const d = Math.abs(x - y);
    if (!(d <= tol)) {
      bad += 1;
      if (Number.isNaN(d) || d > worst) {
        worst = Number.isNaN(d) ? Infinity : d;
        worstAt = i;
      }
    }
  }
  if (bad) {
    const [x, at] = a[worstAt];
    fail(what, `${bad} of ${a.length} numbers differ by more than ${tol}; worst at ${at || "value"}: `
      + `${x} vs ${e[worstAt][0]} (|Δ| ${worst})`);
  }
}

function checkError(err, errorName, messagePart, what) {
  if (err === null || typeof err !== "object") fail(what, `threw ${show(err)}, expected a ${errorName}`);
  if (err.name !== errorName) {
    fail(what, `threw ${err.name}: ${err.message}; expected a ${errorName}`);
  }
  if (messagePart !== undefined) {
    const okMessage = messagePart instanceof RegExp ? messagePart.test(err.message)
      : String(err.message).includes(messagePart);
    if (!okMessage) fail(what, `${errorName} message ${show(err.message)} does not contain ${show(String(messagePart))}`);
  }
  return err;
}

export async function throwsAsync(fn, errorName, messagePart, what) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
    return checkError(err, errorName, messagePart, what);
  }
  fail(what, `expected a ${errorName}, but nothing was thrown`);
}

export function throws(fn, errorName, messagePart, what) {
  try {
    fn();
  } catch (e) {
    return checkError(e, errorName, messagePart, what);
  }
  fail(what, `expected a ${errorName}, but nothing was thrown`);
}
