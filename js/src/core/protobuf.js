// An ONNX file read from its bytes: a port of runtime/onnxfile.py, with the same caps.
//
// onnxruntime's JavaScript API exposes neither `metadata_props` nor the graph, and the checks of
// graphcheck.js must run before a session exists (onnxruntime folds constants while it builds
// one). This walks the protobuf wire format of `ModelProto` and keeps what the checks need
// (metadata, operators, attributes, tensor shapes and where their bytes are) without copying
// weights. Unknown fields are skipped, as protobuf readers do; anything malformed throws
// OnnxFormatError. Field numbers are those of onnx/onnx.proto (IR version 3 and later).

// Caps on a file's structure: far above anything an exporter writes for one recurrent model,
// low enough that walking a hostile file stays cheap.
export const MAX_NODES = 20_000;
export const MAX_TENSORS = 20_000;
export const MAX_RANK = 8;
export const MAX_NAME = 4096;
export const MAX_ATTRIBUTES = 64;
export const MAX_LIST = 1_000_000; // ints/floats in one attribute, dims of one shape…
export const MAX_FIELDS = 1_000_000; // fields (and packed integers) in one file

const VARINT = 0;
const FIXED64 = 1;
const BYTES = 2;
const FIXED32 = 5;
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** The bytes are not a well-formed ONNX ModelProto (or exceed the reader's caps). */
export class OnnxFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = "OnnxFormatError";
  }
}

/** A varint as a Number when it is exact as one, else (more than 53 bits) as a BigInt. */
function asInt64(value) {
  if (typeof value === "number") return value; // < 2^53: its int64 is itself
  return Number(BigInt.asIntN(64, value));
}

function asNumber(value) {
  return typeof value === "number" ? value : Number(value);
}

class Reader {
  constructor(bytes) {
    this.bytes = bytes;
    this.left = MAX_FIELDS;
    this.pos = 0;
  }

  spend(n) {
    this.left -= n;
    if (this.left < 0) {
      throw new OnnxFormatError(`more than ${MAX_FIELDS} fields; no model rnnkit writes has that many`);
    }
  }

