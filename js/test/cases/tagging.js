// tag and tagStream: Python's tags, spans and words (slices of the caller's text, code points),
// the stream's hold-back, peek, end(text), joined feeds equal the whole text.
import { deepEqual, equal, throwsAsync } from "../assert.js";
import { chunksOf, load, models, tagResult } from "./core_util.js";

export default function register(t) {
  t.test("tag, tag of many, and tag streams give Python's results", async (env) => {
    for (const [name] of models(env, (g) => g.task === "tag")) {
      const { g, model } = await load(env, name);
      for (const c of g.tag.single) {
        const { text, ...want } = c;
        deepEqual(tagResult(await model.tag(text)), want, `${name}: tag(${JSON.stringify(text)})`);
      }
      const many = await model.tag(g.tag.batch.texts, { batchSize: 2 });
      deepEqual(many.map(tagResult), g.tag.batch.results, `${name}: tag of many`);
      for (const c of g.tag.streams) {
        const ts = model.tagStream();
        for (const f of c.feeds) {
          const r = await ts.feed(f.text);
          deepEqual(tagResult(r), { pairs: f.pairs, spans: f.spans, words: f.words }, `${name}: feed ${JSON.stringify(f.text)}`);
          equal(ts.pending, f.pending, `${name}: pending`);
          deepEqual(tagResult(await ts.peek()), f.peek, `${name}: peek`);
        }
        deepEqual(tagResult(await ts.end()), c.end, `${name}: end of ${JSON.stringify(c.text)}`);
      }
      const ts = model.tagStream();
      await ts.feed(g.tag.endWithText.feed);
      deepEqual(tagResult(await ts.end(g.tag.endWithText.end)), g.tag.endWithText.result, `${name}: end(text)`);
    }
  });

  t.test("joined tag stream pieces equal tag(whole text), astral characters counted as one", async (env) => {
    const { rnnkit } = env;
    for (const [name] of models(env, (g) => g.task === "tag")) {
      const { model } = await load(env, name);
      const text = "我爱😀北京 天安门。Great 𠀋好";
      const whole = tagResult(await model.tag(text));
      for (const size of [1, 2, 5]) {
        const ts = model.tagStream();
        const parts = [];
        for (const piece of chunksOf(text, size)) parts.push(await ts.feed(piece));
        parts.push(await ts.end());
        deepEqual(tagResult(rnnkit.joinTags(parts)), whole, `${name}: chunks of ${size}`);
      }
      const tokens = await model.tag({ tokens: ["我", "爱", "北京"] });
      deepEqual(tokens.spans, [[0, 1], [1, 2], [2, 4]], "tokens= spans");
      await throwsAsync(() => model.tag(" "), "InputError", "no tokens");
      await throwsAsync(() => model.tag({ tokens: [] }), "InputError", "empty");
      await throwsAsync(() => model.tag(), "TypeError", "texts or");
      equal(rnnkit.bmesSpans(["B", "E", "S", "B", "M", "E"]).join(";"), "0,2;2,3;3,6", "bmesSpans");
    }
  });
}
