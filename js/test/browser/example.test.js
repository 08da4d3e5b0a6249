// The example page (examples/web/) in headless Chromium: choose the golden models, type Chinese
// text, and check what the page shows against what the Python runtime answers for the same files.
//
//   node js/test/browser/example.test.js        (needs js/test/goldens: .venv/bin/python js/tools/goldens.py)
//
// Exits 0 with one "ok" line, or 1 with one line saying what failed. Saves js/test/out/example.png.

import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { serve } from "../../tools/serve.js";
import { launchChromium } from "./chromium.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const JS = resolve(HERE, "../..");
const REPO = resolve(JS, "..");
const GOLDENS = join(JS, "test/goldens");
const SCREENSHOT = join(JS, "test/out/example.png");
const PYTHON = process.env.RNNKIT_PYTHON || join(REPO, ".venv/bin/python");
const MODELS = { tag: "bmes_tag", classify: "word_classify", lm: "char_lm" }; // page slot → golden model
const TEXT = "这本书很好看，我喜欢。";
const GENERATE = { temperature: 0.8, seed: 42, maxTokens: 20 };
const BROWSER_TOLERANCE = 1e-4; // onnxruntime-web's WebAssembly kernels against Python's onnxruntime
const WAIT_MS = 60_000;

class Failure extends Error {}

function check(ok, what) {
  if (!ok) throw new Failure(what);
}

/** What the Python runtime answers on the same files (computed now: the generator may change). */
async function pythonAnswers(paths, badFile) {
  const script = `
import json, sys
from rnnkit.runtime import RnnkitError, load_model
a = json.loads(sys.argv[1])
tag = load_model(a["tag"], providers="cpu", threads=1)
cls = load_model(a["classify"], providers="cpu", threads=1)
lm = load_model(a["lm"], providers="cpu", threads=1)
p = cls.classify(a["text"])
g = a["generate"]
out = {"words": tag.tag(a["text"]).words, "labels": cls.labels, "label": p.label, "score": p.score,
       "generated": "".join(lm.generate(a["text"], max_tokens=g["maxTokens"], temperature=g["temperature"],
                                        seed=g["seed"]))}
try:
    load_model(a["bad"])
    out["badError"] = None
except RnnkitError as e:
    out["badError"] = type(e).__name__
print(json.dumps(out, ensure_ascii=False))
`;
  const arg = JSON.stringify({ ...paths, text: TEXT, generate: GENERATE, bad: badFile });
  try {
    const { stdout } = await promisify(execFile)(PYTHON, ["-c", script, arg], { cwd: REPO, maxBuffer: 1 << 24 });
    return JSON.parse(stdout);
  } catch (err) {
    const why = (err.stderr || err.message || "").trim().split("\n").pop();
    throw new Failure(`the Python runtime could not answer (${PYTHON}): ${why}`);
  }
}

async function goldenPaths() {
  let goldens;
  try {
    goldens = JSON.parse(await readFile(join(GOLDENS, "goldens.json"), "utf8"));
  } catch {
    throw new Failure(`no ${join(GOLDENS, "goldens.json")}: run .venv/bin/python js/tools/goldens.py --out js/test/goldens`);
  }
  const paths = {};
  for (const [slot, name] of Object.entries(MODELS)) {
    const entry = goldens.models && goldens.models[name];
    check(entry, `goldens.json has no model ${name}: rerun js/tools/goldens.py`);
    paths[slot] = join(GOLDENS, entry.file);
  }
  return paths;
}

const problems = { foreign: [], wasm: [], errors: [] }; // requests to other origins, .wasm requests, errors

const waitFor = (page, fn, arg, what) =>
  page.waitForFunction(fn, arg, { timeout: WAIT_MS }).catch(() => {
    const seen = problems.errors.length ? ` (the page logged: ${problems.errors[0]})` : "";
    throw new Failure(`timed out waiting for ${what}${seen}`);
  });

async function statusOf(page, slot, states, what) {
  await waitFor(page, ([id, wanted]) => wanted.includes(document.getElementById(id).dataset.state),
    [`${slot}-status`, states], what);
  return page.locator(`#${slot}-status`).evaluate((el) => ({ state: el.dataset.state, text: el.textContent }));
}

