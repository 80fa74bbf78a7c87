/** Default largest frame, counted as the wire `length` field (type + flags + body): 1 MiB. */
export const DEFAULT_MAX_FRAME: number = 1024 * 1024;
/** Default largest JSON body of a control frame: 16 KiB. */
export const DEFAULT_MAX_CONTROL: number = 16 * 1024;
/** No implementation may accept frames larger than this, whatever it negotiates: 16 MiB. */
export const ABSOLUTE_MAX_FRAME: number = 16 * 1024 * 1024;
/** Largest integer a u64 field may hold in this implementation (2^53 - 1). */
export const MAX_U64_SAFE: number = Number.MAX_SAFE_INTEGER;
