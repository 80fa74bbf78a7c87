// The browser bundle cell: Tether's browser build beside socket.io-client's and MQTT.js's, each
// bundled the way Tether's is (packages/client/build-browser.mjs: esbuild, ESM, browser platform,
// es2022, minified, no legal comments) and gzipped at level 9. Sizes, not speed: no repetitions.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { extraRow, type Row } from '../lib/common.js';
import type { Context } from './context.js';

/** What a page imports of each peer: its client's connect function. */
const PEER_ENTRIES: readonly { system: string; entry: string; what: string }[] = [
  {
    system: 'socket.io-client',
    entry: "export { io } from 'socket.io-client';",
    what: '`io` (Engine.IO with its WebSocket and polling transports)',
  },
  {
    system: 'mqtt',
    entry: "export { default } from 'mqtt';",
    what: 'the package (its `browser` field: the prebuilt browser bundle with its polyfills)',
  },
];

interface Sizes {
  min: number;
  gzip: number;
  entry: boolean;
}

function row(system: string, what: string, min: number, gzip: number): Row {
  return extraRow(system, 'bundle', 0, { what, minBytes: min, gzipBytes: gzip });
}

async function peerSizes(ctx: Context, entry: string): Promise<{ min: number; gzip: number }> {
  const result = await esbuild.build({
    stdin: { contents: entry, resolveDir: ctx.benchDir, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    external: ['ws', 'node:*'],
    legalComments: 'none',
    logLevel: 'error',
  });
  const bytes = result.outputFiles[0]?.contents ?? new Uint8Array();
  return { min: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
}

export async function runBundleCell(ctx: Context): Promise<void> {
  ctx.log('bundle: browser builds, min+gzip');
  // Tether's own build script, into the scratch folder: the sizes of what `pnpm build` ships.
  const out = join(ctx.work, 'browser-bundle');
  execFileSync(
    process.execPath,
    [join(ctx.benchDir, '..', 'packages', 'client', 'build-browser.mjs'), out],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const sizes = JSON.parse(readFileSync(join(out, 'sizes.json'), 'utf8')) as Record<string, Sizes>;
  // The client's entry is everything needed to connect; the file module loads on first use.
  const main = sizes['tether-client.js'];
  const filesModule = sizes['tether-client-files.js'];
  if (main === undefined || filesModule === undefined) {
    throw new Error(`bundle: unexpected build output ${Object.keys(sizes).join(', ')}`);
  }
  ctx.rows.push(
    row('tether', 'to connect (`tether-client.js`)', main.min, main.gzip),
    row(
      'tether',
      'with files (`tether-client-files.js` too, loaded on first use)',
      main.min + filesModule.min,
      main.gzip + filesModule.gzip,
    ),
  );
  for (const peer of PEER_ENTRIES) {
    const size = await peerSizes(ctx, peer.entry);
    ctx.rows.push(row(peer.system, peer.what, size.min, size.gzip));
  }
}
