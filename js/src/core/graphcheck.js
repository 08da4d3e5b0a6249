// What a model file may ask of onnxruntime, checked from its bytes before a session exists: a port
// of runtime/graphcheck.py. Only the graphs rnnkit's exporters write pass — their operators (per
// quantization mode), one embedding Gather on the tokens, `layers` recurrent nodes of `hidden`
// units, one head of hidden × nOut, static sizes equal to the metadata — and the memory a call
// needs is sized from the declared shapes (Budget). Same refusals, same error classes as Python.

import { checkGraph } from "./contract.js";
import { MetadataError, ModelFileError, NonFiniteError } from "./errors.js";
import { pyStr } from "./protobuf.js";
import { pyRepr } from "./schema.js";
import { INPUT_TOKENS, KEYS, LIMITS, NEWER_OPERATORS, OPERATORS, OPSETS } from "./schemas.js";
import { Budget } from "./budget.js";
import { ShapeRefused, broadcast, elements, inferShapes, sameShape } from "./shapes.js";
import { byteSize } from "./util.js";

// onnx's TensorProto.DataType codes of the tensors rnnkit writes, and their sizes in bytes
const ITEMSIZE = { 1: 4, 2: 1, 3: 1, 6: 4, 7: 8 };
const FLOAT = 1;
const INT64 = 7;
const TYPE_NAMES = { 1: "tensor(float)", 7: "tensor(int64)" };
const RECURRENT = new Set(["RNN", "GRU", "LSTM", "DynamicQuantizeLSTM"]);
const HEADS = new Set(["MatMul", "MatMulInteger", "MatMulNBits"]);
const EMBEDDINGS = new Set(["Gather", "GatherBlockQuantized"]);
const FOLDABLE = new Set(["Constant", "Cast", "Mul"]); // nodes allowed to compute from constants alone
const ALLOWED = Object.fromEntries(Object.entries(OPERATORS).map(([mode, ops]) => [mode, new Set(ops)]));
const REPLACING = new TextDecoder("utf-8"); // replacement characters, as Python's decode(errors="replace")
const repr = (v) => pyRepr(v, Infinity, { floats: false });

/** The (domain.)operators a file of this quantization metadata may use (graphcheck.operators_for). */
export function operatorsFor(quantization) {
  let mode = quantization.mode ?? "none";
  if (mode === "int8" && quantization.batch_invariant !== true) mode = "int8-dynamic";
  return ALLOWED[mode] ?? ALLOWED.none;
}

/** The onnxruntime the graph's own operators need beyond the oldest supported (null: no more). */
export function requiredOnnxruntime(model) {
  for (const node of model.nodes) {
    const bits = node.attributes.get("bits");
    if (node.opType === "GatherBlockQuantized" || (node.opType === "MatMulNBits" && bits !== undefined && bits.i === 8)) {
      return NEWER_OPERATORS;
    }
  }
  return null;
}

/**
 * Refuse a graph rnnkit's exporters would not write; return the Budget it needs per call.
 * `model`: readOnnx's result; `spec`: specFromMetadata's; `where`: how messages name the file.
 */
export function checkModel(model, spec, where, { maxCallBytes = LIMITS.DEFAULT_CALL_BYTES } = {}) {
  if (!model.hasGraph) {
    throw new ModelFileError(`${where} is not an ONNX model or is truncated (it has no graph); `
      + "re-export it with `rnnkit export`");
  }
  checkIo(model, spec, where);
  checkStructure(model, spec, where);
  const { shapes: constants, values } = checkTensors(model, where);
  const weightBytes = checkNodes(model, spec, where, constants);
  let inferred;
  try {
    inferred = inferShapes(model.nodes, spec, constants, values);
  } catch (e) {
    if (!(e instanceof ShapeRefused)) throw e;
    throw new ModelFileError(`${where}: ${e.message}, which rnnkit's exporters never write; refused`);
  }
  const { shapes, usage } = inferred;
  const wanted = [[spec.outputNames[0], ["B", "T", spec.nOut]],
    ...spec.stateNames.map(([, o]) => [o, [spec.layers, "B", spec.hidden]])];
  for (const [name, want] of wanted) {
    const got = shapes.get(name);
    if (!sameShape(got, want)) {
      const shown = got === undefined ? "unknown" : repr(got);
      throw new MetadataError(`inconsistent model: the graph computes ${pyStr(name)} of shape ${shown}, `
        + `not ${repr(want)}; re-export the model`, null);
    }
  }
  // every activation alive at once, and the recurrent kernels' gates: an upper bound of a call's peak
  const rowBytes = 4 * (usage.perToken + usage.workspace);
  const stateBytes = 4 * Math.max(usage.perRow, spec.nState * spec.layers * spec.hidden);
  const budget = new Budget(rowBytes, stateBytes, weightBytes, maxCallBytes);
  if (weightBytes > LIMITS.MAX_WEIGHT_BYTES) {
    throw new ModelFileError(`${where} declares ${byteSize(weightBytes)} of weights, more than rnnkit loads `
      + `(${byteSize(LIMITS.MAX_WEIGHT_BYTES)}); refused`);
  }
  if (budget.maxSeq(1) < 1) {
    throw new ModelFileError(`${where}: one token of one row needs ${byteSize(budget.callBytes(1, 1))} `
      + `(logits ${spec.nOut}, state ${spec.layers} × ${spec.hidden}, embedding ${spec.embed}), `
      + `more than the ${byteSize(maxCallBytes)} a call may use (max_call_bytes)`);
  }
  return budget;
}

