/** Longest accepted file name, in UTF-8 bytes (the limit of ext4, APFS, NTFS and most others). */
export const MAX_FILE_NAME_BYTES = 255;

// C0 controls, DEL and C1 controls: invisible, and some terminals act on them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
// `/` and `\` separate directories (on Windows both); `:` names a drive (`C:x`) or an NTFS
// alternate data stream (`name:stream`).
const SEPARATOR = /[/\\:]/;
// A lone UTF-16 surrogate cannot be encoded in UTF-8 without loss.
const LONE_SURROGATE = /\p{Cs}/u;
// Windows device names (Microsoft's "Naming Files, Paths, and Namespaces"): CON, PRN, AUX, NUL,
// COM0-9, LPT0-9, and COM and LPT with the superscript digits ¹ ² ³, which Windows counts as digits;
// the console and clock devices CONIN$, CONOUT$ and CLOCK$. In any case, with any extension
// (`nul.tar.gz` is NUL) and with spaces before it (`con .txt`). CON, PRN, AUX and NUL followed by
// a superscript digit are not on Microsoft's list; they are refused too, to be safe.
const RESERVED = /^(?:(?:con|prn|aux|nul)[¹²³]?|conin\$|conout\$|clock\$|(?:com|lpt)[0-9¹²³])$/i;

/**
 * Checks a file name offered by a peer (PROTOCOL.md section 13, flow step 1). Returns what is
 * wrong with it, or `undefined` when it is a plain base name that is safe on every platform:
 * not empty, `.` or `..`; no directory separator (`/`, `\`), drive or stream marker (`:`), NUL or
 * other control character; not a Windows device name (CON, PRN, AUX, NUL, CONIN$, CONOUT$,
 * CLOCK$, COM0-9, LPT0-9, COM¹-³, LPT¹-³, and CON, PRN, AUX, NUL with ¹-³; in any case, with or
 * without an extension, with spaces before the extension); not ending in a space or a dot
 * (Windows strips them, so `CON.` is CON); at most 255 bytes of UTF-8. Such a name joined to a
 * directory never leaves it.
 */
export function checkFileName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'the name is empty';
  if (name === '.' || name === '..') return `"${name}" is not a file name`;
  if (CONTROL.test(name)) return 'the name contains a control character';
  if (SEPARATOR.test(name)) return 'the name contains a path separator or a colon';
  if (LONE_SURROGATE.test(name)) return 'the name is not valid Unicode';
  if (Buffer.byteLength(name, 'utf8') > MAX_FILE_NAME_BYTES) {
    return `the name is longer than ${MAX_FILE_NAME_BYTES} bytes`;
  }
  if (/[ .]$/.test(name)) return 'the name ends with a space or a dot';
  const stem = (name.split('.')[0] ?? '').trimEnd();
  if (RESERVED.test(stem)) return `"${name}" is a reserved device name`;
  return undefined;
}
