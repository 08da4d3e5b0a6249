// Snapshots (format v4/v5, shared with Python): Python's snapshots restore here and continue as
// Python continued; JS snapshots of Node are byte-identical to Python's; round trips; every
// hostile edit is refused with a StateError.
//
// Written for js/tools/check_js_snapshots.py: env.writeOut("snapshots.json", ...) holds
// {"snapshots": [entry, ...]}, an entry {"model": name of goldens.json, "kind": "stream"|"tag",
// "key": null|string, "snapshot": base64, "pending": the restored stream's pending text,
// "next": text fed after restoring, "logits" (stream: what feed(next) returned) or "result"
// (tag: what feed(next) returned, {pairs, spans, words}), "flush" (stream) / "end" (tag): what
// flush()/end() gave after that}. Python restores each and must give the same.
import { close, deepEqual, equal, ok, throws } from "../assert.js";
import { b64decode, b64encode, load, models, tagResult } from "./core_util.js";

const toList = (x) => (x === null ? null : Array.from(x));

function rewrite(bytes, edit) { // a header edited and the checksum made to match again (not a signature)
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  const size = dv.getUint32(10, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(14, 14 + size)));
  const raw = new TextEncoder().encode(edit(header) ?? JSON.stringify(header));
  const out = new Uint8Array(raw.length + bytes.length - size - 16);
  out.set(bytes.subarray(0, 14));
  new DataView(out.buffer).setUint32(10, raw.length, true);
  out.set(raw, 14);
  out.set(bytes.subarray(14 + size, bytes.length - 16), 14 + raw.length);
  return out;
}

