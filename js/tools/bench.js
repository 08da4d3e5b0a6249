// `make bench`, P9: a model's Stream.step time in Node (onnxruntime-node) or in headless Chromium
// (onnxruntime-web, WebAssembly, one thread), against a bare session.run in the same place.
//
//   node js/tools/bench.js --model M.onnx --ids ids.json [--repeats 5] [--browser]
//
// Prints one JSON line: {rnnkit_us, spread_us, bare_ort_us, vs_bare_ort, steps, where}.
import { readFile, mkdtemp, copyFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { timeSteps } from "./bench-steps.js";

const { values } = parseArgs({ options: {
  model: { type: "string" }, ids: { type: "string" }, repeats: { type: "string", default: "5" },
  browser: { type: "boolean", default: false },
} });
if (!values.model || !values.ids) {
  console.error("usage: node js/tools/bench.js --model M.onnx --ids ids.json [--repeats N] [--browser]");
  process.exit(2);
}
const ids = JSON.parse(await readFile(values.ids, "utf8"));
const repeats = Number(values.repeats);

if (!values.browser) {
  const ort = await import("onnxruntime-node");
  const { loadModel } = await import("../src/node.js");
  const bytes = new Uint8Array(await readFile(values.model));
  const result = await timeSteps({ loadModel, ort, bytes, ids, repeats });
  console.log(JSON.stringify({ ...result, where: "node", onnxruntime: ort.env.versions.common }));
} else {
  const { serve } = await import("./serve.js");
  const { launchChromium } = await import("../test/browser/chromium.js");
  const dir = await mkdtemp(join(tmpdir(), "rnnkit-bench-"));
  await copyFile(values.model, join(dir, "model.onnx"));
  const server = await serve({ mounts: { "/bench/": dir } });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.url}js/test/browser/index.html`); // its import map; the tests run only when run.js asks
    const result = await page.evaluate(async ({ ids, repeats }) => {
      const rnnkit = await import("rnnkit");
      const ort = await import("onnxruntime-web");
      ort.env.wasm.numThreads = 1;
      const { timeSteps } = await import("/js/tools/bench-steps.js");
      const bytes = new Uint8Array(await (await fetch("/bench/model.onnx")).arrayBuffer());
      return { ...(await timeSteps({ loadModel: rnnkit.loadModel, ort, bytes, ids, repeats })),
               where: "chromium", onnxruntime: ort.env.versions.common };
    }, { ids, repeats });
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
    await server.close();
    await rm(dir, { recursive: true, force: true });
  }
}
