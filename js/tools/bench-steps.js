// The step-time measurement `make bench` runs in Node and in Chromium (js/tools/bench.js):
// Stream.step per token against a bare session.run per token, on the same file and ids.

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median seconds of `fn()` over `repeats` runs, after one warm-up run. */
async function medianTime(fn, repeats) {
  await fn();
  const times = [];
  for (let i = 0; i < repeats; i++) {
    const start = performance.now();
    await fn();
    times.push((performance.now() - start) / 1000);
  }
  return { median: median(times), spread: Math.max(...times) - Math.min(...times) };
}

/**
 * Microseconds a token of `model.stream().step` and of a bare `session.run` (tokens (1, 1) int64 and
 * the state fed back by hand) on one intra-op thread.
 */
export async function timeSteps({ loadModel, ort, bytes, ids, repeats }) {
  const model = await loadModel(bytes, { threads: 1, ort });
  const stream = model.stream();
  const ours = await medianTime(async () => {
    for (const t of ids) await stream.step(t);
  }, repeats);

  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1,
    executionMode: "sequential" });
  const spec = model.spec;
  const size = spec.layers * spec.hidden;
  const bare = await medianTime(async () => {
    let state = spec.stateNames.map(() => new ort.Tensor("float32", new Float32Array(size), [spec.layers, 1, spec.hidden]));
    for (const t of ids) {
      const feeds = { tokens: new ort.Tensor("int64", BigInt64Array.of(BigInt(t)), [1, 1]) };
      spec.stateNames.forEach(([input], i) => { feeds[input] = state[i]; });
      const out = await session.run(feeds);
      state = spec.stateNames.map(([, output]) => out[output]);
    }
  }, repeats);
  const n = ids.length;
  return { rnnkit_us: 1e6 * ours.median / n, spread_us: 1e6 * ours.spread / n, bare_ort_us: 1e6 * bare.median / n,
           vs_bare_ort: ours.median / bare.median, steps: n };
}
