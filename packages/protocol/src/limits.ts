/** Default largest frame, counted as the wire `length` field (type + flags + body): 1 MiB. */
export const DEFAULT_MAX_FRAME: number = 1024 * 1024;
/** Default largest JSON body of a control frame: 16 KiB. */
export const DEFAULT_MAX_CONTROL: number = 16 * 1024;
/**
 * Smallest frame limit an endpoint may announce (CHALLENGE, HELLO, WELCOME `maxFrame`): a control
 * frame with a body of the default max control size (16 KiB + type + flags = 16,386), which
 * every peer may send without asking. Before a peer has announced its limit, only control frames
 * are sent to it, so this is also the limit that applies until then.
 */
export const MIN_MAX_FRAME: number = DEFAULT_MAX_CONTROL + 2;
/** No implementation may accept frames larger than this, whatever it negotiates: 16 MiB. */
export const ABSOLUTE_MAX_FRAME: number = 16 * 1024 * 1024;
/** Largest integer a u64 field may hold in this implementation (2^53 - 1). */
export const MAX_U64_SAFE: number = Number.MAX_SAFE_INTEGER;
/** Most data bytes one FILE_CHUNK carries: 256 KiB (at least 1). */
export const MAX_FILE_CHUNK_DATA: number = 256 * 1024;
/** Longest `HELLO.clientId`, in bytes of its UTF-8 encoding. */
export const MAX_CLIENT_ID_BYTES = 128;

/** Whether `value` is a frame limit an endpoint may announce: MIN_MAX_FRAME to ABSOLUTE_MAX_FRAME. */
export function isFrameLimit(value: unknown): value is number {
  return (
    Number.isInteger(value) &&
    (value as number) >= MIN_MAX_FRAME &&
    (value as number) <= ABSOLUTE_MAX_FRAME
  );
}

/**
 * Checks a `maxFrame` option: throws a TypeError naming what was expected. One rule for every
 * option and field that announces a frame limit.
 */
export function checkFrameLimit(name: string, value: number): number {
  if (!isFrameLimit(value)) {
    throw new TypeError(
      `${name} must be an integer from ${MIN_MAX_FRAME} to ${ABSOLUTE_MAX_FRAME}, got ${value}`,
    );
  }
  return value;
}
