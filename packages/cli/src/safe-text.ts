/**
 * Printing a peer's strings (client ids, file names, error messages, reasons, ids) safely.
 *
 * A peer chooses these bytes. Printed raw, a newline forges a log line, ESC, BEL or a C1 CSI
 * drives the terminal, and a bidi override (U+202E) reorders what the reader sees. Every such
 * character is shown as an escape instead, and so is the backslash, so the output reads back
 * unambiguously: `\x1b`, `\n`, `\u202e`, `\u{e0041}`, `\\`.
 */

// What gets escaped: the backslash (so an escape in the output always means one); Cc, the C0
// controls, DEL and the C1 controls; Cf, the format characters: bidi controls (U+061C,
// U+200E/F, U+202A-U+202E, U+2066-U+2069), zero-width characters, the soft hyphen, the BOM and
// the tag characters; Z, every space and separator but U+0020 itself (U+2028/9 break lines in
// some viewers, and a no-break space passes for a field separator); Cs, lone surrogates; and
// the characters that draw nothing although they are not Cf (the combining grapheme joiner,
// the Hangul fillers, the Khmer inherent vowels).
const UNSAFE = /(?! )[\\\p{Cc}\p{Cf}\p{Z}\p{Cs}\u115f\u1160\u3164\uffa0]|\u034f|\u17b4|\u17b5/gu;

// A field printed bare must not look like two fields, nor like a quoted one.
const NEEDS_QUOTES = /[\s"]|^$/u;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

function escapeChar(char: string): string {
  const named = NAMED[char];
  if (named !== undefined) return named;
  const code = char.codePointAt(0) ?? 0;
  if (code < 0x100) return `\\x${code.toString(16).padStart(2, '0')}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, '0')}`;
  return `\\u{${code.toString(16)}}`;
}

/** `text` with every control, bidi, invisible or separator character (and `\`) escaped. */
export function escapeText(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** `text` escaped and in double quotes (a `"` inside is escaped too): for names. */
export function quote(text: string): string {
  return `"${escapeText(text).replaceAll('"', '\\"')}"`;
}

/**
 * `text` as one field of a space-separated line (ids): bare when that is unambiguous, quoted
 * when it is empty or holds a space, a quote or anything that must be escaped.
 */
export function field(text: string): string {
  const escaped = escapeText(text);
  return escaped === text && !NEEDS_QUOTES.test(text) ? text : quote(text);
}

/** `CODE message` of an error, both escaped: a peer's ERROR frame chooses them. */
export function errorText(error: unknown): string {
  const { code, message } = (typeof error === 'object' && error !== null ? error : {}) as {
    code?: unknown;
    message?: unknown;
  };
  return `${escapeText(String(code ?? 'ERROR'))} ${escapeText(String(message ?? error))}`;
}
