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

const result = await esbuild.build({
  entryPoints: { 'tether-client': join(here, 'src', 'index.ts') },
  bundle: true,
  splitting: true,
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
  outdir,
  metafile: true,
  // For size analysis: esbuild --analyze, or https://esbuild.github.io/analyze/.

  legalComments: 'none',
  logLevel: 'warning',
});

const sizes = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
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