// -- inputs and outputs -------------------------------------------------------------------------
function shapeValues(shape) {
  return shape === null ? null : shape.map((d) => (d.value !== null ? d.value : d.param));
}

function checkIo(model, spec, where) {
  const initNames = new Set(model.initializers.map((t) => t.name));
  const inputs = new Map();
  for (const v of model.inputs) if (!initNames.has(v.name)) inputs.set(v.name, v); // old IRs list weights as inputs
  const outputs = new Map();
  for (const v of model.outputs) outputs.set(v.name, v);
  const inNames = [...inputs.keys()];
  const outNames = [...outputs.keys()];
  const sameSet = inNames.length === spec.inputNames.length && spec.inputNames.every((n) => inputs.has(n));
  const sameList = outNames.length === spec.outputNames.length && outNames.every((n, i) => n === spec.outputNames[i]);
  if (!sameSet || !sameList) {
    const sorted = [...inNames].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    throw new MetadataError(`inconsistent model: the graph's inputs/outputs ${repr(sorted)} → ${repr(outNames)} `
      + `do not fit its metadata's cell ${pyStr(spec.cell)} (expected inputs ${repr(spec.inputNames)}); re-export it`,
    null);
  }
  const all = [...inputs, ...outputs];
  for (const [name, info] of all) {
    const want = name === INPUT_TOKENS ? INT64 : FLOAT;
    const rank = name === INPUT_TOKENS ? 2 : 3;
    if (info.elemType !== want || info.shape === null || info.shape.length !== rank) {
      const kind = TYPE_NAMES[info.elemType] ?? (info.elemType === null ? "None" : String(info.elemType));
      throw new MetadataError(`inconsistent model: the graph's ${pyStr(name)} is ${kind} of shape `
        + `${repr(shapeValues(info.shape))}, not ${TYPE_NAMES[want]} of rank ${rank}; re-export it`, null);
    }
  }
  const logits = spec.outputNames[0];
  for (const [name, info] of all) {
    const sequence = name === INPUT_TOKENS || name === logits; // (batch, seq[, nOut]); states (layers, batch, hidden)
    const free = sequence ? [[0, "batch"], [1, "sequence"]] : [[1, "batch"]];
    for (const [axis, what] of free) {
      if (info.shape[axis].value !== null) {
        throw new ModelFileError(`${where}: the graph fixes ${pyStr(name)}'s ${what} axis to ${info.shape[axis].value}; `
          + "rnnkit models take any batch and length: re-export it with `rnnkit export`");
      }
    }
    const fixed = name === logits ? [[2, "last axis"]] : sequence ? [] : [[0, "layer axis"], [2, "hidden axis"]];
    for (const [axis, what] of fixed) {
      if (info.shape[axis].value === null) {
        throw new MetadataError(`inconsistent model: the graph leaves ${pyStr(name)}'s ${what} dynamic; rnnkit's `
          + "graphs fix it to the metadata's size: re-export the model", null);
      }
    }
    if (name === logits) checkGraph(spec, { nOut: info.shape[2].value });
    else if (!sequence) checkGraph(spec, { layers: info.shape[0].value, hidden: info.shape[2].value });
  }
}

