// Uses the public API as an application would: `npx tsc -p test/types` checks index.d.ts.
import {
  loadModel, ConfigError, StateError, SplitMix64, Sampler, StopMatcher, TagResult, type Model, type Prediction,
  JiebaDictionary, loadJiebaDictionary,
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
  const dict: JiebaDictionary = await loadJiebaDictionary();
  const route: [number, number][] = dict.route(["北", "京"], dict.dag(["北", "京"]));
  const loading: Promise<void> | null = model.tokenizer.ready();
  await loadModel(bytes, { jiebaDictionary: async () => dict });
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

// What the README shows, and the ways of loading a model.
import * as ortWeb from "onnxruntime-web";
import {
  BudgetError, MetadataError, RnnkitError, Stream, TagStream, Vocabulary, CharTokenizer, WordTokenizer,
  WhitespaceTokenizer, tokenizerFromConfig, readModelBytes, openModel, bmesWords, type GenerateOptions,
  type LoadOptions, type ModelSpec, type Tokenizer,
} from "rnnkit";

async function loading(bytes: Uint8Array, file: File, blob: Blob): Promise<void> {
  const options: LoadOptions = { executionProviders: ["wasm"], threads: null, maxBytes: 1 << 26, ort: ortWeb,
    onWarning: (m: string) => console.log(m) };
  const fromUrl: Model = await loadModel(new URL("https://example.org/m.onnx"), options);
  const fromString = await loadModel("/models/m.onnx", { executionProviders: "wasm" });
  const fromBuffer = await loadModel(bytes.buffer as ArrayBuffer, { executionProviders: "auto" });
  const fromFile = await loadModel(file, { wasmPaths: "/ort/", jiebaWasm: new URL("/jieba.wasm", "https://x.org") });
  const fromBlob = await loadModel(blob, { jieba: { cut: (t: string, hmm?: boolean) => [t] } });
  const withAsyncJieba = await loadModel(bytes, { jieba: async () => ({ cut: (t: string) => [t] }) });
  const raw: Uint8Array = await readModelBytes(file, { maxBytes: 1 << 20 });
  const opened = await openModel(raw, { ort: ortWeb, threads: 1 });
  const spec: ModelSpec = opened.spec;
  const identity: string = opened.identity;
  const warnings: string[] = opened.warnings;
  console.log(fromUrl.task, fromString.spec.task, fromBuffer.nOut, fromFile.labels, fromBlob.vocabSize,
    withAsyncJieba.warnings, spec.tagScheme, identity, warnings, opened.session.inputNames);
}

async function using(model: Model, key: Uint8Array): Promise<void> {
  const options: GenerateOptions = { maxTokens: 20, temperature: 0, topK: null, topP: null, seed: null, stop: null };
  const it = model.generate("", options);
  const first = await it.next();
  if (!first.done) console.log(first.value.length);
  await it.return(undefined); // an early end cleans up
  let text = "";
  for await (const piece of model.generate("这本书", { stop: "。" })) {
    text += piece;
    if (text.length > 10) break;
  }
  const s: Stream = model.stream(null, { key });
  const snap: Uint8Array = s.snapshot({ key: "another key" });
  const again: Stream = model.stream(snap.buffer as ArrayBuffer, { key: "another key" });
  const restored: Stream = Stream.restore(model, snap, { key: "another key" });
  const consumed: number = again.consumed + restored.consumed;
  const logits: Float32Array | null = again.logits;
  const ts: TagStream = model.tagStream(null, { key });
  const tsSnap: Uint8Array = ts.snapshot();
  const tsBack: TagStream = model.tagStream(tsSnap, { key });
  const tsPending: string = tsBack.pending;
  const tagged = await model.tag(["我爱北京", "天安门"], { batchSize: 2 });
  const words: (string[] | null)[] = tagged.map((r) => r.words);
  const preds = await model.classify(new Set(["好", "差"]));
  const labels: string[] = preds.map((p) => p.label);
  const one = await model.classify({ tokens: ["这本书", "很", "好看"] });
  const mixed = await model.batcher().feed([s, ts], ["好", "看"]);
  try {
    await model.classify("");
  } catch (e) {
    if (e instanceof MetadataError) console.log(e.key);
    else if (e instanceof BudgetError) console.log(e.needed, e.allowed);
    else if (e instanceof RnnkitError) console.log(e.name, e.message);
  }
  const cut: string[] = bmesWords(["我", "爱"], ["B", "E"]);
  console.log(consumed, logits, tsPending, words, labels, one.score, mixed, cut, model.toString());
}

function tokenizing(): void {
  const v = Vocabulary.build([["a", "b", "a"]], { minFreq: 1, maxSize: null });
  const ids: number[] = v.encode(["a", "z"]);
  const back: string[] = v.decode(ids);
  const has: boolean = v.has("a");
  const sum: string = v.checksum();
  const json: string = v.toJson();
  const v2: Vocabulary = Vocabulary.fromJson(json);
  const t1: Tokenizer = new CharTokenizer({ normalize: "NFKC", lowercase: true });
  const t2: Tokenizer = new WhitespaceTokenizer({ keepWhitespace: false });
  const t3: Tokenizer = new WordTokenizer({ hmm: false, jieba: { cut: (x: string) => [x] } });
  const t4: Tokenizer = tokenizerFromConfig(t1.toConfig(), { jieba: null });
  const split: { index: number; exact: boolean } = t3.findSplit("我爱");
  const pieces: string[] = t1.pieces("ＡＢ");
  console.log(back, has, sum, v2.equals(v), t2.separator, t4.kind, split, pieces, t1.detokenize(["a"]), t1.segmenter);
}

void loading;
void using;
void tokenizing;
