let table: Uint32Array | undefined;

function crc32Table(): Uint32Array {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
}

/** Portable CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as used by zlib and PNG. */
export function crc32Portable(data: Uint8Array, value = 0): number {
  table ??= crc32Table();
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++)
    c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}
