#!/usr/bin/env node
// Bundles the CLI (src/cli/main.ts) and its worker-thread entries into dist/bundle/ with esbuild:
// a few ESM files instead of ~150 compiled modules plus their node_modules, so that every
// holdfast process (a CLI command, PostgreSQL's archive_command `holdfast log-push`) starts
// faster, above all after the page cache was dropped. bin/holdfast.js runs the bundle when it
// is at least as new as dist/src, and dist/src otherwise.
//
// Code splitting keeps the lazily imported parts (server, agent daemon, restore) lazy. Native
// addons stay external. Paths a module takes from import.meta.url (dist/web, native/build,
// node_modules) are computed as if the module were still its dist/src file; the two worker
// entries are pointed at their bundled files instead.
import { readFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

/** Worker entries: the source file, its bundled name and the exact expression it starts the worker with. */
const WORKERS = [
  { source: 'src/workers/codec-pool.ts', find: "new URL('./codec-worker.js', import.meta.url)", entry: 'src/workers/codec-worker.ts', name: 'codec-worker' },
  { source: 'src/agent/databases/sqlite-check.ts', find: 'new URL(import.meta.url)', entry: 'src/agent/databases/sqlite-check.ts', name: 'sqlite-check' },
];

const BUNDLE_URL = '__holdfastBundleUrl__';

/** Rewrites import.meta.url in Holdfast's own sources (see the header comment). */
const importMetaUrl = {
  name: 'holdfast-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, async (args) => {
      const rel = relative(root, args.path).split('\\').join('/');
      let text = await readFile(args.path, 'utf8');
      if (!text.includes('import.meta.url')) return { contents: text, loader: 'ts' };
      for (const w of WORKERS.filter((x) => x.source === rel)) {
        if (!text.includes(w.find)) throw new Error(`build-bundle: ${rel} no longer contains ${w.find}; update WORKERS in scripts/build-bundle.js`);
        text = text.replaceAll(w.find, `new URL('./${w.name}.mjs', ${BUNDLE_URL})`);
      }
      const asCompiled = `new URL(${JSON.stringify(`../${rel.replace(/\.ts$/, '.js')}`)}, import.meta.url).href`;
      text = text.replaceAll('import.meta.url', asCompiled).replaceAll(BUNDLE_URL, 'import.meta.url');
      return { contents: text, loader: 'ts' };
    });
  },
};

rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: [{ in: 'src/cli/main.ts', out: 'holdfast' }, ...WORKERS.map((w) => ({ in: w.entry, out: w.name }))],
  outdir,
  outExtension: { '.js': '.mjs' },
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // The maps point at src/ and node_modules/ rather than carry their text: a map is read at every start.
  sourcesContent: false,
  // Native addons and the optional native PostgreSQL client load at run time from node_modules.
  external: ['better-sqlite3', 'zstd-napi', 'pg-native', '*.node'],
  // CommonJS dependencies call require(); ESM output has none unless it is made.
  banner: { js: "import { createRequire as __holdfastCreateRequire } from 'node:module'; const require = __holdfastCreateRequire(import.meta.url);" },
  plugins: [importMetaUrl],
  logLevel: 'warning',
  metafile: true,
});
const outputs = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.mjs'));
console.log(`build-bundle: ${outputs.length} files in ${relative(root, outdir)}`);
