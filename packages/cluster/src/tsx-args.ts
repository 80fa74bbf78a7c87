import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/** Node arguments that run a TypeScript file of this repository (tsx, source condition). */
export function tsxArgs(script: string): string[] {
  const require = createRequire(import.meta.url);
  const loader = require.resolve('tsx/package.json').replace(/package\.json$/, 'dist/loader.mjs');
  return ['--conditions=@tether/source', `--import=${pathToFileURL(loader).href}`, script];
}
