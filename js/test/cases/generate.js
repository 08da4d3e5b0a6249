// generate: Python's pieces for the same seed (SplitMix64 and the same float64 steps); refusals.
import { deepEqual, equal, throws } from "../assert.js";
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
