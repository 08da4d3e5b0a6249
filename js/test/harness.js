// What the Node and browser runners share: collecting a case file's tests and the tolerances.
//
// A case file (js/test/cases/NAME.js) default-exports register(t); t.test(name, fn, options?)
// adds a test, fn(env) is async. options: { skip: true | "why", timeout: ms, only: "node" | "browser" }.

// Absolute tolerances against the Python runtime's numbers, by the model's tolerance kind
// (goldens.json: models[name].tolerance). fp32: onnxruntime-node runs the same CPU kernels as
// Python's onnxruntime, WebAssembly kernels differ more; int8: quantized files round on both sides.
export const TOLERANCES = {
  node: { fp32: 1e-5, int8: 2e-3 },
  browser: { fp32: 1e-4, int8: 2e-3 },
};

export const DEFAULT_TIMEOUT_MS = 60_000;

// tolerance("fp32" | "int8" | a goldens model entry | a goldens model name)
export function makeTolerance(kind, goldens) {
  const table = TOLERANCES[kind];
  return function tolerance(model = "fp32") {
    let which = model;
    if (model !== null && typeof model === "object") which = model.tolerance;
    else if (goldens && goldens.models && Object.hasOwn(goldens.models, model)) which = goldens.models[model].tolerance;
    if (!Object.hasOwn(table, which)) {
      throw new Error(`tolerance(${JSON.stringify(model)}): expected ${Object.keys(table).join(" or ")}, a goldens `
        + "model entry or a model name");
    }
    return table[which];
  };
}

// A module in cases/ without a default export is a helper the case files import, not a case file.
export const HELPER = "a helper module (no default export)";

// The tests a case module registers: [{ name, fn, options }], or null for a helper module.
export function collect(module, file) {
  const register = module.default;
  if (register === undefined) return null;
  if (typeof register !== "function") {
    throw new Error(`${file}: a case file must default-export register(t)`);
  }
  const tests = [];
  register({
    test(name, fn, options = {}) {
      if (typeof name !== "string" || typeof fn !== "function") {
        throw new Error(`${file}: t.test(name, fn, options?) needs a name and a function`);
      }
      if (tests.some((t) => t.name === name)) throw new Error(`${file}: two tests named ${JSON.stringify(name)}`);
      tests.push({ name, fn, options });
    },
  });
  return tests;
}

// Why a test does not run in this environment (undefined: it runs).
export function skipReason(options, kind) {
  if (options.skip) return typeof options.skip === "string" ? options.skip : "skipped";
  if (options.only && options.only !== kind) return `${options.only} only`;
  return undefined;
}