// -- what the file holds besides one graph of nodes ---------------------------------------------
function checkStructure(model, spec, where) {
  if (model.functions || model.trainingInfo || model.sparseInitializers) {
    const what = model.functions ? "local functions" : model.trainingInfo ? "training info" : "sparse initializers";
    throw new ModelFileError(`${where} holds ${what}, which rnnkit's exporters never write; refused`);
  }
  for (const [domain, version] of model.opsets) {
    const range = OPSETS[domain || ""];
    if (range === undefined) {
      throw new ModelFileError(`${where} imports operator set ${pyStr(domain)}, which rnnkit's exporters never use; refused`);
    }
    const [lo, hi] = range;
    if (!(lo <= version && version <= hi)) {
      throw new ModelFileError(`${where} uses opset ${version} of ${pyStr(domain || "ai.onnx")}; rnnkit reads `
        + `${lo}…${hi}: re-export it with \`rnnkit export\``);
    }
  }
  const quantization = spec.quantization;
  const mode = quantization.mode ?? "none";
  if (mode === "int8-dynamic" && quantization.batch_invariant !== false) {
    throw new MetadataError("inconsistent model: int8-dynamic files are not batch-invariant, yet this one's "
      + "metadata does not say so; re-export the model", KEYS.QUANTIZATION);
  }
  const allowed = operatorsFor(quantization);
  for (const node of model.nodes) {
    const domain = node.domain === "" || node.domain === "ai.onnx" ? "" : node.domain;
    const qualified = domain ? `${domain}.${node.opType}` : node.opType;
    if (!allowed.has(qualified)) {
      const hint = ["Loop", "If", "Scan"].includes(node.opType) ? " (control flow)" : "";
      const legacy = mode === "int8" && quantization.batch_invariant !== true
        ? " (a file without \"batch_invariant\": true, read as the dynamic scheme of older files)" : "";
      throw new ModelFileError(`${where} uses operator ${qualified}${hint}, which rnnkit's exporters `
        + `do not write for quantization ${pyStr(mode)}${legacy}; refused: export models with \`rnnkit export\``);
    }
    for (const attribute of node.attributes.values()) {
      if (attribute.hasGraph || attribute.hasSparse) {
        throw new ModelFileError(`${where}: node ${node.opType} carries a subgraph or a sparse tensor `
          + `(${pyStr(attribute.name)}), which rnnkit's exporters never write; refused`);
      }
    }
  }
}

// -- constants ----------------------------------------------------------------------------------
/** The shape of every constant (initializers, Constant nodes), each checked against its bytes, and
 * the values of the small integer ones (the axes and bounds of Slice and Squeeze). */
function checkTensors(model, where) {
  const shapes = new Map();
  const values = new Map();
  for (const tensor of model.initializers) {
    checkTensor(tensor, where);
    shapes.set(tensor.name, tensor.dims);
    keepValue(tensor, tensor.name, values);
  }
  const CONSTANT_ATTRS = new Set(["value", "value_float", "value_floats", "value_int", "value_ints"]);
  for (const node of model.nodes) {
    if (node.opType !== "Constant") continue;
    const attrs = node.attributes;
    if ([...attrs.keys()].some((k) => !CONSTANT_ATTRS.has(k)) || attrs.size !== 1) {
      throw new ModelFileError(`${where}: a Constant node with attributes ${repr([...attrs.keys()].sort())}, which `
        + "rnnkit's exporters never write; refused");
    }
    const [[name, attr]] = attrs;
    let dims;
    if (name === "value") {
      if (attr.tensor === null) throw new ModelFileError(`${where}: a Constant node without its tensor; the file is corrupt`);
      if (attr.tensor.external !== null) { // onnxruntime would look for it where the process runs
        throw new ModelFileError(`${where}: a Constant node keeps its tensor in an external file, which `
          + "rnnkit's exporters never write; refused");
      }
      checkTensor(attr.tensor, where);
      dims = attr.tensor.dims;
    } else {
      dims = name === "value_float" || name === "value_int" ? [] : [attr.count];
    }
    for (const out of node.outputs) {
      shapes.set(out, dims);
      if (name === "value") keepValue(attr.tensor, out, values);
      else if (name === "value_int") values.set(out, [attr.i]);
      else if (name === "value_ints") values.set(out, attr.ints);
    }
  }
  return { shapes, values };
}

function keepValue(tensor, name, values) {
  if (tensor.dataType === INT64 && tensor.raw !== null && tensor.elements <= 64) {
    const raw = tensor.raw;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const out = [];
    for (let i = 0; i + 8 <= raw.byteLength; i += 8) out.push(Number(view.getBigInt64(i, true)));
    values.set(name, out);
  }
}

