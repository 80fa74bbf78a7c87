/**
 * Runs `callback` after the current turn's I/O callbacks: `setImmediate` in Node; in browsers a
 * MessageChannel task (hidden tabs throttle timers, not these). Returns a function that cancels it.
 */
export function nextTurn(callback: () => void): () => void {
  if (typeof setImmediate === 'function') {
    const immediate = setImmediate(callback);
    return () => clearImmediate(immediate);
  }
  let cancelled = false;
  const channel = new MessageChannel() as unknown as {
    port1: { onmessage: (() => void) | null; close(): void };
    port2: { postMessage(value: null): void };
  };
  channel.port1.onmessage = () => {
    channel.port1.close();
    if (!cancelled) callback();
  };
  channel.port2.postMessage(null);
  return () => {
    cancelled = true;
    channel.port1.close();
  };
}