async function run(page, server, expected) {
  const origin = new URL(server.url).origin;
  await page.goto(new URL("examples/web/index.html", server.url).href);
  await waitFor(page, () => document.body.dataset.ready === "true" || !document.getElementById("page-error").hidden,
    undefined, "the page to start");
  const pageError = await page.locator("#page-error").textContent();
  check(!pageError, `the page did not start: ${pageError}`);

  // A file that is not a model: one readable line, the same error class as Python's.
  await page.setInputFiles("#lm-file", { name: "broken.onnx", mimeType: "application/octet-stream",
    buffer: Buffer.from("this is not an onnx file") });
  const broken = await statusOf(page, "lm", ["error", "ready"], "the broken file's error line");
  check(broken.state === "error", `a file that is not a model loaded: ${broken.text}`);
  check(broken.text.startsWith(`${expected.badError}: `) && !broken.text.includes("\n"),
    `the broken file's line should be one line starting "${expected.badError}: ", got ${JSON.stringify(broken.text)}`);

  for (const slot of Object.keys(MODELS)) await page.setInputFiles(`#${slot}-file`, expected.paths[slot]);
  for (const slot of Object.keys(MODELS)) {
    const status = await statusOf(page, slot, ["ready", "error"], `the ${slot} model to load`);
    check(status.state === "ready", `the ${slot} model (${MODELS[slot]}) did not load: ${status.text}`);
  }

  await page.locator("#text").click();
  await page.keyboard.type(TEXT, { delay: 15 });
  await waitFor(page, (t) => document.getElementById("words").dataset.text === t
    && document.getElementById("sentiment").dataset.text === t, TEXT, "words and sentiment for the typed text");

  const wordsError = await page.locator("#words-error").textContent();
  check(!wordsError, `segmentation failed: ${wordsError}`);
  const words = await page.locator("#words li").allTextContents();
  check(JSON.stringify(words) === JSON.stringify(expected.words),
    `words ${JSON.stringify(words)} differ from Python's ${JSON.stringify(expected.words)}`);

  const sentimentError = await page.locator("#sentiment-error").textContent();
  check(!sentimentError, `sentiment failed: ${sentimentError}`);
  const label = await page.locator("#sentiment-label").textContent();
  const score = Number(await page.locator("#sentiment-score").getAttribute("data-score"));
  check(expected.labels.includes(label), `sentiment label ${JSON.stringify(label)} is not one of ${expected.labels}`);
  check(score >= 0 && score <= 1, `sentiment score ${score} is not in [0, 1]`);
  check(label === expected.label && Math.abs(score - expected.score) <= BROWSER_TOLERANCE,
    `sentiment ${label} ${score} differs from Python's ${expected.label} ${expected.score}`);

  await page.fill("#temperature", String(GENERATE.temperature));
  await page.fill("#seed", String(GENERATE.seed));
  await page.fill("#max-tokens", String(GENERATE.maxTokens));
  await page.click("#generate");
  await waitFor(page, () => ["done", "error"].includes(document.getElementById("generated").dataset.state),
    undefined, "generation to finish");
  const generateError = await page.locator("#generate-error").textContent();
  check(!generateError, `generation failed: ${generateError}`);
  const generated = await page.locator("#generated").textContent();
  check(generated.length > 0 || expected.generated.length === 0, "no generated text appeared");
  check(generated === expected.generated,
    `generated ${JSON.stringify(generated)} differs from Python's ${JSON.stringify(expected.generated)} ` +
    `(seed ${GENERATE.seed}, temperature ${GENERATE.temperature})`);

  check(problems.foreign.length === 0, `the page asked another origin than ${origin}: ${problems.foreign[0]}`);
  check(problems.errors.length === 0, `the page logged an error: ${problems.errors[0]}`);
  check(problems.wasm.length > 0, "no .wasm file was fetched from the page's origin (is the request check blind?)");
  return { words, label, score, generated, wasm: problems.wasm.map((u) => new URL(u).pathname.split("/").pop()) };
}

async function main() {
  const paths = await goldenPaths();
  const scratch = await mkdtemp(join(tmpdir(), "rnnkit-example-"));
  try {
    const badFile = join(scratch, "broken.onnx");
    await writeFile(badFile, "this is not an onnx file");
    const expected = { paths, ...(await pythonAnswers(paths, badFile)) };
    check(expected.words, "the golden tag model gives no words (not a B/M/E/S model?)");
    await inChromium(expected);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function inChromium(expected) {
  const server = await serve({ root: REPO });
  let browser;
  try {
    browser = await launchChromium(); // headless, HARNESS's flags, a fresh profile under os.tmpdir()
    const { context } = browser;
    const origin = new URL(server.url).origin;
    context.on("request", (request) => {
      const url = request.url();
      const local = url.startsWith("data:") || url.startsWith("blob:") || new URL(url).origin === origin;
      if (!local) problems.foreign.push(url);
      else if (url.split("?")[0].endsWith(".wasm")) problems.wasm.push(url);
    });
    const page = context.pages()[0] ?? (await browser.newPage());
    page.on("pageerror", (err) => problems.errors.push(`${err.name}: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.errors.push(`${msg.text()} [${msg.location().url}]`);
    });
    try {
      const seen = await run(page, server, expected);
      console.log(`example.test: ok — words ${seen.words.join("/")}; ${seen.label} ${seen.score.toFixed(4)}; ` +
        `generated ${JSON.stringify(seen.generated)}; wasm from the page's origin: ${seen.wasm.join(", ")}; ` +
        `screenshot ${SCREENSHOT}`);
    } finally {
      await mkdir(dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});
    }
  } finally {
    await browser?.close().catch(() => {});
    await server.close();
  }
}

main().catch((err) => {
  const line = err instanceof Failure ? err.message : `${err.name}: ${err.message}`;
  console.error(`example.test: FAIL ${line.split("\n")[0]}`);
  process.exit(1);
});
