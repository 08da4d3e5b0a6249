// Runs every shared case file (js/test/cases/*.js) under node:test, with env.kind "node".
//
//   node --test test/node/                     (from js/)
//   RNNKIT_CASES=smoke,model node --test test/node/cases.test.js   only those case files
//   RNNKIT_CASES_DIR=/some/dir …                                  case files from elsewhere
//   RNNKIT_TIMEOUT_MS=N                                           each test's default time limit (60 s)
import { readdirSync, readFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, it, test } from "node:test";

import { collect, DEFAULT_TIMEOUT_MS, HELPER, makeTolerance, skipReason } from "../harness.js";

const TEST_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CASES_DIR = process.env.RNNKIT_CASES_DIR ? resolve(process.env.RNNKIT_CASES_DIR) : join(TEST_DIR, "cases");
const GOLDENS_DIR = join(TEST_DIR, "goldens");
const OUT_DIR = join(TEST_DIR, "out");

function inside(base, rel) {
  const path = resolve(base, rel);
  if (!path.startsWith(base + sep)) throw new Error(`${rel} is outside ${base}`);
  return path;
}

const problems = []; // set-up failures, each reported as a failing test
let rnnkit = null;
try {
  rnnkit = await import("../../src/node.js");
} catch (e) {
  problems.push(["import src/node.js", e]);
}
let goldens = null;
const goldensFile = join(GOLDENS_DIR, "goldens.json");
if (existsSync(goldensFile)) {
  goldens = JSON.parse(readFileSync(goldensFile, "utf8"));
} else {
  problems.push(["goldens", new Error(`${goldensFile} is missing: run .venv/bin/python js/tools/goldens.py --out `
    + "js/test/goldens from the repository root")]);
}

const env = Object.freeze({
  kind: "node",
  rnnkit,
  loadModel: rnnkit && rnnkit.loadModel
    ? (...args) => rnnkit.loadModel(...args)
    : async () => { throw new Error("src/node.js did not load (see the 'import src/node.js' failure)"); },
  goldens,
  tolerance: makeTolerance("node", goldens),
  async fetchBytes(rel) {
    return new Uint8Array(readFileSync(inside(GOLDENS_DIR, rel)));
  },
  async fetchText(rel) {
    return readFileSync(inside(GOLDENS_DIR, rel), "utf8");
  },
  // Writes js/test/out/<rel> (the browser run writes js/test/out/browser/<rel>).
  async writeOut(rel, text) {
    const path = inside(OUT_DIR, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  },
});

for (const [name, err] of problems) {
  test(name, () => { throw err; });
}

const wanted = process.env.RNNKIT_CASES ? new Set(process.env.RNNKIT_CASES.split(",").map((s) => s.trim())) : null;
const files = readdirSync(CASES_DIR).filter((f) => f.endsWith(".js")).sort()
  .filter((f) => !wanted || wanted.has(f.replace(/\.js$/, "")));
if (files.length === 0) test("case files", () => { throw new Error(`no case files in ${CASES_DIR}`); });

for (const file of files) {
  let tests;
  try {
    tests = collect(await import(pathToFileURL(join(CASES_DIR, file)).href), file);
  } catch (e) {
    test(`${file} (loading)`, () => { throw e; });
    continue;
  }
  if (tests === null) {
    test(file, { skip: HELPER }, () => {});
    continue;
  }
  describe(file, () => {
    for (const { name, fn, options } of tests) {
      const skip = skipReason(options, "node");
      it(name, { skip, timeout: options.timeout ?? (Number(process.env.RNNKIT_TIMEOUT_MS) || DEFAULT_TIMEOUT_MS) }, () => fn(env));
    }
  });
}
