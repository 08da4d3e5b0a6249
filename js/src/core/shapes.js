// The shape of every tensor a graph computes, in terms of the batch "B" and sequence "T": a port
// of runtime/shapes.py. A tensor may hold B once and T once, never a product of them, and the sum
// of what every activation holds per token is the memory budget of a call.

import { INPUT_TOKENS } from "./schemas.js";

const SYMBOLS = ["B", "T"];

/** The graph computes a tensor whose shape rnnkit cannot bound (the message says which). */
export class ShapeRefused extends Error {
  constructor(message) {
    super(message);
    this.name = "ShapeRefused";
  }
}

/** What the activations hold: elements per token of one row (tensors with T) and per row. */
class Usage {
  constructor() {
    this.perToken = 0;
    this.perRow = 0;
    this.workspace = 0; // the recurrent kernels' gates, per token of one row
  }

  add(shape) {
    const n = elements(shape);
    if (shape.includes("T")) this.perToken += n;
    else if (shape.includes("B")) this.perRow += n;
  }
}

// operator → [fewest inputs, most inputs, most outputs] of the nodes rnnkit's exporters write
const ARITY = {
  Cast: [1, 1, 1], Abs: [1, 1, 1], Round: [1, 1, 1], Transpose: [1, 1, 1], Clip: [3, 3, 1],
  ReduceMax: [1, 2, 1], Squeeze: [1, 2, 1], Slice: [3, 5, 1], Concat: [1, 1 << 16, 1],
  Gather: [2, 2, 1], GatherBlockQuantized: [3, 3, 1], DequantizeLinear: [2, 3, 1],
  DynamicQuantizeLinear: [1, 1, 3], MatMul: [2, 2, 1], MatMulInteger: [2, 4, 1], MatMulNBits: [3, 3, 1],
  Add: [2, 2, 1], Mul: [2, 2, 1], Div: [2, 2, 1], Max: [2, 2, 1],
  RNN: [3, 6, 2], GRU: [3, 6, 2], LSTM: [3, 8, 3], DynamicQuantizeLSTM: [3, 12, 3],
};

const isInt = (d) => typeof d === "number";

/** The product of a shape's static sizes. */
export function elements(shape) {
  let n = 1;
  for (const d of shape) if (isInt(d)) n *= d;
  return n;
}

/** A shape as Python prints a tuple of sizes and symbols: (B, T, 5). */
export function show(shape) {
  return "(" + shape.join(", ") + ")";
}

export function sameShape(a, b) {
  return a !== undefined && b !== undefined && a !== null && b !== null && a.length === b.length
    && a.every((d, i) => d === b[i]);
}

function axisOf(axis, rank) {
  if (!(-rank <= axis && axis < rank)) throw new ShapeRefused(`axis ${axis} of a rank-${rank} tensor`);
  return ((axis % rank) + rank) % rank;
}

/** numpy's broadcast of `ins`; a size meets B or T only where it is 1. */
export function broadcast(op, ins) {
  const rank = Math.max(...ins.map((s) => s.length));
  const out = [];
  for (let axis = 0; axis < rank; axis++) {
    const dims = new Set();
    for (const s of ins) {
      const i = axis - rank + s.length;
      if (i >= 0 && s[i] !== 1) dims.add(s[i]);
    }
    if (dims.size > 1) throw new ShapeRefused(`${op} broadcasts shapes [${ins.map(show).join(", ")}]`);
    out.push(dims.size ? [...dims][0] : 1);
  }
  return out;
}

function constValues(node, index, values, what) {
  const name = index < node.inputs.length ? node.inputs[index] : "";
  if (!values.has(name)) {
    throw new ShapeRefused(`${node.opType} takes its ${what} from '${name}', which is not a small integer constant`);
  }
  return [...values.get(name)];
}

function intAttr(attrs, name, fallback) {
  return attrs.has(name) ? attrs.get(name).i : fallback;
}

function checkArity(node, shapes) {
  const [fewest, most, outputs] = ARITY[node.opType] ?? [0, 0, 0];
  const given = node.inputs.length;
  if (!(fewest <= given && given <= most) || node.outputs.length > outputs || !node.outputs.length) {
    throw new ShapeRefused(`${node.opType} with ${given} inputs and ${node.outputs.length} outputs`);
  }
  for (const name of node.inputs.slice(0, fewest)) {
    if (!shapes.has(name)) throw new ShapeRefused(`${node.opType} without its input '${name}'`);
  }
}

