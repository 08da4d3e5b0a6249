// StreamBatcher: Python's answers, and each stream's answer independent of its neighbours.
import { close, deepEqual, throws, throwsAsync } from "../assert.js";
import { load, models, split, tagResult } from "./core_util.js";

export default function register(t) {
  t.test("feed, flush and step give Python's answers", async (env) => {
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      const c = g.batcher, b = model.batcher();
      if (model.task === "tag") {
        const streams = c.texts.map(() => model.tagStream());
        deepEqual((await b.feed(streams, c.texts)).map(tagResult), c.feed, `${name}: feed`);
        deepEqual((await b.flush(streams)).map(tagResult), c.flush, `${name}: flush`);
        continue;
      }
      const streams = c.texts.map(() => model.stream());
      const fed = await b.feed(streams, c.texts);
      fed.forEach((x, i) => (c.feed[i] === null ? deepEqual(x, null) : close(x, c.feed[i], tol, `${name}: feed ${i}`)));
      deepEqual(streams.map((s) => s.pending), c.pending, `${name}: pending`);
      (await b.flush(streams)).forEach((x, i) => close(x, c.flush[i], tol, `${name}: flush ${i}`));
      for (let k = 0; k < c.stepIds.length; k++) {
        const got = await b.step(streams, c.stepIds[k]);
        close(got, split(Float32Array.from(c.steps[k]), streams.length), tol, `${name}: step ${k}`);
      }
      streams.forEach((s, i) => close(s.state, c.states[i].values.map((v) => Float32Array.from(v)), tol, `${name}: state ${i}`));
    }
  });

  t.test("a stream's answer does not depend on its batch neighbours", async (env) => {
    for (const [name] of models(env, (g) => g.tolerance === "fp32")) {
      const { g, model, tol } = await load(env, name);
      const texts = g.batcher.texts;
      const alone = [];
      for (const text of texts) {
        const s = model.stream();
        await s.feed(text);
        alone.push(await s.flush());
      }
      for (const order of [[0, 1, 2], [2, 0], [1]]) {
        const streams = order.map(() => model.stream());
        await model.batcher().feed(streams, order.map((i) => texts[i]));
        const got = await model.batcher().flush(streams);
        order.forEach((i, row) => close(got[row], alone[i], tol, `${name}: text ${i} among ${order}`));
      }
    }
  });

  t.test("bad batches are refused", async (env) => {
    const { model } = await load(env, "char_lm");
    const other = await load(env, "ws_lm");
    const b = model.batcher(), s = model.stream();
    throws(() => b.step([s, s], [4, 4]), "InputError", "twice");
    throws(() => b.step([s], [4, 5]), "InputError", "token ids");
    throws(() => b.step([other.model.stream()], [4]), "StateError", "batcher's model");
    throws(() => b.feed([s], ["a", "b"]), "InputError", "texts");
    await throwsAsync(() => b.step([s, model.stream()], [4, model.vocabSize]), "InputError", "outside");
  });
}
