// The example page: models chosen from disk, live segmentation and sentiment, streamed generation.
// Everything runs in this page (onnxruntime-web's WebAssembly, served from this origin).

const $ = (id) => document.getElementById(id);
const text = $("text");

/** One readable line for any error: its class name and message. */
function errorLine(err) {
  const line = err instanceof Error ? `${err.name}: ${err.message}` : `Error: ${String(err)}`;
  return line.replace(/\s*\n\s*/g, " ");
}

function showError(el, err) {
  el.textContent = err == null ? "" : errorLine(err);
  el.hidden = err == null;
}

// Model calls run one at a time, in the order asked (onnxruntime-web does not promise concurrent runs).
let queue = Promise.resolve();
function exclusive(fn) {
  const run = queue.then(fn);
  queue = run.catch(() => {});
  return run;
}

let rnnkit;
try {
  rnnkit = await import("rnnkit");
} catch (err) {
  showError($("page-error"), err);
  throw err;
}

const TASKS = { tag: "segmentation", classify: "sentiment", lm: "generation" };
const models = { tag: null, classify: null, lm: null };
const loads = { tag: 0, classify: 0, lm: 0 };

function setStatus(task, state, message) {
  const el = $(`${task}-status`);
  el.dataset.state = state;
  el.textContent = message;
  el.classList.toggle("error", state === "error");
}

function describe(model) {
  const spec = model.spec;
  const config = spec.tokenizer || {};
  const tok = config.kind === "word" ? `${config.segmenter || "jieba"} words` : `${config.kind || "unknown"} tokens`;
  const labels = model.task === "lm" ? `${spec.vocab.length} tokens in its vocabulary` : `labels ${model.labels.join(" ")}`;
  return `${model.task} model, ${spec.cell} ${spec.layers}×${spec.hidden}, ${tok}, ${labels}`;
}

async function choose(task, file) {
  const ticket = ++loads[task];
  models[task] = null;
  refreshButtons();
  if (!file) {
    setStatus(task, "empty", "No model chosen.");
    refreshAll();
    return;
  }
  setStatus(task, "loading", `Loading ${file.name}…`);
  const warnings = [];
  try {
    const model = await exclusive(() => rnnkit.loadModel(file, { onWarning: (w) => warnings.push(w) }));
    if (ticket !== loads[task]) return; // a newer choice replaced this one
    if (model.task !== task) {
      const TaskError = rnnkit.TaskError || Error;
      throw new TaskError(`${file.name} is a ${model.task} model; ${TASKS[task]} needs a ${task} model`);
    }
    models[task] = model;
    const note = warnings.length ? ` Warning: ${warnings.join(" ")}` : "";
    setStatus(task, "ready", `${file.name}: ${describe(model)}.${note}`);
  } catch (err) {
    if (ticket !== loads[task]) return;
    setStatus(task, "error", errorLine(err));
  }
  refreshButtons();
  refreshAll();
}

for (const task of Object.keys(models)) {
  const input = $(`${task}-file`);
  input.addEventListener("change", () => choose(task, input.files[0] || null));
}

/**
 * A refresh that runs at most once at a time and, when asked again while running, once more
 * afterwards with the newest text: fast typing never queues a call per keystroke.
 */
function live(render) {
  let running = false;
  let again = false;
  return async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      do {
        again = false;
        await render(text.value);
      } while (again);
    } finally {
      running = false;
    }
  };
}

const words = $("words");
const refreshWords = live(async (value) => {
  const model = models.tag;
  let items = [];
  let error = null;
  if (model && value) {
    try {
      const result = await exclusive(() => model.tag(value));
      // A B/M/E/S model gives words; any other tagger shows each token with its tag.
      items = result.words ? result.words.map((w) => [w, null]) : [...result].map(([tok, tag]) => [tok, tag]);
    } catch (err) {
      error = err;
    }
  }
  words.replaceChildren(...items.map(([word, tag]) => {
    const li = document.createElement("li");
    li.className = "chip";
    li.textContent = word;
    if (tag != null) li.dataset.tag = tag;
    return li;
  }));
  showError($("words-error"), error);
  words.dataset.text = model ? value : "";
});

const sentiment = $("sentiment");
const refreshSentiment = live(async (value) => {
  const model = models.classify;
  let prediction = null;
  let error = null;
  if (model && value) {
    try {
      prediction = await exclusive(() => model.classify(value));
    } catch (err) {
      error = err;
    }
  }
  const score = prediction ? prediction.score : 0;
  $("sentiment-label").textContent = prediction ? prediction.label : "–";
  const bar = $("sentiment-score");
  bar.setAttribute("aria-valuenow", String(score));
  bar.setAttribute("aria-valuetext", prediction ? `${prediction.label} ${score.toFixed(3)}` : "none");
  bar.dataset.score = String(score);
  bar.firstElementChild.style.width = `${(score * 100).toFixed(1)}%`;
  $("sentiment-value").textContent = prediction ? score.toFixed(3) : "";
  showError($("sentiment-error"), error);
  sentiment.dataset.text = model ? value : "";
});

function refreshAll() {
  refreshWords();
  refreshSentiment();
}

// While an input method is composing, the textarea holds pinyin, not the text; wait for the characters.
text.addEventListener("input", (event) => {
  if (!event.isComposing) refreshAll();
});
text.addEventListener("compositionend", refreshAll);

let generation = null; // { stop: boolean } while a generation runs

function refreshButtons() {
  $("generate").disabled = !models.lm || generation !== null;
  $("stop").disabled = generation === null;
}

function generateOptions() {
  const options = {};
  const number = (id) => ($(id).value.trim() === "" ? undefined : Number($(id).value));
  const temperature = number("temperature");
  const seed = number("seed");
  const maxTokens = number("max-tokens");
  if (temperature !== undefined) options.temperature = temperature;
  if (seed !== undefined) options.seed = seed;
  if (maxTokens !== undefined) options.maxTokens = maxTokens;
  return options;
}

$("generate").addEventListener("click", async () => {
  const model = models.lm;
  if (!model || generation) return;
  const run = { stop: false };
  generation = run;
  refreshButtons();
  const out = $("generated");
  const prompt = text.value;
  $("prompt").textContent = prompt;
  out.textContent = "";
  out.dataset.state = "running";
  showError($("generate-error"), null);
  let iterator = null;
  try {
    iterator = model.generate(prompt, generateOptions())[Symbol.asyncIterator]();
    for (;;) {
      const { value, done } = await exclusive(() => iterator.next());
      if (done) break;
      out.append(value);
      if (run.stop) {
        await exclusive(() => iterator.return?.());
        break;
      }
    }
    out.dataset.state = run.stop ? "stopped" : "done";
  } catch (err) {
    showError($("generate-error"), err);
    out.dataset.state = "error";
  } finally {
    generation = null;
    refreshButtons();
  }
});

$("stop").addEventListener("click", () => {
  if (generation) generation.stop = true;
});

document.body.dataset.ready = "true";