// Python's len(range(*slice(start, end, step).indices(size)))
function sliceLength(start, end, step, size) {
  const clamp = (x) => {
    if (x < 0) {
      x += size;
      if (x < 0) x = step < 0 ? -1 : 0;
    } else if (x >= size) {
      x = step < 0 ? size - 1 : size;
    }
    return x;
  };
  const lo = clamp(start);
  const hi = clamp(end);
  return step > 0 ? Math.max(0, Math.ceil((hi - lo) / step)) : Math.max(0, Math.ceil((lo - hi) / -step));
}

function slice(node, x, values) {
  let starts;
  let ends;
  let axes;
  let steps;
  const attrs = node.attributes;
  if (attrs.has("starts")) { // opset < 10 kept them as attributes
    starts = [...attrs.get("starts").ints];
    ends = attrs.has("ends") ? [...attrs.get("ends").ints] : [];
    axes = attrs.has("axes") ? [...attrs.get("axes").ints] : starts.map((_, i) => i);
    steps = starts.map(() => 1);
  } else {
    starts = constValues(node, 1, values, "starts");
    ends = constValues(node, 2, values, "ends");
    axes = node.inputs.length > 3 && node.inputs[3] ? constValues(node, 3, values, "axes") : starts.map((_, i) => i);
    steps = node.inputs.length > 4 && node.inputs[4] ? constValues(node, 4, values, "steps") : starts.map(() => 1);
  }
  if (!(starts.length === ends.length && ends.length === axes.length && axes.length === steps.length)) {
    throw new ShapeRefused("Slice with starts, ends, axes and steps of different lengths");
  }
  const out = [...x];
  for (let i = 0; i < starts.length; i++) {
    const axis = axisOf(axes[i], x.length);
    if (!isInt(x[axis]) || steps[i] === 0) {
      throw new ShapeRefused(`Slice along axis ${axis} of shape ${show(x)} (step ${steps[i]})`);
    }
    out[axis] = sliceLength(starts[i], ends[i], steps[i], x[axis]);
  }
  return out;
}

function concat(node, ins) {
  if (!ins.length || new Set(ins.map((s) => s.length)).size !== 1) {
    throw new ShapeRefused("Concat of tensors of different ranks");
  }
  const axis = axisOf(intAttr(node.attributes, "axis", 0), ins[0].length);
  let total = 0;
  for (const shape of ins) {
    if (!isInt(shape[axis]) || shape.some((d, a) => a !== axis && d !== ins[0][a])) {
      throw new ShapeRefused(`Concat of shapes [${ins.map(show).join(", ")}] along axis ${axis}`);
    }
    total += shape[axis];
  }
  return [...ins[0].slice(0, axis), total, ...ins[0].slice(axis + 1)];
}

