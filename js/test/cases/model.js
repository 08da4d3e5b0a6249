// Model: encode/decode, run from the start state and from zeros, classify, argument refusals.
import { close, deepEqual, equal, throws, throwsAsync } from "../assert.js";
import { load, models } from "./core_util.js";

export default function register(t) {
  t.test("encode, decode, start state and run() give Python's answers", async (env) => {
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      for (const e of g.encode) {
        deepEqual(model.encode(e.text), e.ids, `${name}: encode(${JSON.stringify(e.text)})`);
        equal(model.decode(e.ids), e.decode, `${name}: decode`);
      }
      close(model.startState(), g.start.state.values.map((v) => Float32Array.from(v)), tol, `${name}: start state`);
      if (g.start.logits === null) equal(model.startLogits(), null, `${name}: start logits`);
      else close(model.startLogits(), g.start.logits, tol, `${name}: start logits`);
      for (const r of g.run) {
        const got = await model.run(r.ids, r.from === "start" ? model.startState(r.ids.length) : null);
        deepEqual(got.dims, r.dims, `${name}: dims`);
        close(got.logits, r.logits, tol, `${name}: run logits from ${r.from}`);
        close(got.state, r.state.values.map((v) => Float32Array.from(v)), tol, `${name}: run state from ${r.from}`);
      }
    }
  });

  t.test("classify: one text, many texts and a running stream give Python's predictions", async (env) => {
    for (const [name] of models(env, (g) => g.task === "classify")) {
      const { g, model, tol } = await load(env, name);
      for (const c of g.classify.single) {
        const p = await model.classify(c.text);
        equal(p.label, c.label, `${name}: label of ${c.text}`);
        close(p.score, c.score, tol, `${name}: score`);
        close(Object.values(p.scores), Object.values(c.scores), tol, `${name}: scores`);
      }
      const batch = await model.classify(g.classify.batch.texts, { batchSize: 3 });
      batch.forEach((p, i) => close(p.score, g.classify.batch.results[i].score, tol, `${name}: batch ${i}`));
      for (const c of g.classify.streams) {
        const s = model.stream();
        for (const f of c.feeds) {
          await s.feed(f.text);
          equal(s.pending, f.pending, `${name}: pending`);
          const p = s.prediction();
          equal(p === null ? null : p.label, f.prediction === null ? null : f.prediction.label, `${name}: running label`);
        }
        await s.flush();
        close(s.prediction().score, c.final.score, tol, `${name}: final score`);
      }
      const { rnnkit } = env;
      await throwsAsync(() => model.classify(""), "InputError", "no tokens");
      await throwsAsync(() => model.classify(5), "TypeError");
      await throwsAsync(() => model.classify("x", { batchSize: 0 }), "ConfigError", "batchSize");
      throws(() => model.generate("x"), "TaskError", "generate() needs an lm model");
      throws(() => model.tagStream(), "TaskError");
      equal(new rnnkit.TaskError("x").name, "TaskError", "error names");
    }
  });

  t.test("run() refuses bad ids and states with one-line errors", async (env) => {
    const { model } = await load(env, "char_lm");
    await throwsAsync(() => model.run([]), "InputError", "non-empty");
    await throwsAsync(() => model.run([[1, 2], [3]]), "InputError", "rectangular");
    await throwsAsync(() => model.run([[1.5]]), "InputError");
    await throwsAsync(() => model.run([[model.vocabSize]]), "InputError", "outside the vocabulary");
    await throwsAsync(() => model.run([[4]], [new Float32Array(3)]), "StateError", "state must be");
    const bad = model.zeroState(1);
    bad[0][0] = NaN;
    await throwsAsync(() => model.run([[4]], bad), "NonFiniteError", "state given");
    const err = await throwsAsync(() => model.run([[4]], [new Float32Array(3)]), "StateError");
    equal(err.message.includes("\n"), false, "one line");
    equal(err instanceof env.rnnkit.RnnkitError, true, "an RnnkitError");
  });
}
