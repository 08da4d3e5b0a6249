// A tiny static file server for the browser tests and examples/web: one origin, no CDN.
//
//   node js/tools/serve.js [--root DIR] [--port N] [--isolate]    (prints the URL; Ctrl-C stops)
//   import { serve } from "./serve.js"; const s = await serve({ root }); s.url; await s.close();
//
// Serves the repository root by default (so /js/... and /examples/web/... both resolve), on
// 127.0.0.1 and an ephemeral port. Only GET and HEAD; paths are decoded, normalised and must stay
// inside the root (no "..", no symlink out of it); directories serve their index.html.
// `isolate` adds the COOP/COEP headers that make the page crossOriginIsolated (SharedArrayBuffer,
// onnxruntime-web's threads); the tests run without them: one WebAssembly thread, deterministic.
import { createServer } from "node:http";
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".cjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".onnx": "application/octet-stream",
  ".bin": "application/octet-stream",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/markdown; charset=utf-8",
  ".ts": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function send(res, status, text) {
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(`${text}\n`);
}

// The file under root that urlPath names, or null when it is outside the root or missing.
async function resolveFile(root, urlPath) {
  let decoded;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes("\0") || decoded.includes("\\")) return null;
  const path = resolve(root, `.${decoded.startsWith("/") ? "" : "/"}${decoded}`);
  if (path !== root && !path.startsWith(root + sep)) return null;
  let real;
  try {
    real = await realpath(path);
  } catch {
    return null;
  }
  if (real !== root && !real.startsWith(root + sep)) return null;
  let info = await stat(real);
  if (info.isDirectory()) {
    real = join(real, "index.html");
    try {
      info = await stat(real);
    } catch {
      return null;
    }
  }
  return info.isFile() ? { path: real, size: info.size } : null;
}

// mounts: { "/prefix/": dir } serves dir's files under /prefix/ as well (the same rules apply).
export async function serve({ root = REPO_ROOT, port = 0, host = "127.0.0.1", isolate = false, log = null,
  mounts = {} } = {}) {
  const base = await realpath(resolve(root));
  const mounted = await Promise.all(Object.entries(mounts).map(async ([prefix, dir]) => {
    if (!/^\/[^/]+\/$/.test(prefix)) throw new Error(`mount prefix ${prefix} must look like /name/`);
    return [prefix, await realpath(resolve(dir))];
  }));
  const server = createServer(async (req, res) => {
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        send(res, 405, "method not allowed");
        return;
      }
      const urlPath = new URL(req.url, "http://localhost").pathname;
      const mount = mounted.find(([prefix]) => urlPath.startsWith(prefix));
      const file = mount ? await resolveFile(mount[1], urlPath.slice(mount[0].length - 1))
        : await resolveFile(base, urlPath);
      if (log) log(`${req.method} ${urlPath} ${file ? 200 : 404}`);
      if (!file) {
        send(res, 404, "not found");
        return;
      }
      const headers = {
        "content-type": MIME[extname(file.path).toLowerCase()] ?? "application/octet-stream",
        "content-length": file.size,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      };
      if (isolate) {
        headers["cross-origin-opener-policy"] = "same-origin";
        headers["cross-origin-embedder-policy"] = "require-corp";
        headers["cross-origin-resource-policy"] = "same-origin";
      }
      res.writeHead(200, headers);
      if (req.method === "HEAD") {
        res.end();
        return;
      }
      createReadStream(file.path).on("error", () => res.destroy()).pipe(res);
    } catch (e) {
      if (!res.headersSent) send(res, 500, String(e && e.message));
      else res.destroy();
    }
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, ok);
  });
  const { port: used } = server.address();
  return {
    server,
    root: base,
    url: `http://${host}:${used}/`,
    close: () => new Promise((ok) => {
      server.closeAllConnections?.();
      server.close(() => ok());
    }),
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const s = await serve({
    root: option("--root") ?? REPO_ROOT,
    port: Number(option("--port") ?? 0),
    isolate: args.includes("--isolate"),
  });
  console.log(`serving ${s.root} at ${s.url}`);
}
