import { deflateSync } from 'node:zlib';
import { crc32 } from '@tether/protocol';

// PNG: an 8-byte signature, then chunks `u32 length | 4-byte type | data | u32 CRC-32(type+data)`.
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/**
 * A valid RGB PNG (8 bits per channel): a colour gradient with a little seeded noise, so it does
 * not compress to nothing. Built at run time: no binary fixture in the repository.
 */
export function makePng(width: number, height: number, seed = 1): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: truecolour
  // compression 0 (deflate), filter method 0, interlace 0: already zero.
  const stride = width * 3 + 1;
  const raw = Buffer.alloc(stride * height);
  let state = seed >>> 0 || 1;
  for (let y = 0; y < height; y++) {
    raw[y * stride] = 0; // filter type None
    for (let x = 0; x < width; x++) {
      // xorshift32 noise
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const noise = (state >>> 0) & 0x1f;
      const at = y * stride + 1 + x * 3;
      raw[at] = ((x * 255) / width + noise) & 0xff;
      raw[at + 1] = ((y * 255) / height + noise) & 0xff;
      raw[at + 2] = (((x + y) * 127) / (width + height) + 96 + noise) & 0xff;
    }
  }
  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
