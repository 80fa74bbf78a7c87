// The browser build's file-engine.ts (package.json "browser" field). The file module is a chunk
// of its own, fetched at the first use of files (a send, or an offer from the server): pages
// that never move a file do not load it.
import type { FileEngine } from '@tether/files';
import type { FileEngineEvents } from './file-engine.js';
import { LazyFileEngine } from './lazy-file-engine.js';
import type { ResolvedClientOptions } from './options.js';

/** The session's file engine in a browser: Blobs up, Blobs or streams down (`acceptFile`). */
export function makeFileEngine(
  options: ResolvedClientOptions,
  owner: string,
  events: FileEngineEvents,
): FileEngine {
  return new LazyFileEngine(owner, () =>
    import('./blob-files.browser.js').then((module) =>
      module.makeBlobEngine(options, owner, events),
    ),
  );
}
