// Stream: chunked feeds give Python's logits, pending text and counters; streaming equals the
// whole text; forks are independent; steps; refusals.
import { close, deepEqual, equal, throws, throwsAsync } from "../assert.js";
import { chunksOf, load, models } from "./core_util.js";

export default function register(t) {
  t.test("feed/flush/step give Python's logits, pending and consumed", async (env) => {
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      for (const c of g.stream) {
        const s = model.stream();
        if (c.steps) {
          for (let i = 0; i < c.steps.length; i++) close(await s.step(c.steps[i]), c.logits[i], tol, `${name}: step ${i}`);
          continue;
        }
        for (const f of c.feeds) {
          const logits = await s.feed(f.text);
          if (f.logits === null) equal(logits, null, `${name}: feed logits`);
          else close(logits, f.logits, tol, `${name}: feed(${JSON.stringify(f.text)}) of ${JSON.stringify(c.text)}`);
          equal(s.pending, f.pending, `${name}: pending`);
          equal(s.consumed, f.consumed, `${name}: consumed`);
        }
        const flushed = await s.flush();
        if (c.flush === null) equal(flushed, null, `${name}: flush`);
        else close(flushed, c.flush, tol, `${name}: flush`);
        equal(s.consumed, c.consumed, `${name}: consumed`);
        close(s.state, c.state.values.map((v) => Float32Array.from(v)), tol, `${name}: state`);
      }
    }
  });

  t.test("streaming any chunks equals the whole text; unawaited feeds run in order", async (env) => {
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      const text = g.stream[0].text;
      const whole = model.stream();
      await whole.feed(text);
      const want = await whole.flush();
      for (const size of [1, 2, 3, 7]) {
        const s = model.stream();
        const calls = chunksOf(text, size).map((piece) => s.feed(piece)); // not awaited one by one
        await Promise.all(calls);
        close(await s.flush(), want, tol, `${name}: chunks of ${size}`); // calls cut elsewhere: fp32 rounding
        equal(s.consumed, whole.consumed, `${name}: consumed`);
      }
    }
  });

  t.test("a fork continues alone; reset goes back to the start", async (env) => {
    const { g, model } = await load(env, "char_lm");
    const text = g.stream[0].text;
    const s = model.stream();
    await s.feed(text.slice(0, 3));
    const twin = s.fork();
    const a = await s.feed(text.slice(3));
    equal(twin.consumed, 3, "the fork did not move");
    const b = await twin.feed(text.slice(3));
    deepEqual(a, b, "the fork continues exactly as the stream did");
    await twin.step(4);
    deepEqual(s.logits, a, "stepping the fork leaves the stream alone");
    s.reset();
    equal(s.consumed, 0, "reset");
    deepEqual(s.logits, model.startLogits(), "reset logits");
  });

  t.test("bad arguments are refused with the Python error classes", async (env) => {
    const { model } = await load(env, "char_lm");
    const s = model.stream();
    throws(() => s.step(model.vocabSize), "InputError", "outside the vocabulary");
    throws(() => s.step(1.5), "TypeError");
    throws(() => s.feed(3), "TypeError");
    throws(() => model.stream({ key: "" }), "ConfigError", "must not be empty");
    throws(() => model.stream({ key: 5 }), "TypeError");
    throws(() => s.prediction(), "TaskError");
    const busy = s.feed("abc");
    throws(() => s.snapshot(), "StateError", "await it first");
    await busy;
    s.snapshot();
    await throwsAsync(() => model.stream().step(-1), "InputError");
  });
}
