// Runs the shared case files (js/test/cases/*.js) in headless Chromium, with env.kind "browser".
//
//   node test/browser/run.js [NAME...] [--timeout MS] [--verbose]      (from js/)
//
// NAME: case files to run (smoke, model, …; default all; RNNKIT_CASES=a,b works too).
// RNNKIT_CASES_DIR=DIR runs the case files of another folder (served under /__cases__/).
// Serves the repository root (js/tools/serve.js), opens js/test/browser/index.html, prints a line
// per test and exits 1 when a test failed, none ran, or the page broke; --timeout is each test's
// default limit, and the whole run has RNNKIT_BROWSER_TIMEOUT_MS (default 15 minutes).
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

import { serve, REPO_ROOT } from "../../tools/serve.js";
import { launchChromium } from "./chromium.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const TEST_DIR = resolve(HERE, "..");
const OUT_DIR = join(TEST_DIR, "out", "browser");

function parseArgs(argv) {
  const opts = { names: [], verbose: false, timeout: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--verbose" || a === "-v") opts.verbose = true;
    else if (a === "--timeout") opts.timeout = Number(argv[++i]);
    else if (a.startsWith("--")) throw new Error(`unknown option ${a}`);
    else opts.names.push(a.replace(/\.js$/, ""));
  }
  if (process.env.RNNKIT_CASES) opts.names.push(...process.env.RNNKIT_CASES.split(",").map((s) => s.trim()));
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const casesDir = process.env.RNNKIT_CASES_DIR ? resolve(process.env.RNNKIT_CASES_DIR) : join(TEST_DIR, "cases");
  const wanted = opts.names.length ? new Set(opts.names) : null;
  const files = readdirSync(casesDir).filter((f) => f.endsWith(".js")).sort()
    .filter((f) => !wanted || wanted.has(f.replace(/\.js$/, "")));
  if (files.length === 0) {
    console.error(`no case files to run in ${casesDir}${wanted ? ` matching ${[...wanted].join(", ")}` : ""}`);
    return 1;
  }
  const mounts = process.env.RNNKIT_CASES_DIR ? { "/__cases__/": casesDir } : {};
  const started = performance.now();
  const server = await serve({ root: REPO_ROOT, mounts });
  let browser;
  const counts = { pass: 0, fail: 0, skip: 0 };
  const failures = [];
  let broken = null;
  try {
    browser = await launchChromium();
    const page = await browser.newPage();
    page.on("console", (msg) => {
      if (opts.verbose || msg.type() === "error") console.error(`[browser ${msg.type()}] ${msg.text()}`);
    });
    page.on("pageerror", (e) => console.error(`[browser pageerror] ${e.message}`));
    const crashed = new Promise((_, fail) => page.on("crash", () => fail(new Error("the page crashed"))));
    await page.exposeFunction("rnnkitReport", (r) => {
      const where = `${r.file} › ${r.name}`;
      if (r.status === "note") {
        console.log(`note ${r.file}: ${r.reason}`);
        return;
      }
      counts[r.status] += 1;
      if (r.status === "pass") console.log(`ok   ${where} (${Math.round(r.ms)} ms)`);
      else if (r.status === "skip") console.log(`skip ${where} (${r.reason})`);
      else {
        console.log(`FAIL ${where} (${Math.round(r.ms)} ms)\n     ${r.error.name}: ${r.error.message}`);
        if (opts.verbose && r.error.stack) console.log(r.error.stack.replace(/^/gm, "       "));
        failures.push(where);
      }
    });
    await page.exposeFunction("rnnkitWriteOut", (rel, text) => {
      const path = resolve(OUT_DIR, rel);
      if (!path.startsWith(OUT_DIR + sep)) throw new Error(`${rel} is outside ${OUT_DIR}`);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    });
    await page.goto(`${server.url}js/test/browser/index.html`);
    await page.waitForFunction(() => window.rnnkitReady === true, null, { timeout: 60_000 });
    const casesBase = process.env.RNNKIT_CASES_DIR ? `${server.url}__cases__/` : `${server.url}js/test/cases/`;
    if (opts.timeout !== undefined) {
      await page.evaluate((ms) => { globalThis.rnnkitDefaultTimeout = ms; }, opts.timeout);
    }
    const total = Number(process.env.RNNKIT_BROWSER_TIMEOUT_MS ?? 15 * 60_000);
    let timer;
    const overall = new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`the browser run took more than ${total} ms`)), total);
    });
    try {
      await Promise.race([page.evaluate(([base, names]) => window.rnnkitTests.run(base, names), [casesBase, files]),
        crashed, overall]);
    } finally {
      clearTimeout(timer);
    }
  } catch (e) {
    broken = e;
  } finally {
    if (browser) await browser.close().catch(() => {});
    await server.close();
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(`\nbrowser: ${counts.pass} passed, ${counts.fail} failed, ${counts.skip} skipped in ${seconds}s `
    + `(${files.length} case files)`);
  if (broken) {
    console.error(`browser run broke: ${broken.message}`);
    return 1;
  }
  if (failures.length) {
    console.log(`failed:\n  ${failures.join("\n  ")}`);
    return 1;
  }
  if (counts.pass === 0) {
    console.error("no test ran");
    return 1;
  }
  return 0;
}

process.exitCode = await main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  return 1;
});
