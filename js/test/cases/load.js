// Reading untrusted model files: every bad file of goldens "load" (made by js/tools/goldens_load.py)
// is refused with the Python runtime's error class and the same words; every good model's spec,
// metadata and graph read from the bytes equal Python's; and the protobuf reader, the JSON reader
// and the schema validator on hand-made inputs.

import { deepEqual, equal, ok, throws, throwsAsync } from "../assert.js";
import { loads, toPlain } from "../../src/core/pyjson.js";
import { MAX_FIELDS, readOnnx } from "../../src/core/protobuf.js";
import { floatRepr, schemaErrors } from "../../src/core/schema.js";
import { specFromMetadata } from "../../src/core/contract.js";
import { checkOnnxruntimeVersion, readModelBytes, versionTuple } from "../../src/core/load.js";

const WORDS = 6; // a JS message starts with the same words as Python's

function words(message, n = WORDS) {
  return message.split(/\s+/).slice(0, n).join(" ");
}

// JS names bytes "the model file" where the goldens name the file "<model>"
function normalized(message, name) {
  return message.split("the model file").join(name);
}

function section(env) {
  const load = env.goldens?.load;
  if (!load) throw new Error("goldens.json has no \"load\" section: run js/tools/goldens.py");
  return load;
}

async function outcome(env, file) {
  const bytes = await env.fetchBytes(file);
  try {
    await env.loadModel(bytes, { onWarning: () => {} });
    return { error: null, message: "" };
  } catch (e) {
    return { error: e.name, message: e.message, e };
  }
}

// -- protobuf by hand -----------------------------------------------------------------------------
function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v) byte |= 0x80;
    out.push(byte);
  } while (v);
  return out;
}

function field(number, payload) {
  return [...varint((number << 3) | 2), ...varint(payload.length), ...payload];
}

const utf8 = (s) => [...new TextEncoder().encode(s)];
const bytes = (...parts) => new Uint8Array(parts.flat());
const entry = (key, value) => field(14, [...field(1, utf8(key)), ...field(2, utf8(value))]);

