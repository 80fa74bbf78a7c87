// `pnpm build` (after tsc): the browser build of @tether/client, an ESM bundle with no `node:`
// imports in dist/browser/. Node-only modules are swapped for their `.browser.ts` twins through
// the "browser" fields of the packages' package.json (as any bundler that honours them does);
// `Buffer` is the small one in src/browser-buffer.ts. Prints the min+gzip sizes.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
// `node build-browser.mjs [outdir]`: tests build into a directory of their own.
const outdir = process.argv[2] ?? join(here, 'dist', 'browser');

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: 'linked',
  // The workspace packages' TypeScript sources, as in tests (no build of them needed).
  conditions: ['@tether/source'],
  inject: [join(here, 'src', 'browser-buffer.ts')],
  // Dynamic imports of packages a page cannot have (ws: the global WebSocket is used).
  external: ['ws', 'node:*'],
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
};

// The file module is a bundle of its own, imported on first use: not a chunk shared with the
// client's (esbuild's splitting would move every module both reach into a chunk the client loads
// at once: the protocol's file state machines with the rest). It carries its own copy of what it
// shares with the client; Buffers and Transfers are made so that they cross (see
// browser-buffer.ts, lazy-file-engine.ts).
const FILES = 'tether-client-files.js';
const filesApart = {
  name: 'files-apart',
  setup(build) {
    build.onResolve({ filter: /blob-files\.browser\.js$/ }, () => ({
      path: `./${FILES}`,
      external: true,
    }));
  },
};

const results = [
  await esbuild.build({
    ...common,
    entryPoints: [join(here, 'src', 'index.ts')],
    outfile: join(outdir, 'tether-client.js'),
    plugins: [filesApart],
  }),
  await esbuild.build({
    ...common,
    entryPoints: [join(here, 'src', 'blob-files.browser.ts')],
    outfile: join(outdir, FILES),
  }),
];

const sizes = {};
const outputs = results.flatMap((result) => Object.entries(result.metafile.outputs));
for (const [file, info] of outputs) {
  if (!file.endsWith('.js')) continue;
  const bytes = readFileSync(file);
  if (/\bnode:|require\(/.test(bytes.toString('latin1'))) {
    throw new Error(`${file} still refers to a Node module`);
  }
  sizes[file.slice(file.lastIndexOf('/') + 1)] = {
    min: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    entry: info.entryPoint !== undefined,
  };
}
writeFileSync(join(outdir, 'sizes.json'), `${JSON.stringify(sizes, null, 2)}\n`);
for (const [file, size] of Object.entries(sizes)) {
  console.log(`${file}: ${size.min} B min, ${size.gzip} B min+gzip${size.entry ? ' (entry)' : ''}`);
}