function outputsOf(node, shapes, values, usage) {
  const op = node.opType;
  const attrs = node.attributes;
  if (node.inputs.some((i) => i && !shapes.has(i))) {
    throw new ShapeRefused(`${op} reads a tensor whose shape is unknown`);
  }
  const ins = node.inputs.map((i) => (i ? shapes.get(i) : []));
  if (["Cast", "DequantizeLinear", "Abs", "Round", "Clip"].includes(op)) return [ins[0]];
  if (op === "ReduceMax") { // the int8 head's scale of each row: over its static last axis, kept as 1
    const axes = attrs.has("axes") ? [...attrs.get("axes").ints] : constValues(node, 1, values, "axes");
    const keep = intAttr(attrs, "keepdims", 1);
    const x = ins[0];
    const refused = () => new ShapeRefused(`ReduceMax over axes [${axes.join(", ")}] (keepdims ${keep}) of a `
      + `tensor of shape ${show(x)}, not over its last axis alone, of a fixed size`);
    if (!x.length || !isInt(x[x.length - 1])) throw refused();
    const normal = axes.map((a) => axisOf(a, x.length));
    if (normal.length !== 1 || normal[0] !== x.length - 1 || keep !== 1) throw refused();
    return [[...x.slice(0, -1), 1]];
  }
  if (op === "GatherBlockQuantized") { // data (rows, width × bits / 8)
    const bits = intAttr(attrs, "bits", 4);
    return [[...ins[1], Math.floor((ins[0][1] * 8) / bits)]];
  }
  if (op === "MatMulNBits") {
    const a = ins[0];
    const k = attrs.get("K").i;
    const n = attrs.get("N").i;
    if (!a.length || a[a.length - 1] !== k || !isInt(a[a.length - 1])) {
      throw new ShapeRefused(`MatMulNBits of K = ${k} reads a tensor of shape ${show(a)}`);
    }
    return [[...a.slice(0, -1), n]];
  }
  if (op === "DynamicQuantizeLinear") return [ins[0], [], []];
  if (op === "Gather") return [[...ins[1], ...ins[0].slice(1)]];
  if (op === "Transpose") {
    const rank = ins[0].length;
    const perm = attrs.has("perm") ? [...attrs.get("perm").ints] : [...Array(rank).keys()].reverse();
    const sorted = [...perm].sort((p, q) => p - q);
    if (sorted.length !== rank || sorted.some((p, i) => p !== i)) {
      throw new ShapeRefused(`Transpose with perm [${perm.join(", ")}] of a rank-${rank} tensor`);
    }
    return [perm.map((p) => ins[0][p])];
  }
  if (op === "Squeeze") {
    const raw = attrs.has("axes") ? [...attrs.get("axes").ints] : constValues(node, 1, values, "axes");
    const axes = [...new Set(raw.map((a) => axisOf(a, ins[0].length)))].sort((p, q) => p - q);
    if (!axes.length || axes.some((a) => ins[0][a] !== 1)) {
      throw new ShapeRefused(`Squeeze of axes [${axes.join(", ")}] of a tensor of shape ${show(ins[0])}`);
    }
    return [ins[0].filter((_, a) => !axes.includes(a))];
  }
  if (op === "Slice") return [slice(node, ins[0], values)];
  if (op === "Concat") return [concat(node, ins)];
  if (["RNN", "GRU", "LSTM", "DynamicQuantizeLSTM"].includes(op)) {
    const x = ins[0];
    if (x.length !== 3 || x[0] !== "T" || x[1] !== "B" || !isInt(x[2])) {
      throw new ShapeRefused(`${op} reads a sequence of shape ${show(x)}, not (T, B, features)`);
    }
    const hidden = attrs.get("hidden_size").i;
    usage.workspace += ({ RNN: 1, GRU: 3 }[op] ?? 4) * hidden;
    return [["T", 1, "B", hidden], [1, "B", hidden], [1, "B", hidden]].slice(0, node.outputs.length);
  }
  if (op === "MatMul" || op === "MatMulInteger") { // a sum over a fixed axis: never over the batch or the text
    const [a, b] = ins;
    if (b.length !== 2 || !a.length || a[a.length - 1] !== b[0] || !isInt(b[0])) {
      throw new ShapeRefused(`${op} of shapes ${show(a)} and ${show(b)}`);
    }
    return [[...a.slice(0, -1), b[1]]];
  }
  if (["Add", "Mul", "Div", "Max"].includes(op)) return [broadcast(op, ins)];
  throw new ShapeRefused(`${op} has no shape rule`); // the allow-list names no other operator
}

/**
 * Every tensor's shape (a Map name → shape) and what the activations hold; throws ShapeRefused.
 * `constants`: Map name → dims; `values`: Map name → the values of small int64 constants.
 */
export function inferShapes(nodes, spec, constants, values) {
  const shapes = new Map([...constants].map(([name, dims]) => [name, [...dims]]));
  shapes.set(INPUT_TOKENS, ["B", "T"]);
  for (const name of spec.inputNames.slice(1)) shapes.set(name, [spec.layers, "B", spec.hidden]);
  const usage = new Usage();
  for (const node of nodes) {
    if (node.outputs.every((out) => constants.has(out))) continue; // a constant (or a fold of constants)
    checkArity(node, shapes);
    if (node.opType === "Clip" && node.inputs.slice(1).some((b) => !constants.has(b)
        || elements(constants.get(b)) !== 1 || constants.get(b).length > 1)) {
      throw new ShapeRefused(`Clip with bounds [${node.inputs.slice(1).map((b) => `'${b}'`).join(", ")}] that are `
        + "not scalar constants");
    }
    const outs = outputsOf(node, shapes, values, usage);
    if (node.outputs.filter((o) => o).length > outs.length) {
      throw new ShapeRefused(`${node.opType} with ${node.outputs.length} outputs`);
    }
    for (let i = 0; i < Math.min(node.outputs.length, outs.length); i++) {
      const name = node.outputs[i];
      if (!name) continue;
      const shape = outs[i];
      for (const symbol of SYMBOLS) {
        if (shape.filter((d) => d === symbol).length > 1) {
          throw new ShapeRefused(`${node.opType} computes a tensor of shape ${show(shape)}, which grows `
            + `with ${symbol} × ${symbol}`);
        }
      }
      shapes.set(name, shape);
      usage.add(shape);
    }
  }
  return { shapes, usage };
}
