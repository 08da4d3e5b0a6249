// Headless Chromium for the browser tests (playwright-core, the system's /usr/bin/chromium).
//
//   const browser = await launchChromium();   // { context, newPage(), close() }
//
// A fresh profile under os.tmpdir() each launch, removed on close; the flags keep Chromium off
// the network (no component updates, sync, QUIC or background requests) and off the GPU.
import { mkdtemp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const CHROMIUM = process.env.RNNKIT_CHROMIUM ?? "/usr/bin/chromium";
export const CHROMIUM_ARGS = Object.freeze([
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync",
]);

export async function launchChromium({ headless = true } = {}) {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install it (apt-get install -y chromium) or set RNNKIT_CHROMIUM`);
  }
  const { chromium } = await import("playwright-core");
  const profile = await mkdtemp(join(tmpdir(), "rnnkit-chromium-"));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless, args: [...CHROMIUM_ARGS], timeout: 60_000,
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    newPage: () => context.newPage(),
    async close() {
      try {
        await context.close();
      } finally {
        await rm(profile, { recursive: true, force: true });
      }
    },
  };
}