function dimsText(dims) {
  return repr(dims);
}

function checkTensor(tensor, where) {
  const item = ITEMSIZE[tensor.dataType];
  if (item === undefined) {
    throw new ModelFileError(`${where}: tensor ${pyStr(tensor.name)} has element type ${tensor.dataType}, which `
      + "rnnkit's exporters never write; refused");
  }
  const need = tensor.elements * item;
  if (tensor.external !== null) {
    checkExternal(tensor, where);
  } else if (tensor.raw !== null) {
    if (tensor.raw.length !== need) {
      throw new ModelFileError(`${where}: tensor ${pyStr(tensor.name)} declares ${dimsText(tensor.dims)} `
        + `(${byteSize(need)}) but holds ${byteSize(tensor.raw.length)}; the file is corrupt`);
    }
  } else if (tensor.elements > tensor.dataBytes) { // a typed value takes at least one byte
    throw new ModelFileError(`${where}: tensor ${pyStr(tensor.name)} declares ${dimsText(tensor.dims)} but holds `
      + "fewer values; the file is corrupt");
  }
  if (tensor.dataType === FLOAT && need) {
    const pieces = tensor.raw !== null ? [tensor.raw] : tensor.floatData;
    for (const piece of pieces) {
      if (!finite32(piece)) {
        throw new NonFiniteError(`${where}: weight ${pyStr(tensor.name)} holds NaN or infinite values; the file is `
          + "corrupt or was exported from a diverged run: re-export a good checkpoint");
      }
    }
  }
}

/** True when every little-endian float32 in `bytes` is finite (its exponent bits are not all ones). */
function finite32(bytes) {
  for (let i = 3; i < bytes.length; i += 4) {
    if ((bytes[i] & 0x7f) === 0x7f && (bytes[i - 1] & 0x80) === 0x80) return false;
  }
  return true;
}

function checkExternal(tensor, where) {
  // The bytes are all a JavaScript loader has: a weight in another file cannot be read (nor checked).
  const location = tensor.external.get("location") ?? "";
  const parts = location.split("/");
  if (!location || location.startsWith("/") || parts.includes("..") || location.includes("\\")) {
    throw new ModelFileError(`${where} refers to weight data outside its folder; refused for safety`);
  }
  throw new ModelFileError(`${where} needs weight data that is missing next to it: ${pyStr(location)} (the `
    + "JavaScript runtime reads one file: re-export the model with its weights inside it)");
}

// -- nodes --------------------------------------------------------------------------------------
/** Check each node's sizes against the metadata; return the constants' bytes once folded. */
function checkNodes(model, spec, where, constants) {
  const known = new Set([...constants.keys(), ...spec.inputNames]);
  let recurrent = 0;
  let embedding = 0;
  let heads = 0;
  let weightBytes = 0;
  for (const t of model.initializers) weightBytes += 4 * elements(t.dims);
  for (const node of model.nodes) {
    const ins = node.inputs.filter((i) => i);
    const missing = ins.filter((i) => !known.has(i));
    if (missing.length) {
      throw new ModelFileError(`${where}: node ${node.opType} reads ${pyStr(missing[0])} before anything computes it `
        + "(the graph is not in order or is incomplete); refused");
    }
    for (const o of node.outputs) known.add(o);
    if (node.opType !== "Constant" && ins.length && ins.every((i) => constants.has(i))) {
      weightBytes += fold(node, constants, where);
      continue;
    }
    const op = node.opType;
    if (RECURRENT.has(op)) {
      recurrent += 1;
      checkRecurrent(node, spec, where);
    } else if (EMBEDDINGS.has(op)) {
      embedding += 1;
      checkEmbedding(node, spec, where, constants);
    } else if (HEADS.has(op)) {
      heads += 1;
      if (op === "MatMulNBits") {
        checkNbitsHead(node, spec, where, constants);
        continue;
      }
      const weight = node.inputs.length > 1 ? node.inputs[1] : "";
      if (!sameShape(constants.get(weight), [spec.hidden, spec.nOut])) {
        const shape = repr(constants.get(weight) ?? []);
        throw new MetadataError(`inconsistent model: the output layer's weight is ${shape}, `
          + `not hidden × n_out = [${spec.hidden}, ${spec.nOut}]; re-export the model`, null);
      }
    }
  }
  if (recurrent !== spec.layers) {
    throw new MetadataError(`inconsistent model: the graph has ${recurrent} recurrent layer(s) but the metadata's `
      + `layers is ${spec.layers}; re-export the model`, KEYS.LAYERS);
  }
  if (embedding !== 1 || heads !== 1) {
    throw new ModelFileError(`${where}: rnnkit's graphs have one embedding and one output layer, this one `
      + `${embedding} and ${heads}; refused`);
  }
  return weightBytes;
}

