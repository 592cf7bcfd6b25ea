#!/usr/bin/env -S node --max-semi-space-size=4
// Thin launcher: the CLI is compiled to dist/ by `npm install` (prepare script).
// The #! line caps V8's young generation at 2 x 4 MiB (the default grows to 2 x 16): fresh memory
// is slow to touch on VMs, and a short command's young objects rarely need the room (a
// nothing-changed backup of 20,000 files, cold: 1.40-1.51 s -> 1.21-1.33 s; first backup
// 5.24-5.59 -> 5.09-5.33 s, peak RSS 240 -> 200-207 MiB; an agent's syncs unchanged). It takes
// effect only at start, so `node bin/holdfast.js` runs without it.
import { statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

// The HTTP client's parser (undici's llhttp) is WebAssembly: V8's optimizing tier would compile it
// again in the background for about a CPU-second, stealing a core from the sync a short
// `holdfast sync --wait` waits for. The baseline compiler's code parses our few responses fast enough.
setFlagsFromString('--liftoff-only');

// The long-running processes keep a large live heap (an image's chunk slots, the server's
// catalog caches) and each sync promotes a few MiB more: with V8's default growing factor, the
// tight limit it set after an idle spell meant two to five full collections of that heap during
// every sync (1% of a 2 GiB image after 20 s idle: job 0.56-0.65 s; with room to grow 0.44-0.57 s).
// Old generation limit 2.5 x the live heap instead (tens of MiB here).
if (process.argv[2] === 'server' || process.argv[2] === 'agent') setFlagsFromString('--heap-growing-percent=150');

// The esbuild bundle (dist/bundle, built last by `npm run build`) loads a few files instead of
// ~150 modules; it is used unless a later `tsc` left dist/src newer than it, or
// HOLDFAST_NO_BUNDLE is set.
const bundle = new URL('../dist/bundle/holdfast.mjs', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
const mtime = (url) => statSync(url, { throwIfNoEntry: false })?.mtimeMs;
const bundled = mtime(bundle);
const useBundle = !process.env.HOLDFAST_NO_BUNDLE && bundled !== undefined && bundled >= (mtime(compiled) ?? 0);
// Source maps make stack traces name src/*.ts lines, but reading and parsing them costs every
// command 20-40 ms (cold): on for the long-running server and agent, whose logs keep stacks, and
// with HOLDFAST_SOURCE_MAPS=1 for any command.
const longRunning = process.argv[2] === 'server' || process.argv[2] === 'agent';
if (useBundle && (longRunning || process.env.HOLDFAST_SOURCE_MAPS === '1')) process.setSourceMapsEnabled(true);

import(useBundle ? bundle.href : compiled.href).then((m) => m.main(process.argv)).catch((err) => {
  console.error(err);
  process.exit(70);
});
