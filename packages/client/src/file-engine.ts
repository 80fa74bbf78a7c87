import { type FileEngine, type ReceivedFile, TransferEngine } from '@tether/files';
import type { TetherError } from '@tether/protocol';
import type { ResolvedClientOptions } from './options.js';

/** Where the engine reports what no caller awaits. */
export interface FileEngineEvents {
  file(file: ReceivedFile): void;
  error(error: TetherError): void;
}

/**
 * The session's file engine in Node: files from paths (and Blobs) to the server, downloads into
 * `downloadDir`. The browser build has its own (file-engine.browser.ts).
 */
export function makeFileEngine(
  options: ResolvedClientOptions,
  owner: string,
  events: FileEngineEvents,
): FileEngine {
  const { downloadDir, acceptFile, maxFileSize, now } = options;
  const engine = new TransferEngine({
    owner,
    now,
    ...(downloadDir === undefined
      ? {}
      : {
          receive: {
            dir: downloadDir,
            maxFileSize,
            ...(acceptFile === undefined
              ? {}
              : { decide: async (offer) => (await acceptFile(offer)) !== false }),
          },
        }),
  });
  engine.on('file', events.file);
  engine.on('error', events.error);
  return engine;
}
