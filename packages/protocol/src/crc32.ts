import * as zlib from 'node:zlib';
import { crc32Portable } from './crc32-portable.js';

export { crc32Portable };

// zlib.crc32 is native (Node >= 20.15 / 22.2); older Node 20 releases get the table version.
const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data` (IEEE, as zlib), continuing from `value`. */
export const crc32: (data: Uint8Array, value?: number) => number = native ?? crc32Portable;
