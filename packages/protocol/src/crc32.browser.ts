// The browser build's crc32.ts (package.json "browser" field): no zlib, the table version.
import { crc32Portable } from './crc32-portable.js';

export { crc32Portable };

/** CRC-32 of `data` (IEEE, as zlib), continuing from `value`. */
export const crc32: (data: Uint8Array, value?: number) => number = crc32Portable;