const none = (v) => (v === null || v === undefined ? "None" : String(v));

function checkRecurrent(node, spec, where) {
  const op = node.opType;
  const want = { rnn: "RNN", gru: "GRU", lstm: "LSTM" }[spec.cell];
  if (op !== want && !(op === "DynamicQuantizeLSTM" && spec.cell === "lstm")) {
    throw new MetadataError(`inconsistent model: the graph's cell is ${op} but the metadata's is ${pyStr(spec.cell)}; `
      + "re-export the model", KEYS.CELL);
  }
  const attrs = node.attributes;
  const size = attrs.get("hidden_size");
  if (size === undefined || size.i !== spec.hidden) {
    throw new MetadataError(`inconsistent model: a ${op} node has hidden_size `
      + `${size === undefined ? "None" : none(size.i)} but the metadata's hidden is ${spec.hidden}; `
      + "re-export the model", KEYS.HIDDEN);
  }
  const direction = attrs.get("direction");
  const layout = attrs.get("layout");
  const forward = direction === undefined
    || (direction.s !== null && REPLACING.decode(direction.s) === "forward" && direction.s.length === 7);
  if (!forward || (layout !== undefined && layout.i !== 0)) {
    throw new ModelFileError(`${where}: a ${op} node that is not forward and sequence-first; rnnkit's `
      + "exporters never write one; refused");
  }
  const odd = ["activation_alpha", "activation_beta", "clip"].filter((a) => attrs.has(a));
  if (odd.length) {
    throw new ModelFileError(`${where}: a ${op} node with ${odd.join(", ")}, which rnnkit's exporters never write; `
      + "refused");
  }
  checkActivations(node, spec, where);
}

const FIXED_ACTIVATIONS = { GRU: ["Sigmoid", "Tanh"], LSTM: ["Sigmoid", "Tanh", "Tanh"],
  DynamicQuantizeLSTM: ["Sigmoid", "Tanh", "Tanh"] };

/** The recurrence's nonlinearity: what the metadata says (an RNN's) or ONNX's fixed ones (GRU, LSTM). */
function checkActivations(node, spec, where) {
  const op = node.opType;
  const attr = node.attributes.get("activations");
  const names = attr === undefined ? null : attr.strings.map((s) => REPLACING.decode(s));
  const shown = names === null ? "None"
    : repr([...names.slice(0, 4).map((n) => [...n].slice(0, 20).join("")), ...(names.length > 4 ? ["…"] : [])]);
  if (op === "RNN") {
    let found;
    if (names === null) found = "tanh";
    else if (names.length === 1 && names[0] === "Tanh") found = "tanh";
    else if (names.length === 1 && names[0] === "Relu") found = "relu";
    if (found === undefined) throw new ModelFileError(`${where}: an RNN node with activations ${shown}, not Tanh or Relu; refused`);
    if (found !== spec.activation) {
      throw new MetadataError(`inconsistent model: the graph's RNN computes ${found} but the metadata's `
        + `activation is ${pyStr(spec.activation)}; re-export the model`, KEYS.ACTIVATION);
    }
  } else if (names !== null) {
    const fixed = FIXED_ACTIVATIONS[op];
    if (names.length !== fixed.length || names.some((n, i) => n !== fixed[i])) {
      throw new ModelFileError(`${where}: a ${op} node with activations ${shown}, not ONNX's defaults `
        + `${repr(fixed)}, which rnnkit's exporters never write; refused`);
    }
  }
}

