// Uses the public API as an application would: `npx tsc -p test/types` checks index.d.ts.
import {
  loadModel, ConfigError, StateError, SplitMix64, Sampler, StopMatcher, TagResult, type Model, type Prediction,
} from "rnnkit";

async function main(bytes: Uint8Array): Promise<void> {
  const model: Model = await loadModel(bytes, { threads: 1, maxCallBytes: 1 << 30, onWarning: (m) => console.log(m) });
  const ids: number[] = model.encode("这本书");
  const text: string = model.decode(ids);
  const out = await model.run([ids], model.startState(1));
  const logits: Float32Array = out.logits;
  const [b, t, n] = out.dims;
  const s = model.stream({ key: "secret" });
  const fed: Float32Array | null = await s.feed(text);
  const stepped: Float32Array = await s.step(4);
  await s.flush();
  const snap: Uint8Array = s.snapshot();
  const back = model.stream(snap, { key: "secret" });
  const twin = back.fork();
  twin.reset();
  const pending: string = twin.pending;
  const p: Prediction | null = model.task === "classify" ? s.prediction() : null;
  for await (const piece of model.generate("这", { maxTokens: 5, temperature: 0.8, topK: 10, topP: 0.9, seed: 1, stop: ["。"] })) {
    const x: string = piece;
  }
  const one: Prediction = await model.classify("好");
  const many: Prediction[] = await model.classify(["好", "差"], { batchSize: 8 });
  const r: TagResult = await model.tag("我爱北京");
  const words: string[] | null = r.words;
  const spans: [number, number][] = r.spans;
  const pair: [string, string] = r[0];
  const pre: TagResult[] = await model.tag({ tokens: [["我", "爱"]] });
  const ts = model.tagStream();
  const settled: TagResult = await ts.feed("我爱");
  const peeked: TagResult = await ts.peek();
  const ended: TagResult = await ts.end("北京");
  const batcher = model.batcher();
  const stepAll: Float32Array[] = await batcher.step([s, twin], [4, 5]);
  const tagAll: TagResult[] = await batcher.feed([ts], ["北京"]);
  await batcher.flush([s]);
  const rng = new SplitMix64(1);
  const u: number = rng.uniform();
  const big: bigint = rng.next();
  const choice: number = new Sampler({ temperature: 0 }).choose(logits, rng, [0, 1]);
  const stop = new StopMatcher("。");
  const emitted: string = stop.push("好。");
  try {
    model.stream(new Uint8Array(3));
  } catch (e) {
    if (e instanceof StateError || e instanceof ConfigError) console.log(e.name, e.message);
  }
  console.log(b, t, n, fed, stepped, pending, p, one, many, words, spans, pair, pre, settled, peeked, ended,
    stepAll, tagAll, u, big, choice, emitted, model.identity, model.spec.hidden, model.warnings.length);
}

void main;