export default function register(t) {
  t.test("Python's snapshots restore and continue exactly as Python continued", async (env) => {
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      for (const c of g.snapshots) {
        const bytes = b64decode(c.snapshot);
        const options = { key: c.key };
        if (c.kind === "tag") {
          const ts = model.tagStream(bytes, options);
          equal(ts.pending, c.pending, `${name}: tag pending`);
          deepEqual(tagResult(await ts.feed(c.next.feed)), c.next.result, `${name}: tag feed after restore`);
          deepEqual(tagResult(await ts.end()), c.next.end, `${name}: tag end after restore`);
          continue;
        }
        const s = model.stream(bytes, options);
        equal(s.pending, c.pending, `${name}: pending`);
        equal(s.consumed, c.consumed, `${name}: consumed`);
        if (c.logits === null) equal(s.logits, null);
        else deepEqual(s.logits, Float32Array.from(c.logits), `${name}: logits restored exactly`);
        const next = await s.feed(c.next.feed);
        if (c.next.logits === null) equal(next, null);
        else close(next, c.next.logits, tol, `${name}: feed after restore`);
        close(await s.flush(), c.next.flush, tol, `${name}: flush after restore`);
        close(await s.step(4), c.next.step, tol, `${name}: step after restore`);
      }
    }
  });

  t.test("JS snapshots are Python's bytes (Node), round-trip, and are written for Python to check", async (env) => {
    const written = [];
    let compared = 0;
    for (const [name] of models(env)) {
      const { g, model, tol } = await load(env, name);
      for (const c of g.snapshots) {
        const stream = c.kind === "tag" ? model.tagStream({ key: c.key }) : model.stream({ key: c.key });
        await stream.feed(c.fed);
        const bytes = stream.snapshot();
        equal(stream.pending, c.pending, `${name}: ${c.kind} stream's pending text`);
        if (env.kind === "node" && g.tolerance === "fp32") {
          compared += 1;
          deepEqual(bytes, b64decode(c.snapshot), `${name}: ${c.kind} snapshot bytes equal Python's`);
        }
        const back = c.kind === "tag" ? model.tagStream(bytes, { key: c.key }) : model.stream(bytes, { key: c.key });
        deepEqual(back.snapshot(), bytes, `${name}: round trip`);
        const entry = { model: name, kind: c.kind, key: c.key, snapshot: b64encode(bytes), pending: stream.pending,
          next: c.next.feed, tolerance: tol };
        if (c.kind === "tag") {
          entry.result = tagResult(await back.feed(c.next.feed));
          entry.end = tagResult(await back.end());
        } else {
          entry.logits = toList(await back.feed(c.next.feed));
          entry.flush = toList(await back.flush());
        }
        written.push(entry);
      }
    }
    ok(written.length > 0, "snapshots written");
    if (env.kind === "node") ok(compared >= 4, `only ${compared} snapshots compared byte for byte`);
    if (env.writeOut) await env.writeOut("snapshots.json", JSON.stringify({ snapshots: written }));
  });

  t.test("every hostile edit is refused with a StateError", async (env) => {
    const { model } = await load(env, "char_lm");
    const other = await load(env, "ws_lm");
    const s = model.stream();
    await s.feed("这本书");
    const good = s.snapshot();
    model.stream(good);
    for (const n of [0, 5, 13, 14, 40, good.length - 17, good.length - 1]) {
      throws(() => model.stream(good.slice(0, n)), "StateError", undefined, `truncated to ${n}`);
    }
    for (let i = 0; i < good.length; i += 7) {
      const bad = good.slice();
      bad[i] ^= 0x40;
      throws(() => model.stream(bad), "StateError", undefined, `byte ${i} flipped`);
    }
    throws(() => other.model.stream(good), "StateError", "another model");
    throws(() => model.tagStream(), "TaskError");
    const tagged = await load(env, "bmes_tag");
    const ts = tagged.model.tagStream();
    await ts.feed("我爱北京");
    throws(() => tagged.model.stream(ts.snapshot()), "StateError", "tag snapshot");
    throws(() => tagged.model.tagStream(tagged.model.stream().snapshot()), "StateError", "stream snapshot");
    for (const version of [1, 2, 3]) {
      const old = good.slice();
      new DataView(old.buffer).setUint16(8, version, true);
      throws(() => model.stream(old), "StateError", "Python runtime");
    }
    const signed = s.snapshot({ key: "secret" });
    throws(() => model.stream(signed), "StateError", "signed");
    throws(() => model.stream(signed, { key: "other" }), "StateError", "signature");
    throws(() => model.stream(good, { key: "secret" }), "StateError", "not signed");
    equal(model.stream(signed, { key: "secret" }).consumed, 3, "signed restores with its key");
    const { sha256 } = await import("../../src/core/sha256.js");
    const reseal = (bytes) => {
      const body = bytes.subarray(0, bytes.length);
      const out = new Uint8Array(body.length + 16);
      out.set(body);
      out.set(sha256(body).subarray(0, 16), body.length);
      return out;
    };
    const edits = {
      "consumed 5.0": (h) => JSON.stringify(h).replace(`"consumed":${h.consumed}`, `"consumed":${h.consumed}.0`),
      "consumed -1": (h) => { h.consumed = -1; },
      "consumed 2^53+2": (h) => { h.consumed = 2 ** 53 + 2; },
      "logits 3": (h) => { h.logits = 3; },
      "shape": (h) => { h.shape = [1, 1, 1]; },
      "pending 5": (h) => { h.pending = 5; },
      "signed": (h) => { h.signed = "hmac-sha256"; },
      "lone surrogate": (h) => JSON.stringify(h).replace(`"pending":""`, `"pending":"\\ud800"`),
      "not an object": () => "[1]",
      "NaN": (h) => JSON.stringify(h).replace(`"consumed":${h.consumed}`, `"consumed":NaN`),
      "consumed 3e0": (h) => JSON.stringify(h).replace(`"consumed":${h.consumed}`, `"consumed":${h.consumed}e0`),
      "nested 5,000 deep": (h) => JSON.stringify(h).replace(`"pending":""`, `"pending":${"[".repeat(5000)}${"]".repeat(5000)}`),
      "an int of 5,000 digits": (h) => JSON.stringify(h).replace(`"consumed":${h.consumed}`, `"consumed":${"9".repeat(5000)}`),
    };
    // Python's json.loads keeps the last of a repeated key: so does the reader
    equal(model.stream(reseal(rewrite(good, (h) => JSON.stringify(h).replace(`"consumed":`, `"consumed":77,"consumed":`))))
      .consumed, 3, "a repeated key: the last wins");
    // a key Python does not read is ignored, as there; one spelled __proto__ is just a key
    equal(model.stream(reseal(rewrite(good, (h) => JSON.stringify(h).replace(`"pending":""`,
      `"pending":"","__proto__":{"kind":"tag","consumed":9}`)))).consumed, 3, "a key spelled __proto__");
    for (const [what, edit] of Object.entries(edits)) {
      throws(() => model.stream(reseal(rewrite(good, edit))), "StateError", undefined, what);
    }
    equal(model.stream(reseal(rewrite(good, () => undefined))).consumed, 3, "a resealed unedited header restores");
    const tagEdits = {
      "tags not labels": (h) => { h.tag.tags = ["X"]; },
      "spans out of order": (h) => { h.tag.tokens = [...h.tag.tokens].reverse(); },
      "extra key": (h) => { h.tag.more = 1; },
      "open tokens": (h) => { h.tag.tags = h.tag.tags.concat(h.tag.tags.length < h.tag.tokens.length ? ["S"] : []); },
    };
    const tsnap = ts.snapshot();
    for (const [what, edit] of Object.entries(tagEdits)) {
      throws(() => tagged.model.tagStream(reseal(rewrite(tsnap, edit))), "StateError", undefined, what);
    }
    throws(() => model.stream("abc"), "TypeError");
  });
}
