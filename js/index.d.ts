// Types of rnnkit's public API (the node, browser and core entries export the same names).

/** Bytes a snapshot key or a model may be given as. */
export type Bytes = Uint8Array | ArrayBuffer;
/** A snapshot signing key: bytes, or a string encoded UTF-8. */
export type Key = Bytes | string;
/** What loadModel reads: bytes, a URL (fetched; in Node a file: URL), a Blob/File, or in Node a path. */
export type ModelSource = Bytes | URL | string | Blob;

export type Task = "lm" | "classify" | "tag";

/** The onnxruntime-common API rnnkit uses (onnxruntime-node and onnxruntime-web both give it). */
export interface Ort {
  InferenceSession: { create(model: Uint8Array, options?: object): Promise<OrtSession> };
  Tensor: new (type: string, data: ArrayLike<number | bigint> | BigInt64Array, dims: readonly number[]) => unknown;
  env?: { wasm?: { wasmPaths?: unknown; numThreads?: number } };
}
export interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: any; dims: readonly number[] }>>;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}
/** A jieba segmenter (jieba-wasm's API). */
export interface Jieba {
  cut(text: string, hmm?: boolean): string[];
}

export interface LoadOptions {
  /** onnxruntime's execution providers: "auto" (default: the CPU / WebAssembly one), a name
   * ("cpu", "wasm", "webgpu", "cuda" = ["cuda", "cpu"]) or a non-empty list of names or provider objects. */
  executionProviders?: "auto" | string | readonly (string | Record<string, unknown>)[] | null;
  /** intra-op threads (default 1; null: onnxruntime's own default). */
  threads?: number | null;
  /** the largest model file read, in bytes. */
  maxBytes?: number;
  /** the most memory one session call may need (default 2 GiB): longer texts go in several calls. */
  maxCallBytes?: number;
  /** onnxruntime to use instead of the entry's own (onnxruntime-node / onnxruntime-web). */
  ort?: Ort;
  /** jieba to use instead of jieba-wasm (or an async function giving one), for jieba word models. */
  jieba?: Jieba | (() => Promise<Jieba>);
  /** jieba's prefix dictionary, read by a jieba word stream's cut (default: the entry's
   * loadJiebaDictionary, rnnkit's src/core/jieba-freq.txt), asked for when a stream first needs it. */
  jiebaDictionary?: JiebaDictionarySource;
  /** called with each warning (default: console.warn); warnings also go to model.warnings. */
  onWarning?: (message: string) => void;
  /** browser entry: where onnxruntime-web's .wasm files are served (sets ort.env.wasm.wasmPaths). */
  wasmPaths?: string | Record<string, string>;
  /** browser entry: the URL of jieba-wasm's .wasm file. */
  jiebaWasm?: string | URL;
}

export declare function loadModel(source: ModelSource, options?: LoadOptions): Promise<Model>;

/** The bytes of a model source (a copy of given bytes), refusing more than maxBytes. */
export declare function readModelBytes(source: ModelSource, options?: {
  maxBytes?: number;
  readFile?: (path: string | URL, maxBytes: number) => Promise<Uint8Array>;
  fetch?: typeof fetch;
}): Promise<Uint8Array>;

/** A model's bytes checked as the Python loader checks them, then its onnxruntime session. */
export declare function openModel(bytes: Uint8Array, options: {
  ort: Ort;
  executionProviders?: LoadOptions["executionProviders"];
  threads?: number | null;
  maxCallBytes?: number;
  name?: string;
  unicodeVersion?: string | null;
  onWarning?: (message: string) => void;
}): Promise<{ spec: ModelSpec; session: OrtSession; identity: string; warnings: string[]; budget: unknown }>;