  /** Read a varint at this.pos (advancing it); a Number, or a BigInt past 2^53. */
  varint(end) {
    const bytes = this.bytes;
    let pos = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 7; i++) { // 49 bits: exact as a Number
      if (pos >= end) throw new OnnxFormatError("truncated varint");
      const byte = bytes[pos++];
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = pos;
        return result;
      }
      scale *= 128;
    }
    let big = BigInt(result);
    let shift = 49n;
    for (;;) {
      if (pos >= end) throw new OnnxFormatError("truncated varint");
      const byte = bytes[pos++];
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) {
        this.pos = pos;
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      shift += 7n;
      if (shift >= 70n) throw new OnnxFormatError("varint longer than 10 bytes");
    }
  }

  /**
   * Call fn(number, wire, a, b) for each field of bytes[pos:end]: `a` is the value of a varint or
   * fixed field; for a length-delimited one `a`, `b` are its start and end.
   */
  fields(pos, end, fn) {
    while (pos < end) {
      this.spend(1);
      this.pos = pos;
      const key = this.varint(end);
      pos = this.pos;
      const wire = typeof key === "number" ? key % 8 : Number(key & 7n);
      const number = typeof key === "number" ? Math.floor(key / 8) : Number(key >> 3n);
      if (number === 0) throw new OnnxFormatError("field number 0");
      let a;
      let b;
      if (wire === VARINT) {
        a = this.varint(end);
        pos = this.pos;
      } else if (wire === BYTES) {
        const size = this.varint(end);
        pos = this.pos;
        if (size > end - pos) {
          throw new OnnxFormatError("a field runs past the end of its message (truncated file?)");
        }
        a = pos;
        b = pos + size;
        pos = b;
      } else if (wire === FIXED32) {
        if (end - pos < 4) throw new OnnxFormatError("truncated fixed32 field");
        const bytes = this.bytes;
        a = (bytes[pos] | (bytes[pos + 1] << 8) | (bytes[pos + 2] << 16) | (bytes[pos + 3] << 24)) >>> 0;
        pos += 4;
      } else if (wire === FIXED64) {
        if (end - pos < 8) throw new OnnxFormatError("truncated fixed64 field");
        a = pos; // no field rnnkit reads is fixed64: where it is will do
        pos += 8;
      } else { // 3/4: groups, which no ONNX writer uses; 6/7: invalid
        throw new OnnxFormatError(`unsupported wire type ${wire}`);
      }
      fn(number, wire, a, b);
    }
  }

  text(start, end, limit = MAX_NAME) {
    if (limit !== null && end - start > limit) {
      throw new OnnxFormatError(`a name of ${end - start} bytes (more than ${limit})`);
    }
    try {
      return UTF8.decode(this.bytes.subarray(start, end));
    } catch {
      throw new OnnxFormatError("a string that is not UTF-8");
    }
  }

  /** Append a repeated int64 field's values (packed or not) to `out`. */
  ints(wire, a, b, out) {
    if (wire === VARINT) {
      out.push(asInt64(a));
    } else if (wire === BYTES) {
      let pos = a;
      while (pos < b) {
        this.pos = pos;
        const v = this.varint(b);
        pos = this.pos;
        out.push(asInt64(v));
        this.spend(1);
        if (out.length > MAX_LIST) throw new OnnxFormatError(`a list of more than ${MAX_LIST} integers`);
      }
    } else {
      throw new OnnxFormatError("an integer list with the wrong wire type");
    }
    if (out.length > MAX_LIST) throw new OnnxFormatError(`a list of more than ${MAX_LIST} integers`);
  }

  opset(pos, end) {
    let domain = "";
    let version = 0;
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1 && wire === BYTES) domain = this.text(a, b);
      else if (number === 2 && wire === VARINT) version = asInt64(a);
    });
    return [domain, version];
  }

  entry(pos, end) {
    let key = "";
    let text = "";
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1 && wire === BYTES) key = this.text(a, b);
      else if (number === 2 && wire === BYTES) text = this.text(a, b, null); // the contract caps values
    });
    return [key, text];
  }

  graph(pos, end, model) {
    this.fields(pos, end, (number, wire, a, b) => {
      if (wire !== BYTES) return;
      if (number === 1) {
        model.nodes.push(this.node(a, b));
        if (model.nodes.length > MAX_NODES) throw new OnnxFormatError(`more than ${MAX_NODES} nodes`);
      } else if (number === 5) {
        model.initializers.push(this.tensor(a, b));
        if (model.initializers.length > MAX_TENSORS) {
          throw new OnnxFormatError(`more than ${MAX_TENSORS} initializers`);
        }
      } else if (number === 11) {
        model.inputs.push(this.valueInfo(a, b));
      } else if (number === 12) {
        model.outputs.push(this.valueInfo(a, b));
      } else if (number === 15) {
        model.sparseInitializers += 1;
      }
      if (model.inputs.length + model.outputs.length > MAX_TENSORS) {
        throw new OnnxFormatError(`more than ${MAX_TENSORS} graph inputs and outputs`);
      }
    });
  }

  node(pos, end) {
    const inputs = [];
    const outputs = [];
    let opType = "";
    let domain = "";
    let name = "";
    const attributes = new Map();
    this.fields(pos, end, (number, wire, a, b) => {
      if (wire !== BYTES) return;
      if (number === 1) inputs.push(this.text(a, b));
      else if (number === 2) outputs.push(this.text(a, b));
      else if (number === 3) name = this.text(a, b);
      else if (number === 4) opType = this.text(a, b);
      else if (number === 7) domain = this.text(a, b);
      else if (number === 5) {
        const attribute = this.attribute(a, b);
        attributes.set(attribute.name, attribute);
        if (attributes.size > MAX_ATTRIBUTES) {
          throw new OnnxFormatError(`a node with more than ${MAX_ATTRIBUTES} attributes`);
        }
      }
      if (inputs.length + outputs.length > MAX_ATTRIBUTES * 16) {
        throw new OnnxFormatError("a node with too many inputs or outputs");
      }
    });
    return { opType, domain, name, inputs, outputs, attributes };
  }

  attribute(pos, end) {
    const at = {
      name: "", type: 0, i: null, f: null, s: null, ints: [], strings: [], tensor: null,
      hasGraph: false, hasSparse: false, count: 0,
    };
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1 && wire === BYTES) at.name = this.text(a, b);
      else if (number === 20 && wire === VARINT) at.type = asNumber(a);
      else if (number === 3 && wire === VARINT) at.i = asInt64(a);
      else if (number === 2 && wire === FIXED32) at.f = float32(a);
      else if (number === 4 && wire === BYTES) at.s = this.bytes.slice(a, b);
      else if (number === 5 && wire === BYTES) {
        if (at.tensor !== null) throw new OnnxFormatError(`attribute ${pyStr(at.name)} has two tensors`);
        at.tensor = this.tensor(a, b);
      } else if (number === 6 || number === 11) at.hasGraph = true;
      else if (number === 22 || number === 23) at.hasSparse = true;
      else if (number === 8) {
        this.ints(wire, a, b, at.ints);
        at.count = at.ints.length;
      } else if (number === 9 && wire === BYTES) {
        at.strings.push(this.bytes.slice(a, b));
        at.count = at.strings.length;
      } else if (number === 7) { // floats: packed fixed32 or one at a time
        at.count += wire === BYTES ? Math.floor((b - a) / 4) : 1;
      } else if (number === 10) {
        at.count += 1;
      }
      if (at.count > MAX_LIST) throw new OnnxFormatError(`an attribute list of more than ${MAX_LIST} items`);
    });
    return at;
  }

  tensor(pos, end) {
    const dims = [];
    let dataType = 0;
    let name = "";
    let dataBytes = 0;
    let raw = null;
    const external = new Map();
    const floatData = [];
    let location = 0;
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1) {
        this.ints(wire, a, b, dims);
        if (dims.length > MAX_RANK) throw new OnnxFormatError(`a tensor of rank more than ${MAX_RANK}`);
      } else if (number === 2 && wire === VARINT) {
        dataType = asNumber(a);
      } else if (number === 8 && wire === BYTES) {
        name = this.text(a, b);
      } else if (number === 9 && wire === BYTES) {
        raw = this.bytes.subarray(a, b);
        dataBytes += b - a;
      } else if (number === 4 && wire === BYTES) { // float_data, packed: kept to check it is finite
        floatData.push(this.bytes.subarray(a, b));
        dataBytes += b - a;
      } else if ([4, 5, 6, 7, 10, 11].includes(number)) { // typed data fields, packed or not
        dataBytes += wire === BYTES ? b - a : 1;
        if (number === 4) {
          const piece = new Uint8Array(4);
          new DataView(piece.buffer).setUint32(0, Number(a), true);
          floatData.push(piece);
        }
      } else if (number === 13 && wire === BYTES) {
        const [key, text] = this.entry(a, b);
        external.set(key, text);
      } else if (number === 14 && wire === VARINT) {
        location = asNumber(a);
      }
    });
    if (dims.some((d) => d < 0)) {
      throw new OnnxFormatError(`tensor ${pyStr(name)} has a negative dimension [${dims.join(", ")}]`);
    }
    return {
      name, dims, dataType, dataBytes, raw, floatData,
      external: location === 1 || external.size ? external : null,
      elements: dims.reduce((n, d) => n * d, 1),
    };
  }

  valueInfo(pos, end) {
    let name = "";
    let elemType = null;
    let shape = null;
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1 && wire === BYTES) name = this.text(a, b);
      else if (number === 2 && wire === BYTES) {
        if (elemType !== null || shape !== null) throw new OnnxFormatError(`value ${pyStr(name)} has two types`);
        [elemType, shape] = this.type(a, b);
      }
    });
    return { name, elemType, shape };
  }

  type(pos, end) {
    let elemType = null;
    let shape = null;
    let seen = 0;
    this.fields(pos, end, (number, wire, a, b) => {
      if (number === 1 && wire === BYTES) { // tensor_type; other kinds leave elemType null
        seen += 1;
        elemType = 0;
        this.fields(a, b, (n2, w2, a2, b2) => {
          if (n2 === 1 && w2 === VARINT) elemType = asNumber(a2);
          else if (n2 === 2 && w2 === BYTES) {
            if (shape !== null) throw new OnnxFormatError("a tensor type with two shapes");
            shape = this.shape(a2, b2);
          }
        });
      }
    });
    if (seen > 1) throw new OnnxFormatError("a value with two tensor types");
    return [elemType, shape];
  }

  shape(pos, end) {
    const dims = [];
    this.fields(pos, end, (number, wire, a, b) => {
      if (number !== 1 || wire !== BYTES) return;
      let value = null;
      let param = null;
      this.fields(a, b, (n2, w2, a2, b2) => {
        if (n2 === 1 && w2 === VARINT) value = asInt64(a2);
        else if (n2 === 2 && w2 === BYTES) param = this.text(a2, b2);
      });
      dims.push({ value, param });
      if (dims.length > MAX_RANK) throw new OnnxFormatError(`a shape of rank more than ${MAX_RANK}`);
    });
    return dims;
  }
}

