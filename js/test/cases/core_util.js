// Helpers the CORE case files share (not a case file itself: it registers nothing).
export const f32 = (values) => Float32Array.from(values);
export const split = (flat, parts) => {
  const n = flat.length / parts;
  return Array.from({ length: parts }, (_, i) => flat.slice(i * n, (i + 1) * n));
};
export function chunksOf(text, size) { // code points, as goldens.py's chunks_of
  const cps = Array.from(text), out = [];
  for (let i = 0; i < cps.length; i += size) out.push(cps.slice(i, i + size).join(""));
  return out;
}
export const models = (env, pred = () => true) => Object.entries(env.goldens.models).filter(([, g]) => pred(g));
export async function load(env, name) {
  const g = env.goldens.models[name];
  return { g, model: await env.loadModel(await env.fetchBytes(g.file), { onWarning: () => {} }), tol: env.tolerance(g) };
}
export const tagResult = (r) => ({ pairs: [...r].map((p) => [...p]), spans: r.spans.map((s) => [...s]), words: r.words });
export const b64decode = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
export const b64encode = (bytes) => btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join(""));
export const register = (t, names) => names;