/** The model's metadata, as checked at load (docs/FORMAT.md). */
export interface ModelSpec {
  readonly format: number;
  readonly task: Task;
  readonly cell: "rnn" | "gru" | "lstm";
  readonly layers: number;
  readonly hidden: number;
  readonly embed: number;
  readonly tokenizer: Readonly<Record<string, unknown>>;
  readonly vocab: readonly string[];
  readonly labels: readonly string[];
  readonly tagScheme: string;
  readonly lookahead: number;
  readonly quantization: Readonly<Record<string, unknown>>;
  readonly provenance: Readonly<Record<string, unknown>>;
  readonly metrics: Readonly<Record<string, unknown>>;
  readonly activation: string;
  readonly bos: boolean;
  readonly eos: boolean;
  readonly unicode: string | null;
  readonly nOut: number;
  readonly nState: number;
  readonly stateNames: readonly (readonly [string, string])[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export interface Token {
  text: string;
  /** [start, end) in code points of the text tokenized. */
  start: number;
  end: number;
}

export type Normalization = "NFKC" | "NFC" | null;
export interface TokenizerOptions {
  normalize?: Normalization;
  lowercase?: boolean;
  keepWhitespace?: boolean;
}
export interface WordTokenizerOptions extends TokenizerOptions {
  hmm?: boolean;
  jiebaVersion?: string | null;
  jieba?: Jieba | null;
  /** what findSplit reads inside a run of Chinese text, loaded by ready(). */
  dictionary?: JiebaDictionarySource | null;
}

/** jieba 0.42.1's prefix dictionary (FREQ, total) and its word graph and route, as Python jieba computes them. */
export declare class JiebaDictionary {
  /** Parse the text of jieba-freq.txt (ConfigError if it is not one). */
  static parse(text: string): JiebaDictionary;
  readonly version: string;
  readonly total: number;
  readonly logTotal: number;
  /** the longest key (16). */
  readonly longest: number;
  /** whether chars[from:to] is a word or a prefix of one. */
  has(chars: readonly string[], from?: number, to?: number): boolean;
  /** Python's math.log(FREQ.get(word) or 1). */
  logFreq(chars: readonly string[], from?: number, to?: number): number;
  /** jieba's get_DAG: the last index of every word starting at each code point. */
  dag(chars: readonly string[]): number[][];
  /** jieba's calc: [score, last index of the best word] at each code point, and [0, 0] at the end. */
  route(chars: readonly string[], dag: readonly (readonly number[])[]): [number, number][];
}
/** A JiebaDictionary, the text of jieba-freq.txt, or a function giving (or resolving to) either. */
export type JiebaDictionarySource = JiebaDictionary | string
  | (() => JiebaDictionary | string | Promise<JiebaDictionary | string>);
/** node and browser entries: their jieba dictionary (Node: read next to the module; browser: fetched from there), parsed once. */
export declare function loadJiebaDictionary(): Promise<JiebaDictionary>;

export interface Tokenizer {
  /** "char" or "word". */
  readonly kind: string;
  /** how a word tokenizer cuts words ("jieba", "whitespace"); null for characters. */
  readonly segmenter: string | null;
  readonly normalize: Normalization;
  readonly lowercase: boolean;
  readonly keepWhitespace: boolean;
  readonly separator: string;
  /** one normalised piece per code point of text. */
  pieces(text: string): string[];
  detokenize(tokens: Iterable<string>): string;
  tokenize(text: string): string[];
  tokenizeSpans(text: string): Token[];
  normalizeToken(token: string): string;
  encode(text: string, vocab: Vocabulary): number[];
  decode(ids: readonly number[], vocab: Vocabulary): string;
  /** How many code points of text tokenize the same whatever follows. */
  splitPoint(text: string): number;
  /** splitPoint(text), and whether that cut holds for any continuation. */
  findSplit(text: string): { readonly index: number; readonly exact: boolean };
  /** null when findSplit can cut now; else a promise that resolves when it can (a jieba word
   * tokenizer loading its dictionary; streams await it). */
  ready(): Promise<void> | null;
  toConfig(): Record<string, unknown>;
  equals(other: unknown): boolean;
}
export declare const CharTokenizer: new (options?: TokenizerOptions) => Tokenizer;
export declare const WhitespaceTokenizer: new (options?: TokenizerOptions) => Tokenizer;
export declare const WordTokenizer: new (options?: WordTokenizerOptions) => Tokenizer & { readonly hmm: boolean; readonly jiebaVersion: string };
export declare function tokenizerFromConfig(config: Record<string, unknown>, options?: { jieba?: Jieba | null;
  jiebaDictionary?: JiebaDictionarySource | null; onWarning?: (message: string) => void }): Tokenizer;

export declare class Vocabulary {
  constructor(tokens: Iterable<string>);
  /** Count tokens; keep those seen minFreq times, at most maxSize in all (the specials included). */
  static build(sequences: Iterable<Iterable<string>>, options?: { minFreq?: number; maxSize?: number | null }): Vocabulary;
  /** The vocabulary of a model's rnnkit.vocab JSON (MetadataError if malformed). */
  static fromJson(text: string): Vocabulary;
  readonly length: number;
  readonly padId: number;
  readonly unkId: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly tokens: string[];
  id(token: string): number;
  token(id: number): string;
  /** the token of an id; negative ids count from the end. */
  at(id: number): string;
  /** whether token is a regular (non-special) token of the vocabulary. */
  has(token: string): boolean;
  toJson(): string;
  /** hex SHA-256 of the canonical JSON (rnnkit.vocab_sha256). */
  checksum(): string;
  equals(other: unknown): boolean;
  encode(tokens: Iterable<string>): number[];
  decode(ids: Iterable<number>): string[];
}

/** The result of model.run: logits (B × T × n_out, flat) and the state after the last token. */
export interface RunResult {
  logits: Float32Array;
  dims: [number, number, number];
  /** one array per state tensor (h, then c for an LSTM), each layers × B × hidden (C order). */
  state: Float32Array[];
}

export interface GenerateOptions {
  /** at most this many tokens (default 100). */
  maxTokens?: number;
  /** 0 is greedy (default 1). */
  temperature?: number;
  topK?: number | null;
  topP?: number | null;
  /** 0 … 2^32 − 1: the same text as Python's generate with that seed. */
  seed?: number | null;
  /** end before the first of these strings. */
  stop?: string | readonly string[] | null;
}

export interface BatchOptions {
  /** texts per session call (default 64). */
  batchSize?: number;
}
export interface TokensOptions<T> extends BatchOptions {
  /** text already cut into tokens, instead of texts. */
  tokens: T;
}
export interface KeyOptions {
  key?: Key | null;
}

export declare class Prediction {
  readonly label: string;
  readonly score: number;
  readonly scores: Readonly<Record<string, number>>;
}

export declare class Model {
  readonly spec: ModelSpec;
  readonly task: Task;
  readonly vocab: Vocabulary;
  readonly vocabSize: number;
  readonly labels: string[];
  readonly tokenizer: Tokenizer;
  /** hex SHA-256 of the file's bytes. */
  readonly identity: string;
  readonly nOut: number;
  readonly warnings: string[];
  readonly session: OrtSession;
  /** how messages name the file (its path, URL or File name). */
  readonly name: string;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  zeroState(batch?: number): Float32Array[];
  startState(batch?: number): Float32Array[];
  startLogits(): Float32Array | null;
  callLength(batch?: number): number;
  /** One session call: ids is B rows of T ids; state defaults to zeros. */
  run(ids: readonly (readonly number[])[], state?: readonly ArrayLike<number>[] | null): Promise<RunResult>;
  stream(options?: KeyOptions): Stream;
  stream(snapshot: Bytes | null, options?: KeyOptions): Stream;
  tagStream(options?: KeyOptions): TagStream;
  tagStream(snapshot: Bytes | null, options?: KeyOptions): TagStream;
  batcher(): StreamBatcher;
  /** An async generator: `break` in a for-await loop, or return(), ends it. */
  generate(prompt?: string, options?: GenerateOptions): AsyncGenerator<string, void, undefined>;
  classify(text: string, options?: BatchOptions): Promise<Prediction>;
  classify(texts: Iterable<string>, options?: BatchOptions): Promise<Prediction[]>;
  classify(options: TokensOptions<readonly string[]>): Promise<Prediction>;
  classify(options: TokensOptions<readonly (readonly string[])[]>): Promise<Prediction[]>;
  prediction(logits: ArrayLike<number>): Prediction;
  tag(text: string, options?: BatchOptions): Promise<TagResult>;
  tag(texts: Iterable<string>, options?: BatchOptions): Promise<TagResult[]>;
  tag(options: TokensOptions<readonly string[]>): Promise<TagResult>;
  tag(options: TokensOptions<readonly (readonly string[])[]>): Promise<TagResult[]>;
}

export declare class Stream {
  readonly model: Model;
  /** ids read since the start. */
  readonly consumed: number;
  /** logits after the last consumed token (null before any, except an lm after <bos>). */
  readonly logits: Float32Array | null;
  /** copies of the state arrays, each layers × 1 × hidden. */
  readonly state: Float32Array[];
  /** text fed but held back (word models). */
  readonly pending: string;
  feed(text: string): Promise<Float32Array | null>;
  step(tokenId: number): Promise<Float32Array>;
  flush(): Promise<Float32Array | null>;
  /** classify models: the running classification (null before any token). */
  prediction(): Prediction | null;
  reset(): void;
  fork(): Stream;
  snapshot(options?: KeyOptions): Uint8Array;
  static restore(model: Model, snapshot: Bytes, options?: KeyOptions): Stream;
}

/** [[token, tag], ...], with each token's span (code points) and a B/M/E/S model's words. */
export declare class TagResult extends Array<[string, string]> {
  constructor(pairs?: [string, string][], spans?: [number, number][], words?: string[] | null);
  spans: [number, number][];
  words: string[] | null;
}

export declare class TagStream {
  readonly model: Model;
  /** the stream holding the recurrent state (read it; do not step it). */
  readonly stream: Stream;
  readonly pending: string;
  feed(text: string): Promise<TagResult>;
  end(text?: string): Promise<TagResult>;
  peek(): Promise<TagResult>;
  reset(): void;
  fork(): TagStream;
  snapshot(options?: KeyOptions): Uint8Array;
  static restore(model: Model, snapshot: Bytes, options?: KeyOptions): TagStream;
}

export declare class StreamBatcher {
  constructor(model: Model);
  readonly model: Model;
  step(streams: Iterable<Stream>, tokenIds: Iterable<number>): Promise<Float32Array[]>;
  feed(streams: Iterable<Stream>, texts: Iterable<string>): Promise<(Float32Array | null)[]>;
  feed(streams: Iterable<TagStream>, texts: Iterable<string>): Promise<TagResult[]>;
  feed(streams: Iterable<Stream | TagStream>, texts: Iterable<string>): Promise<(Float32Array | TagResult | null)[]>;
  flush(streams: Iterable<Stream>): Promise<(Float32Array | null)[]>;
  flush(streams: Iterable<TagStream>): Promise<TagResult[]>;
  flush(streams: Iterable<Stream | TagStream>): Promise<(Float32Array | TagResult | null)[]>;
}

export declare class Sampler {
  constructor(options?: { temperature?: number; topK?: number | null; topP?: number | null; seed?: number | null } | null);
  readonly temperature: number;
  readonly topK: number | null;
  readonly topP: number | null;
  readonly seed: number | null;
  rng(): SplitMix64;
  choose(logits: ArrayLike<number>, rng: { uniform(): number }, banned?: readonly number[]): number;
}
export declare class StopMatcher {
  constructor(stop?: string | readonly string[] | null);
  readonly stopped: boolean;
  push(piece: string): string;
  flush(): string;
}
export declare class SplitMix64 {
  /** seed: an integer 0 … 2^64 − 1 (ConfigError otherwise). */
  constructor(seed: number | bigint);
  state: bigint;
  next(): bigint;
  uniform(): number;
}

export declare function bmesSpans(tags: readonly string[]): [number, number][];
export declare function bmesWords(chars: readonly string[], tags: readonly string[]): string[];
export declare function joinTags(parts: readonly TagResult[]): TagResult;
export declare function needsJieba(config: Record<string, unknown>): boolean;

export declare const MAX_SEED: number;
export declare const CALL_STEPS: number;
export declare const FEED_CHARS: number;
export declare const SNAPSHOT_VERSION: number;
export declare const SIGNED: number;
export declare const KINDS: Readonly<Record<"stream" | "tag", string>>;
export declare const UNICODE_VERSION: string;

export declare class RnnkitError extends Error {}
export declare class ConfigError extends RnnkitError {}
export declare class MissingDependencyError extends RnnkitError {}
export declare class ModelFileError extends RnnkitError {}
export declare class ModelNotFoundError extends ModelFileError {}
export declare class MetadataError extends RnnkitError {
  constructor(message: string, key?: string | null, options?: ErrorOptions);
  readonly key: string | null;
}
export declare class FormatVersionError extends MetadataError {}
export declare class ProviderError extends RnnkitError {}
export declare class InputError extends RnnkitError {}
export declare class BudgetError extends InputError {
  constructor(message: string, needed?: number, allowed?: number, options?: ErrorOptions);
  readonly needed: number;
  readonly allowed: number;
}
export declare class NonFiniteError extends RnnkitError {}
export declare class TaskError extends RnnkitError {}
export declare class StateError extends RnnkitError {}
export declare function printable(text: string): string;