const SCRATCH = new DataView(new ArrayBuffer(4));

function float32(bits) {
  SCRATCH.setUint32(0, bits, true);
  return SCRATCH.getFloat32(0, true);
}

// What Python's str.isprintable() calls unprintable (but the space): repr escapes these
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]/u;

/** Python's repr of a str, for names and values in messages: 'name' (or "it's"). */
export function pyStr(text) {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  let out = "";
  for (const ch of text) {
    const code = ch.codePointAt(0);
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch !== " " && UNPRINTABLE.test(ch)) {
      const hex = code.toString(16);
      out += code <= 0xff ? `\\x${hex.padStart(2, "0")}` : code <= 0xffff ? `\\u${hex.padStart(4, "0")}`
        : `\\U${hex.padStart(8, "0")}`;
    } else out += ch;
  }
  return quote + out + quote;
}

/**
 * Parse `bytes` (a Uint8Array) as an ONNX ModelProto; throw OnnxFormatError if it is not one.
 *
 * Returns {irVersion, opsets: Map(domain → version), metadata: Map(key → value), nodes,
 * initializers, inputs, outputs, hasGraph, sparseInitializers, functions, trainingInfo}.
 */
export function readOnnx(bytes) {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("readOnnx takes a Uint8Array");
  const reader = new Reader(bytes);
  const model = {
    irVersion: 0, opsets: new Map(), metadata: new Map(), nodes: [], initializers: [], inputs: [], outputs: [],
    hasGraph: false, sparseInitializers: 0, functions: 0, trainingInfo: 0,
  };
  reader.fields(0, bytes.length, (number, wire, a, b) => {
    if (number === 1 && wire === VARINT) {
      model.irVersion = asNumber(a);
    } else if (number === 7 && wire === BYTES) {
      if (model.hasGraph) throw new OnnxFormatError("the model holds two graphs");
      model.hasGraph = true;
      reader.graph(a, b, model);
    } else if (number === 8 && wire === BYTES) {
      const [domain, version] = reader.opset(a, b);
      model.opsets.set(domain, version);
    } else if (number === 14 && wire === BYTES) {
      const [key, text] = reader.entry(a, b);
      model.metadata.set(key, text); // the last entry for a key wins, as in onnxruntime's map
    } else if (number === 20 && wire === BYTES) {
      model.trainingInfo += 1;
    } else if (number === 25 && wire === BYTES) {
      model.functions += 1;
    }
  });
  return model;
}
