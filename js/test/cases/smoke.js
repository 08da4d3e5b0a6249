// Smoke test of the runners and the goldens: every golden model loads, has the task and sizes
// Python reports, and one run() gives Python's logits and state.
import { close, deepEqual, equal, ok } from "../assert.js";

function f32s(values) {
  return values.map((v) => Float32Array.from(v));
}

export default function register(t) {
  t.test("goldens list the models", async (env) => {
    const names = Object.keys(env.goldens.models).sort();
    deepEqual(names, ["bmes_tag", "char_lm", "char_lm_int8", "relu_lm_nobos", "word_classify", "ws_lm"], "models");
    ok(env.goldens.versions.unicode, "versions.unicode");
  });

  t.test("the goldens' model files are what Python loaded", async (env) => {
    for (const [name, g] of Object.entries(env.goldens.models)) {
      const bytes = await env.fetchBytes(g.file);
      ok(bytes instanceof Uint8Array && bytes.length > 0, `${name}: bytes`);
    }
  });

  for (const name of ["char_lm", "char_lm_int8", "word_classify", "bmes_tag", "ws_lm", "relu_lm_nobos"]) {
    t.test(`${name}: loads, and run() gives Python's logits and state`, async (env) => {
      const g = env.goldens.models[name];
      const model = await env.loadModel(await env.fetchBytes(g.file));
      equal(model.task, g.task, "task");
      equal(model.spec.vocab.length, g.vocabSize, "vocabulary size");
      equal(model.nOut, g.nOut, "nOut");
      deepEqual(model.labels, g.labels, "labels");
      equal(model.identity, g.identity, "identity");
      const tol = env.tolerance(g);
      for (const r of g.run.filter((x) => x.from === "start")) {
        const batch = r.ids.length;
        // Python's start state is (layers, 1, hidden); a batch of B rows repeats it B times.
        const state = g.start.state.values.map((v, i) => {
          const [layers, , hidden] = g.start.state.dims[i];
          const out = new Float32Array(layers * batch * hidden);
          for (let l = 0; l < layers; l++) {
            for (let b = 0; b < batch; b++) out.set(v.slice(l * hidden, (l + 1) * hidden), (l * batch + b) * hidden);
          }
          return out;
        });
        const got = await model.run(r.ids, state);
        deepEqual(got.dims, r.dims, `dims of run(${JSON.stringify(r.ids)})`);
        close(got.logits, r.logits, tol, `logits of run(${JSON.stringify(r.ids)})`);
        equal(got.state.length, r.state.values.length, "state arrays");
        close(got.state, f32s(r.state.values), tol, `state after run(${JSON.stringify(r.ids)})`);
      }
    });
  }
}