export default function register(t) {
  t.test("every bad file is refused with Python's error class and words", async (env) => {
    const { bad, name } = section(env);
    ok(bad.length > 150, `only ${bad.length} bad files`);
    const wrong = [];
    let exact = 0;
    for (const c of bad) {
      const got = await outcome(env, c.file);
      if (got.error !== c.error) {
        wrong.push(`${c.file} (${c.what}): Python ${c.error} "${c.message}", JS ${got.error} "${got.message}"`);
        continue;
      }
      if (c.error === null) continue;
      const message = normalized(got.message, name);
      if (message === c.message) exact += 1;
      else if (words(message) !== words(c.message)) {
        wrong.push(`${c.file} (${c.what}): Python "${c.message}", JS "${message}"`);
      }
      if (c.error === "MetadataError" || c.error === "FormatVersionError") ok("key" in got.e, `${c.file}: .key`);
    }
    equal(wrong.length, 0, `${wrong.length} files answered otherwise:\n${wrong.join("\n")}\n`);
    ok(exact > bad.filter((c) => c.error).length * 0.95, `only ${exact} of ${bad.length} messages are Python's exactly`);
  });

  t.test("every good model's spec is Python's", async (env) => {
    const { good } = section(env);
    for (const [model, g] of Object.entries(good)) {
      const loaded = await env.loadModel(await env.fetchBytes(g.file), { onWarning: () => {} });
      const spec = loaded.spec;
      const { vocabLength, vocabSha256, vocabHead, ...rest } = g.spec;
      for (const [key, want] of Object.entries(rest)) deepEqual(spec[key], want, `${model}: spec.${key}`);
      equal(spec.vocab.length, vocabLength, `${model}: vocab length`);
      deepEqual(spec.vocab.slice(0, vocabHead.length), vocabHead, `${model}: first tokens`);
      equal(loaded.identity, g.identity, `${model}: identity`);
      ok(Object.isFrozen(spec) && Object.isFrozen(spec.vocab), `${model}: spec is frozen`);
    }
  });

  t.test("metadata and graph read from the bytes are Python's", async (env) => {
    const { good } = section(env);
    for (const [model, g] of Object.entries(good)) {
      const graph = readOnnx(await env.fetchBytes(g.file));
      deepEqual(Object.fromEntries(graph.metadata), g.metadata, `${model}: metadata`);
      equal(graph.irVersion, g.graph.irVersion, `${model}: ir_version`);
      deepEqual(Object.fromEntries(graph.opsets), g.graph.opsets, `${model}: opsets`);
      deepEqual(graph.nodes.map((n) => [n.opType, n.domain, n.inputs, n.outputs, [...n.attributes.keys()].sort()]),
        g.graph.nodes, `${model}: nodes`);
      deepEqual(graph.initializers.map((i) => [i.name, i.dims, i.dataType, i.dataBytes]), g.graph.initializers,
        `${model}: initializers`);
      const info = (v) => [v.name, v.elemType, v.shape === null ? null : v.shape.map((d) => d.value ?? d.param)];
      deepEqual(graph.inputs.map(info), g.graph.inputs, `${model}: inputs`);
      deepEqual(graph.outputs.map(info), g.graph.outputs, `${model}: outputs`);
      const spec = await specFromMetadata(graph.metadata);
      equal(spec.task, g.spec.task, `${model}: task from metadata alone`);
    }
  });

  t.test("the budget of a call is Python's", async (env) => {
    const { good } = section(env);
    for (const [model, g] of Object.entries(good)) {
      const loaded = await env.loadModel(await env.fetchBytes(g.file), { onWarning: () => {} });
      const budget = loaded.budget;
      deepEqual({ rowBytes: budget.rowBytes, stateBytes: budget.stateBytes, weightBytes: budget.weightBytes },
        g.budget, `${model}: budget`);
    }
  });

  t.test("protobuf: varints of every length, and the 10-byte limit", () => {
    for (const n of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, 2 ** 49 - 1, 2 ** 49, 2 ** 53 - 1]) {
      equal(readOnnx(bytes(0x08, varint(n))).irVersion, n, `ir_version ${n}`);
    }
    equal(readOnnx(bytes(0x08, varint(2n ** 64n - 1n))).irVersion, 2 ** 64, "a 10-byte varint");
    throws(() => readOnnx(bytes(0x08, Array(10).fill(0xff), 0x01)), "OnnxFormatError", "longer than 10 bytes");
    throws(() => readOnnx(bytes(0x08, 0x80)), "OnnxFormatError", "truncated varint");
    throws(() => readOnnx(bytes(0x80)), "OnnxFormatError", "truncated varint");
    // a key spelled with redundant continuation bytes is still field 1, varint
    equal(readOnnx(bytes(0x88, 0x80, 0x00, 0x05)).irVersion, 5, "an overlong key");
  });

  t.test("protobuf: wire types, field 0, lengths past the end", () => {
    throws(() => readOnnx(bytes(0x00, 0x00)), "OnnxFormatError", "field number 0");
    for (const wire of [3, 4, 6, 7]) {
      throws(() => readOnnx(bytes(0x08 | wire)), "OnnxFormatError", `unsupported wire type ${wire}`);
    }
    throws(() => readOnnx(bytes(0x0a, 0x05, 1, 2)), "OnnxFormatError", "runs past the end");
    throws(() => readOnnx(bytes(0x0d, 1, 2, 3)), "OnnxFormatError", "truncated fixed32");
    throws(() => readOnnx(bytes(0x09, 1, 2, 3, 4, 5, 6, 7)), "OnnxFormatError", "truncated fixed64");
    // unknown fields of every wire type are skipped; a known field of the wrong wire type too
    const model = readOnnx(bytes(0xf8, 0x06, 0x01, 0xfd, 0x06, 1, 2, 3, 4, 0xf9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,
      0x0a, 0x01, 0x41, 0x3a, 0x00));
    equal(model.irVersion, 0, "ir_version given as bytes is skipped");
    ok(model.hasGraph, "an empty graph");
    throws(() => readOnnx(bytes(0x3a, 0x00, 0x3a, 0x00)), "OnnxFormatError", "two graphs");
    throws(() => readOnnx(new Uint8Array(2 * (MAX_FIELDS + 1)).fill(0x08).map((b, i) => (i % 2 ? 0 : b))),
      "OnnxFormatError", `more than ${MAX_FIELDS} fields`);
  });

  t.test("protobuf: strings, names and metadata entries", () => {
    const m = readOnnx(bytes(entry("a", "1"), entry("b", "二"), entry("a", "3"), entry("\ufeffbom", "x")));
    deepEqual(Object.fromEntries(m.metadata), { a: "3", b: "二", "\ufeffbom": "x" }, "the last entry wins; a BOM stays");
    throws(() => readOnnx(bytes(field(14, field(1, [0xff])))), "OnnxFormatError", "not UTF-8");
    throws(() => readOnnx(bytes(field(14, field(1, [0xed, 0xa0, 0x80])))), "OnnxFormatError", "not UTF-8");
    throws(() => readOnnx(bytes(field(14, field(1, [0xc0, 0xaf])))), "OnnxFormatError", "not UTF-8");
    throws(() => readOnnx(bytes(field(14, field(1, Array(4097).fill(0x61))))), "OnnxFormatError",
      "a name of 4097 bytes");
    equal(readOnnx(bytes(field(14, [...field(1, utf8("k")), ...field(2, Array(5000).fill(0x61))])))
      .metadata.get("k").length, 5000, "values are not capped by the reader");
    const proto = readOnnx(bytes(entry("__proto__", "x")));
    equal(proto.metadata.get("__proto__"), "x", "a key named __proto__ is a key");
  });

  t.test("protobuf: tensors, dims and attributes", () => {
    const tensor = [...field(1, [...varint(2), ...varint(3)]), 0x10, 0x01, ...field(8, utf8("w")),
      ...field(9, Array(24).fill(0))];
    const node = [...field(1, utf8("x")), ...field(2, utf8("y")), ...field(4, utf8("Constant")),
      ...field(5, [...field(1, utf8("value")), 0xa0, 0x01, 0x04, ...field(5, tensor)]),
      ...field(5, [...field(1, utf8("f")), 0x15, 0x00, 0x00, 0xc0, 0x3f]),
      ...field(5, [...field(1, utf8("ints")), 0x40, ...varint(2n ** 64n - 1n), ...field(8, [0x01, 0x02])])];
    const graph = readOnnx(bytes(field(7, [...field(1, node), ...field(5, tensor)])));
    equal(graph.nodes.length, 1);
    const [n] = graph.nodes;
    deepEqual(n.attributes.get("value").tensor.dims, [2, 3], "packed dims");
    equal(n.attributes.get("f").f, 1.5, "a float attribute");
    deepEqual(n.attributes.get("ints").ints, [-1, 1, 2], "int64 -1, then packed ints");
    deepEqual(graph.initializers[0].dims, [2, 3]);
    equal(graph.initializers[0].raw.length, 24);
    throws(() => readOnnx(bytes(field(7, field(5, [0x08, ...varint(2n ** 64n - 1n)])))), "OnnxFormatError",
      "negative dimension");
    throws(() => readOnnx(bytes(field(7, field(5, field(1, Array(9).fill(1)))))), "OnnxFormatError", "rank more");
    throws(() => readOnnx(bytes(field(7, field(5, [0x0d, 1, 0, 0, 0]))), ), "OnnxFormatError", "wrong wire type");
  });

  t.test("JSON is read as Python's json.loads reads it", () => {
    equal(typeof loads("1").value, "bigint", "an integer is an int");
    equal(typeof loads("1.0").value, "number", "1.0 is a float");
    ok(Number.isNaN(loads("NaN").value), "NaN");
    equal(loads("-Infinity").value, -Infinity);
    equal(loads("1e400").value, Infinity, "a float too large is inf");
    equal(loads("12345678901234567890").value, 12345678901234567890n, "ints of any size");
    equal(loads('"\\ud83d\\ude00"').value, "😀", "an escaped pair is one character");
    equal(loads('"\\ud800"').value, "\ud800", "a lone surrogate escape stays");
    deepEqual(toPlain(loads('{"a": 1, "a": 2}').value), { a: 2 }, "the last key wins");
    equal(loads("[[[]]]").depth, 3);
    equal(loads('{"a": [1, {"b": 2}]}').depth, 3);
    equal(loads("[" .repeat(100000) + "]".repeat(100000)).depth, 100000, "any depth parses");
    for (const [text, message] of [
      ["", "Expecting value: line 1 column 1 (char 0)"],
      ["[1,]", "Expecting value: line 1 column 4 (char 3)"],
      ['{"a":1,}', "Expecting property name enclosed in double quotes: line 1 column 8 (char 7)"],
      ["[1 2]", "Expecting ',' delimiter: line 1 column 4 (char 3)"],
      ['{"a" 1}', "Expecting ':' delimiter: line 1 column 6 (char 5)"],
      ['"ab', "Unterminated string starting at: line 1 column 1 (char 0)"],
      ['"a\\x"', "Invalid \\escape: line 1 column 3 (char 2)"],
      ['"\\u12"', "Invalid \\uXXXX escape: line 1 column 3 (char 2)"],
      ["[1] x", "Extra data: line 1 column 5 (char 4)"],
      ['"a\u0001"', "Invalid control character at: line 1 column 3 (char 2)"],
      ["[01]", "Expecting ',' delimiter: line 1 column 3 (char 2)"],
      ["[1.]", "Expecting ',' delimiter: line 1 column 3 (char 2)"],
      ["\ufeff[]", "Expecting value: line 1 column 1 (char 0)"],
      ['["😀", x]', "Expecting value: line 1 column 7 (char 6)"],
    ]) {
      throws(() => loads(text), "JSONDecodeError", message);
    }
  });

  t.test("schemas: Python's types, lengths in code points, messages", () => {
    const v = (text) => loads(text).value;
    deepEqual(schemaErrors(v("1.0"), { type: "integer" }), ["$: expected integer, got float 1.0"]);
    deepEqual(schemaErrors(v("true"), { type: "integer" }), ["$: expected integer, got bool True"]);
    deepEqual(schemaErrors(v("0"), { enum: [0] }), []);
    deepEqual(schemaErrors(v("0.0"), { enum: [0] }), [], "0.0 == 0 in Python");
    deepEqual(schemaErrors("😀😀", { type: "string", maxLength: 2 }), [], "two code points");
    deepEqual(schemaErrors("abc", { type: "string", maxLength: 2 }), ["$: longer than 2 characters"]);
    deepEqual(schemaErrors("2\n", { type: "string", pattern: "^[0-9]$" }), ["$: '2\\n' does not match ^[0-9]$"]);
    deepEqual(schemaErrors(v('["a", "a"]'), { type: "array", uniqueItems: true }), ["$: items are not unique"]);
    deepEqual(schemaErrors(v("[1, 1.0]"), { type: "array", uniqueItems: true }), ["$: items are not unique"]);
    deepEqual(schemaErrors(v('{"k": 1}'), { type: "object", additionalProperties: false }), ["$: unexpected key 'k'"]);
    deepEqual(schemaErrors(v(`"${"x".repeat(50)}"`), { type: "integer" }),
      [`$: expected integer, got str '${"x".repeat(39)}…`]);
    for (const [x, repr] of [[1, "1.0"], [0.1, "0.1"], [1e16, "1e+16"], [1e-5, "1e-05"], [123.456, "123.456"],
      [1.5e300, "1.5e+300"], [-0, "-0.0"], [Infinity, "inf"], [2 ** 53, "9007199254740992.0"]]) {
      equal(floatRepr(x), repr, `repr(${x})`);
    }
  });

  t.test("spec: the optional rnnkit.unicode key", async (env) => {
    const { good } = section(env);
    const [g] = Object.values(good);
    const graph = readOnnx(await env.fetchBytes(g.file));
    const props = new Map(graph.metadata);
    props.delete("rnnkit.unicode");
    equal((await specFromMetadata(props)).unicode, null, "absent: null");
    props.set("rnnkit.unicode", "15.1.0");
    equal((await specFromMetadata(props)).unicode, "15.1.0");
  });

  t.test("readModelBytes: sources and the size cap", async () => {
    const data = new Uint8Array([1, 2, 3]);
    const copy = await readModelBytes(data);
    deepEqual(copy, data);
    ok(copy !== data, "the caller's array is copied");
    deepEqual(await readModelBytes(data.buffer), data, "an ArrayBuffer");
    if (typeof Blob !== "undefined") deepEqual(await readModelBytes(new Blob([data])), data, "a Blob");
    await readModelBytes(data, { maxBytes: 2 }).then(() => { throw new Error("not refused"); },
      (e) => equal(e.name, "ModelFileError"));
    await readModelBytes("model.onnx").then(() => { throw new Error("not refused"); },
      (e) => equal(e.name, "ConfigError", "a path without readFile"));
    const read = await readModelBytes("a/model.onnx", { readFile: async (p) => utf8(p).length && data });
    deepEqual(read, data, "a path through readFile");
    await readModelBytes(data, { maxBytes: 0 }).then(() => { throw new Error("not refused"); },
      (e) => equal(e.name, "ConfigError"));
  });

  t.test("loadModel reads an ArrayBuffer, a Blob and a File as it reads the bytes", async (env) => {
    const g = env.goldens.models.char_lm;
    const bytes = await env.fetchBytes(g.file);
    const quiet = { onWarning: () => {} };
    const want = (await env.loadModel(bytes, quiet)).identity;
    equal((await env.loadModel(bytes.slice().buffer, quiet)).identity, want, "an ArrayBuffer");
    equal((await env.loadModel(new Blob([bytes]), quiet)).identity, want, "a Blob");
    if (typeof File !== "undefined") {
      const file = new File([bytes], "lm.onnx");
      equal((await env.loadModel(file, quiet)).identity, want, "a File");
      await throwsAsync(() => env.loadModel(new File([bytes.subarray(0, 100)], "cut.onnx"), quiet), "ModelFileError",
        "cut.onnx");
    }
  });

  t.test("browser: a string without a scheme is a URL relative to the page", async (env) => {
    const g = env.goldens.models.char_lm;
    const quiet = { onWarning: () => {} };
    const want = (await env.loadModel(await env.fetchBytes(g.file), quiet)).identity;
    const model = await env.loadModel(`../goldens/${g.file}`, quiet); // the page is js/test/browser/index.html
    equal(model.identity, want, "a page-relative string");
    equal((await env.loadModel(new URL(`../goldens/${g.file}`, document.baseURI), quiet)).identity, want, "a URL");
    await throwsAsync(() => env.loadModel("../goldens/models/no-such-file.onnx", quiet), "ModelNotFoundError",
      "HTTP 404");
  }, { only: "browser" });

  t.test("the onnxruntime version rule of quantized files", () => {
    deepEqual(versionTuple("1.22.0rc1"), [1, 22, 0]);
    deepEqual(versionTuple("1.30.0-dev.2024+abc"), [1, 30, 0]);
    deepEqual(versionTuple("1.22"), [1, 22, 0]);
    checkOnnxruntimeVersion({ mode: "int4", min_onnxruntime: "1.22" }, "m", "1.30.0");
    checkOnnxruntimeVersion({ mode: "none" }, "m", "1.0.0");
    throws(() => checkOnnxruntimeVersion({ mode: "int4", min_onnxruntime: "1.22", operators: ["MatMulNBits"] }, "m",
      "1.21.1"), "ModelFileError", "m (int4) needs onnxruntime ≥ 1.22 for MatMulNBits; this one is 1.21.1");
    throws(() => checkOnnxruntimeVersion({ mode: "int4" }, "m", "1.17.0", { graphNeeds: "1.22" }),
      "ModelFileError", "needs onnxruntime ≥ 1.22 for its operators");
  });
}
