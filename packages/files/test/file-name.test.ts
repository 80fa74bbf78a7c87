import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { candidateName } from '../src/file-name.js';
import { checkFileName, MAX_FILE_NAME_BYTES, transferId } from '../src/index.js';

describe('file-name', () => {
  it('file-name - plain base names are accepted', () => {
    for (const name of [
      'report.pdf',
      'a',
      '.hidden',
      'archive.tar.gz',
      'ünïcødé 文件.txt',
      'CONSOLE.txt',
      'com10',
      'lpt10.log',
      'COMA',
      'conin.txt',
      'clock.txt',
      'com⁴',
      'com¹0',
      'con1',
      'nulx.txt',
      'my con.txt',
      'x'.repeat(MAX_FILE_NAME_BYTES),
    ]) {
      expect(checkFileName(name), name).toBeUndefined();
    }
  });

  it('file-name - paths, traversal, control characters, device names and long names are refused', () => {
    for (const name of [
      '',
      '.',
      '..',
      '/etc/passwd',
      '../escape',
      'a/b',
      'a\\b',
      '..\\..\\windows',
      'C:\\Windows',
      'C:x',
      'name:stream',
      'nul\u0000byte',
      'line\nfeed',
      'bell\u0007',
      'del\u007f',
      'csi\u009b',
      'CON',
      'con',
      'CON.txt',
      'Aux.tar.gz',
      'nul.',
      'PRN ',
      'con .txt',
      'COM1',
      'com9.log',
      'LPT1',
      'lpt9.txt',
      'COM¹',
      'lpt³.txt',
      'COM0',
      'com0.txt',
      'LPT0',
      'lpt0.log',
      'CONIN$',
      'conin$.txt',
      'CONOUT$',
      'Conout$ .log',
      'CLOCK$',
      'clock$.tar.gz',
      'con¹',
      'nul².txt',
      'aux³',
      'prn¹ .txt',
      'CON  .txt',
      'NUL .tar.gz',
      'trailing.',
      'trailing ',
      'x'.repeat(MAX_FILE_NAME_BYTES + 1),
      'é'.repeat(128),
      'lone\ud800surrogate',
    ]) {
      expect(checkFileName(name), JSON.stringify(name)).toBeTypeOf('string');
    }
    expect(checkFileName(undefined)).toBeTypeOf('string');
    expect(checkFileName(42)).toBeTypeOf('string');
  });

  it('file-name - candidates add a numbered suffix before the extension and stay within 255 bytes', () => {
    expect(candidateName('a.txt', 0)).toBe('a.txt');
    expect(candidateName('a.txt', 1)).toBe('a (1).txt');
    expect(candidateName('a.tar.gz', 2)).toBe('a.tar (2).gz');
    expect(candidateName('.hidden', 3)).toBe('.hidden (3)');
    expect(candidateName('noext', 12)).toBe('noext (12)');
    const long = `${'é'.repeat(125)}.txt`;
    expect(checkFileName(long)).toBeUndefined();
    const suffixed = candidateName(long, 7);
    expect(Buffer.byteLength(suffixed)).toBeLessThanOrEqual(MAX_FILE_NAME_BYTES);
    expect(suffixed.endsWith(' (7).txt')).toBe(true);
    expect(checkFileName(suffixed)).toBeUndefined();
  });
});

describe('fingerprint', () => {
  it('fingerprint - the transfer id is the first 16 bytes of SHA-256 over the documented text', () => {
    const text = 'tether-file-v1\n/data/a.bin\n1234\n1700000000123.456\npeer:1';
    const expected = createHash('sha256').update(text).digest('hex').slice(0, 32);
    expect(
      transferId({ path: '/data/a.bin', size: 1234, mtimeMs: 1700000000123.456, peer: 'peer:1' }),
    ).toBe(expected);
    expect(expected).toMatch(/^[0-9a-f]{32}$/);
  });

  it('fingerprint - path, size, mtime and peer each change the id', () => {
    const base = { path: '/a', size: 1, mtimeMs: 2, peer: 'p' };
    const id = transferId(base);
    expect(transferId({ ...base })).toBe(id);
    expect(transferId({ ...base, path: '/b' })).not.toBe(id);
    expect(transferId({ ...base, size: 2 })).not.toBe(id);
    expect(transferId({ ...base, mtimeMs: 3 })).not.toBe(id);
    expect(transferId({ ...base, peer: 'q' })).not.toBe(id);
  });
});
