// The browser side of js/test/browser/run.js: loads src/browser.js and the case files, runs
// their tests one at a time with env.kind "browser", and reports each result to Node through
// the functions run.js exposes (window.rnnkitReport, window.rnnkitWriteOut).
import { collect, DEFAULT_TIMEOUT_MS, HELPER, makeTolerance, skipReason } from "../harness.js";

const GOLDENS = new URL("../goldens/", import.meta.url);

function describeError(e) {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack ?? "" };
  return { name: typeof e, message: String(e), stack: "" };
}

function goldenUrl(rel) {
  const url = new URL(rel, GOLDENS);
  if (!url.href.startsWith(GOLDENS.href)) throw new Error(`${rel} is outside the goldens folder`);
  return url;
}

async function fetchOk(url) {
  const res = await fetch(url, { cache: "no-store" });
  if (!res.ok) throw new Error(`GET ${url.pathname}: ${res.status}`);
  return res;
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function report(result) {
  if (typeof window.rnnkitReport === "function") await window.rnnkitReport(result);
}

// casesBase: the URL folder of the case files; files: their names. Returns { passed, failed, skipped }.
async function run(casesBase, files) {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const fail = async (name, e) => {
    counts.failed += 1;
    await report({ file: "(setup)", name, status: "fail", ms: 0, error: describeError(e) });
  };
  let rnnkit = null;
  try {
    rnnkit = await import("../../src/browser.js");
  } catch (e) {
    await fail("import src/browser.js", e);
  }
  let goldens = null;
  try {
    goldens = await (await fetchOk(goldenUrl("goldens.json"))).json();
  } catch (e) {
    await fail("goldens (run .venv/bin/python js/tools/goldens.py --out js/test/goldens)", e);
  }
  const env = Object.freeze({
    kind: "browser",
    rnnkit,
    loadModel: rnnkit && rnnkit.loadModel
      ? (...args) => rnnkit.loadModel(...args)
      : async () => { throw new Error("src/browser.js did not load (see the 'import src/browser.js' failure)"); },
    goldens,
    tolerance: makeTolerance("browser", goldens),
    async fetchBytes(rel) {
      return new Uint8Array(await (await fetchOk(goldenUrl(rel))).arrayBuffer());
    },
    async fetchText(rel) {
      return (await fetchOk(goldenUrl(rel))).text();
    },
    // Written by run.js to js/test/out/browser/<rel>.
    async writeOut(rel, text) {
      if (typeof window.rnnkitWriteOut !== "function") throw new Error("writeOut needs run.js");
      await window.rnnkitWriteOut(rel, String(text));
    },
  });
  for (const file of files) {
    let tests;
    try {
      tests = collect(await import(new URL(file, casesBase).href), file);
    } catch (e) {
      await fail(`${file} (loading)`, e);
      continue;
    }
    if (tests === null) {
      await report({ file, name: "(helper)", status: "note", ms: 0, reason: HELPER });
      continue;
    }
    for (const { name, fn, options } of tests) {
      const skip = skipReason(options, "browser");
      if (skip) {
        counts.skipped += 1;
        await report({ file, name, status: "skip", ms: 0, reason: skip });
        continue;
      }
      const started = performance.now();
      try {
        await withTimeout(Promise.resolve().then(() => fn(env)), options.timeout ?? globalThis.rnnkitDefaultTimeout ?? DEFAULT_TIMEOUT_MS, name);
        counts.passed += 1;
        await report({ file, name, status: "pass", ms: performance.now() - started });
      } catch (e) {
        counts.failed += 1;
        await report({ file, name, status: "fail", ms: performance.now() - started, error: describeError(e) });
      }
    }
  }
  return counts;
}

window.rnnkitTests = { run };
window.rnnkitReady = true;
