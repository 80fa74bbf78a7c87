import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeText, field, quote } from '../src/safe-text.js';

// Reverses escapeText and quote: if it gives back every input, no two inputs print alike.
function readBack(text: string): string {
  return text.replace(
    /\\(?:x([0-9a-f]{2})|u\{([0-9a-f]+)\}|u([0-9a-f]{4})|(.))/gsu,
    (_, x, u, v, c) => {
      if (x !== undefined || u !== undefined || v !== undefined) {
        return String.fromCodePoint(Number.parseInt(x ?? u ?? v, 16));
      }
      const named: Record<string, string> = { n: '\n', r: '\r', t: '\t', '\\': '\\', '"': '"' };
      const char = named[c as string];
      if (char === undefined) throw new Error(`unknown escape \\${c}`);
      return char;
    },
  );
}

// What must never reach the terminal raw.
const RAW_UNSAFE = /(?! )[\p{Cc}\p{Cf}\p{Z}\p{Cs}]/u;

// Any UTF-16 string, lone surrogates included.
const anyString = fc
  .array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 40 })
  .map((units) => String.fromCharCode(...units));

describe('safe-text', () => {
  it('safe-text - escapes C0, DEL and C1 controls', () => {
    expect(escapeText('a\x1b[31mred\x07')).toBe('a\\x1b[31mred\\x07');
    expect(escapeText('one\ntwo\r\tthree')).toBe('one\\ntwo\\r\\tthree');
    expect(escapeText('\x00\x7f\x85\x9b\x9f')).toBe('\\x00\\x7f\\x85\\x9b\\x9f');
  });

  it('safe-text - escapes every bidi control', () => {
    const bidi = [0x061c, 0x200e, 0x200f, 0x202a, 0x202b, 0x202c, 0x202d, 0x202e];
    bidi.push(0x2066, 0x2067, 0x2068, 0x2069);
    for (const code of bidi) {
      const char = String.fromCodePoint(code);
      expect(escapeText(`a${char}b`)).toBe(`a\\u${code.toString(16).padStart(4, '0')}b`);
    }
  });

  it('safe-text - escapes invisible format characters, separators and lone surrogates', () => {
    expect(escapeText('zero\u200bwidth\u200d\u2060\ufeff\u00ad')).toBe(
      'zero\\u200bwidth\\u200d\\u2060\\ufeff\\xad',
    );
    expect(escapeText('tag\u{e0041}')).toBe('tag\\u{e0041}');
    expect(escapeText('line\u2028para\u2029')).toBe('line\\u2028para\\u2029');
    expect(escapeText('no\u00a0break\u3000')).toBe('no\\xa0break\\u3000');
    expect(escapeText('filler\u3164\u115f')).toBe('filler\\u3164\\u115f');
    expect(escapeText('joiner\u034f\u17b4')).toBe('joiner\\u034f\\u17b4');
    expect(escapeText('lone\ud800')).toBe('lone\\ud800');
  });

  it('safe-text - leaves printable text, spaces and emoji alone, escapes the backslash', () => {
    expect(escapeText('héllo wörld 日本 👍🏽')).toBe('héllo wörld 日本 👍🏽');
    expect(escapeText('C:\\dir')).toBe('C:\\\\dir');
  });

  it('safe-text - quote and field', () => {
    expect(quote('photo.png')).toBe('"photo.png"');
    expect(quote('say "hi"\n')).toBe('"say \\"hi\\"\\n"');
    expect(field('sim-5')).toBe('sim-5');
    expect(field('café')).toBe('café');
    expect(field('')).toBe('""');
    expect(field('two words')).toBe('"two words"');
    expect(field('"quoted"')).toBe('"\\"quoted\\""');
    expect(field('evil\u202eexe.txt')).toBe('"evil\\u202eexe.txt"');
    expect(field('a\\b')).toBe('"a\\\\b"');
  });

  it('safe-text - the output holds no unsafe character and reads back to the input', () => {
    fc.assert(
      fc.property(anyString, (text) => {
        const escaped = escapeText(text);
        expect(escaped).not.toMatch(RAW_UNSAFE);
        expect(readBack(escaped)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('safe-text - a field is one token: no space or unsafe character unless quoted', () => {
    fc.assert(
      fc.property(anyString, (text) => {
        const printed = field(text);
        expect(printed).not.toMatch(RAW_UNSAFE);
        if (!printed.startsWith('"')) {
          expect(printed).toBe(text);
          expect(printed).toMatch(/^[^\s"\\]+$/u);
        } else {
          expect(readBack(printed.slice(1, -1))).toBe(text);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
