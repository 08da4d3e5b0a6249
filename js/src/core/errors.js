// The errors rnnkit raises: the same class names as the Python runtime (runtime/errors.py), so a
// caller can tell a bad file from a bad call by `err.name` or `instanceof` in either language.
// Messages are one line: control characters, bidi controls and lone surrogates they quote (a
// label, a path) are escaped, as Python's `printable` does.

// C0 (but \t and \n are named below), DEL and C1, bidi controls, line/paragraph separators, and
// lone surrogates (the `u` flag makes [\ud800-\udfff] match only unpaired halves).
const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]/gu;
const NAMED = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/** `text` with the characters a terminal would act on escaped (`\n`, `\x1b`, `\u202e`). */
export function printable(text) {
  return String(text).replace(UNPRINTABLE, (ch) => {
    if (NAMED[ch]) return NAMED[ch];
    const code = ch.codePointAt(0);
    if (code <= 0xff) return `\\x${code.toString(16).padStart(2, "0")}`;
    if (code >= 0xdc80 && code <= 0xdcff) return `\\x${(code - 0xdc00).toString(16).padStart(2, "0")}`;
    return `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Base class of every error rnnkit raises on purpose. */
export class RnnkitError extends Error {
  constructor(message, options) {
    super(printable(message), options);
    this.name = new.target.name;
  }
}

/** An option or argument has a value rnnkit cannot use. */
export class ConfigError extends RnnkitError {}

/** An optional dependency (onnxruntime, jieba-wasm…) is not available. */
export class MissingDependencyError extends RnnkitError {}

/** A model file cannot be read: not ONNX, truncated, unsafe, or not made by rnnkit. */
export class ModelFileError extends RnnkitError {}

/** The model file does not exist. */
export class ModelNotFoundError extends ModelFileError {}

/** A model's rnnkit metadata is missing, malformed or inconsistent; `key` names the metadata key (or null). */
export class MetadataError extends RnnkitError {
  constructor(message, key = null, options) {
    super(message, options);
    this.key = key;
  }
}

/** The model was written in a format version this rnnkit does not know. */
export class FormatVersionError extends MetadataError {}

/** The requested onnxruntime execution provider cannot run here. */
export class ProviderError extends RnnkitError {}

/** A text, token id or argument given to a model call cannot be used. */
export class InputError extends RnnkitError {}

/** A call would need more memory than the model's budget; `needed` and `allowed` are bytes. */
export class BudgetError extends InputError {
  constructor(message, needed = 0, allowed = 0, options) {
    super(message, options);
    this.needed = needed;
    this.allowed = allowed;
  }
}

/** A model gave (or a state holds) NaN or infinite values. */
export class NonFiniteError extends RnnkitError {}

/** The call does not fit the model's task (e.g. `generate` on a classifier). */
export class TaskError extends RnnkitError {}

/** A recurrent state or stream snapshot does not belong to this model or is corrupt. */
export class StateError extends RnnkitError {}
