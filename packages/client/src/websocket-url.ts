/**
 * Checks the `url` option: a `ws://` or `wss://` URL without a fragment. Returns it as given,
 * or undefined when not given.
 */
export function webSocketUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let parsed: URL | undefined;
  try {
    parsed = typeof value === 'string' ? new URL(value) : undefined;
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:')) {
    throw new TypeError(`url must be a ws:// or wss:// URL, got ${JSON.stringify(value)}`);
  }
  if (parsed.hash !== '') throw new TypeError(`url must not have a fragment, got ${value}`);
  return value;
}