function checkEmbedding(node, spec, where, constants) {
  const [data, indices] = [...node.inputs, "", ""];
  const blocked = node.opType === "GatherBlockQuantized";
  const axis = node.attributes.get(blocked ? "gather_axis" : "axis");
  if (indices !== INPUT_TOKENS || !constants.has(data) || (axis !== undefined && axis.i !== 0)) {
    throw new ModelFileError(`${where}: a ${node.opType} that is not the embedding of the tokens; rnnkit's `
      + "exporters never write one; refused");
  }
  let rows = constants.get(data);
  if (rows.length !== 2) {
    throw new ModelFileError(`${where}: the embedding has shape ${repr(rows)}, not [vocabulary, embed]; refused`);
  }
  if (blocked) {
    const [bits, block] = blocking(node, where);
    const quantizeAxis = node.attributes.get("quantize_axis");
    const width = Math.floor((rows[1] * 8) / bits);
    const scales = constants.get(node.inputs.length > 2 ? node.inputs[2] : "");
    if (quantizeAxis === undefined || ![1, -1].includes(quantizeAxis.i) || node.inputs.length !== 3
        || !sameShape(scales, [rows[0], Math.ceil(width / block)])) {
      throw new ModelFileError(`${where}: a GatherBlockQuantized embedding quantized along another axis, with `
        + `zero points or with scales ${repr(scales ?? [])} for data ${repr(rows)}, which `
        + "rnnkit's exporters never write; refused");
    }
    rows = [rows[0], width];
  }
  checkGraph(spec, { vocabRows: rows[0] });
  if (rows[1] !== spec.embed) {
    throw new MetadataError(`inconsistent model: the embedding is ${rows[1]} wide but the metadata's embed is `
      + `${spec.embed}; re-export the model`, KEYS.EMBED);
  }
}

/** A block-quantized node's bits and block size: 4 or 8 bits, blocks of 16 … 256 values. */
function blocking(node, where) {
  const attrs = node.attributes;
  const gbq = node.opType === "GatherBlockQuantized";
  const bits = attrs.has("bits") ? attrs.get("bits").i : gbq ? 4 : null;
  const block = attrs.has("block_size") ? attrs.get("block_size").i : null;
  const allowed = gbq ? [4] : [4, 8];
  if (!allowed.includes(bits) || ![16, 32, 64, 128, 256].includes(block)) {
    throw new ModelFileError(`${where}: a ${node.opType} node with (bits, block_size) = (${none(bits)}, ${none(block)}), `
      + "which rnnkit's exporters never write; refused");
  }
  return [bits, block];
}

/** MatMulNBits: K × N = hidden × nOut, weights (N, blocks, block × bits / 8), one scale a block. */
function checkNbitsHead(node, spec, where, constants) {
  const [bits, block] = blocking(node, where);
  const attrs = node.attributes;
  const k = attrs.has("K") ? attrs.get("K").i : null;
  const n = attrs.has("N") ? attrs.get("N").i : null;
  if (k !== spec.hidden || n !== spec.nOut) {
    throw new MetadataError(`inconsistent model: the output layer is MatMulNBits of K × N = ${none(k)} × ${none(n)}, `
      + `not hidden × n_out = ${spec.hidden} × ${spec.nOut}; re-export the model`, null);
  }
  const blocks = Math.ceil(k / block);
  const [weight, scales] = [1, 2].map((i) => (node.inputs.length > i ? constants.get(node.inputs[i]) ?? null : null));
  if (node.inputs.length !== 3 || !sameShape(weight, [n, blocks, Math.floor((block * bits) / 8)]) || scales === null
      || elements(scales) !== n * blocks) {
    throw new ModelFileError(`${where}: a MatMulNBits head with weights ${repr(weight ?? [])}, scales `
      + `${repr(scales ?? [])} or zero points that do not fit K × N = ${k} × ${n} in blocks `
      + `of ${block}; rnnkit's exporters never write one; refused`);
  }
}

/** A node onnxruntime computes while building the session: allowed only where it cannot grow. */
function fold(node, constants, where) {
  const ins = node.inputs.filter((i) => i);
  if (!FOLDABLE.has(node.opType)) {
    throw new ModelFileError(`${where}: the graph computes a constant with ${node.opType} while it loads, which `
      + "rnnkit's exporters never do; refused");
  }
  const shapes = ins.map((i) => constants.get(i));
  let out;
  if (node.opType === "Cast") {
    out = shapes[0];
  } else {
    try {
      out = broadcast("Mul", shapes);
    } catch (e) {
      if (!(e instanceof ShapeRefused)) throw e;
      throw new ModelFileError(`${where}: constants of shapes ${repr(shapes)} do not broadcast`);
    }
    if (elements(out) > Math.max(...shapes.map(elements))) {
      throw new ModelFileError(`${where}: a Mul of constants ${repr(shapes)} would build a larger `
        + `tensor ${repr(out)} while it loads; refused`);
    }
  }
  for (const name of node.outputs) constants.set(name, out);
  return 4 * elements(out);
}
