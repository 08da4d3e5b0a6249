// generate: Python's pieces for the same seed (SplitMix64 and the same float64 steps); refusals.
import { deepEqual, equal, ok, throws } from "../assert.js";
import { load, models } from "./core_util.js";

const collect = async (it) => {
  const out = [];
  for await (const piece of it) out.push(piece);
  return out;
};

export default function register(t) {
  t.test("generate gives Python's pieces, greedy and seeded", async (env) => {
    for (const [name] of models(env, (g) => g.task === "lm")) {
      const { g, model } = await load(env, name);
      for (const c of g.generate) {
        // int8 logits may differ in the last bits, which can move a draw: compare fp32 files exactly
        if (g.tolerance !== "fp32" && c.options.temperature !== 0) continue;
        deepEqual(await collect(model.generate(c.prompt, c.options)), c.pieces, `${name}: ${JSON.stringify(c)}`);
      }
    }
  });

  t.test("SplitMix64 and Sampler match the reference values", async (env) => {
    const { SplitMix64, Sampler } = env.rnnkit;
    const r = new SplitMix64(1234567);
    equal(r.next(), 6457827717110365317n, "first output (Python's rng.py doctest)");
    equal(r.next(), 3203168211198807973n, "second output");
    const s = new Sampler({ temperature: 1e-300, seed: 0 });
    equal(s.choose([1, 3, 2], s.rng()), 1, "a tiny temperature is greedy");
    equal(new Sampler({ temperature: 0 }).choose([2, 5, 5], null), 1, "greedy ties go to the lowest id");
  });

  t.test("SplitMix64 and Sampler refuse what Python refuses", async (env) => {
    const { SplitMix64, Sampler } = env.rnnkit;
    throws(() => new SplitMix64(-1), "ConfigError", "SplitMix64 seed");
    throws(() => new SplitMix64(1.5), "ConfigError", "SplitMix64 seed");
    throws(() => new SplitMix64("7"), "ConfigError", "SplitMix64 seed");
    throws(() => new SplitMix64(2n ** 64n), "ConfigError", "SplitMix64 seed");
    equal(new SplitMix64(2n ** 64n - 1n).state, 2n ** 64n - 1n, "the largest seed");
    equal(new SplitMix64(7).next(), new SplitMix64(7n).next(), "a number seed is its BigInt");
    equal(new Sampler(null).temperature, 1, "Sampler(null) is Sampler()");
  });

  t.test("generate is an async generator: break and return() end it", async (env) => {
    const { model } = await load(env, "char_lm");
    const it = model.generate("这", { maxTokens: 30, seed: 3 });
    const first = await it.next();
    equal(first.done, false, "a first piece");
    deepEqual(await it.return(undefined), { value: undefined, done: true }, "return() ends it");
    deepEqual(await it.next(), { value: undefined, done: true }, "nothing after return()");
    let n = 0;
    for await (const piece of model.generate("这", { maxTokens: 30, seed: 3 })) {
      equal(typeof piece, "string", "pieces are strings");
      if (++n === 2) break;
    }
    equal(n, 2, "break leaves the loop");
    const pieces = [];
    for await (const piece of model.generate("这", { maxTokens: 5, seed: 3 })) pieces.push(piece);
    equal(pieces[0], first.value, "the same seed gives the same first piece after an early end");
    const defaults = [];
    for await (const piece of model.generate("这", null)) defaults.push(piece);
    ok(defaults.length > 0, "null options are the defaults");
  });

  t.test("bad generate arguments are refused before any piece", async (env) => {
    const { model } = await load(env, "char_lm");
    throws(() => model.generate("x", { temperature: -1 }), "ConfigError", "temperature");
    throws(() => model.generate("x", { temperature: Infinity }), "ConfigError", "temperature");
    throws(() => model.generate("x", { topK: 0 }), "ConfigError", "topK");
    throws(() => model.generate("x", { topP: 1.5 }), "ConfigError", "topP");
    throws(() => model.generate("x", { seed: 2 ** 32 }), "ConfigError", "seed");
    throws(() => model.generate("x", { maxTokens: -1 }), "ConfigError", "maxTokens");
    throws(() => model.generate("x", { stop: [""] }), "ConfigError", "stop");
    throws(() => model.generate(5), "TypeError");
    const nobos = await load(env, "relu_lm_nobos");
    throws(() => nobos.model.generate(""), "InputError", "without <bos>");
  });
}
