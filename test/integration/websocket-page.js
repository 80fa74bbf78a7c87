// The page of websocket-browser.test.ts: it loads the client's browser build and offers the
// test a few functions (window.harness) to drive it. Everything here runs in Chromium.
import { TetherClient } from './tether-client.js';

const state = {
  client: undefined,
  received: [],
  reconnects: 0,
  sessions: [],
  errors: [],
  acked: 0,
  files: [],
};

function show(text) {
  document.getElementById('status').textContent = text;
}

function report() {
  show(
    [
      `state: ${state.client?.state ?? 'none'}`,
      `messages received: ${state.received.length}`,
      `messages acknowledged: ${state.acked}`,
      `reconnects: ${state.reconnects}`,
      `sessions: ${state.sessions.map((s) => (s.resumed ? 'resumed' : 'new')).join(', ')}`,
      `visibility: ${document.visibilityState}`,
    ].join('\n'),
  );
}

function setVisibility(value) {
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => value });
  Object.defineProperty(document, 'hidden', { configurable: true, get: () => value === 'hidden' });
  document.dispatchEvent(new Event('visibilitychange'));
  report();
}

function pause(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A deterministic pseudo-random byte source (xorshift32), so the test can rebuild the bytes. */
function randomBytes(size, seed) {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('');
}

window.harness = {
  async connect(url, options) {
    const client = new TetherClient({ url, ...options });
    state.client = client;
    client.on('message', (message) => {
      state.received.push(message.text());
      if (state.received.length % 250 === 0) report();
    });
    client.on('reconnecting', () => {
      state.reconnects++;
      report();
    });
    client.on('session', (info) => {
      state.sessions.push(info);
      report();
    });
    client.on('error', (error) => state.errors.push(`${error.code}: ${error.message}`));
    client.on('file', async (file) => {
      const digest = hex(await crypto.subtle.digest('SHA-256', await file.blob.arrayBuffer()));
      state.files.push({
        name: file.name,
        size: file.size,
        sha256: file.sha256,
        blobSize: file.blob.size,
        digest,
      });
      show(`downloaded ${file.name}: ${file.size} bytes, SHA-256 ${digest}`);
    });
    client.on('state', () => report());
    await client.connect();
    report();
    return client.clientId;
  },

  /** Sends `count` messages `${prefix}${i}`, `batch` at a time with `pauseMs` between batches. */
  async sendMany(prefix, count, batch, pauseMs) {
    const client = state.client;
    for (let i = 0; i < count; i += batch) {
      const sends = [];
      for (let j = i; j < Math.min(count, i + batch); j++) {
        sends.push(client.send(`${prefix}${j}`).then(() => state.acked++));
      }
      await Promise.all(sends);
      if (pauseMs > 0) await pause(pauseMs);
    }
    report();
    return state.acked;
  },

  received() {
    return state.received.slice();
  },

  downloads() {
    return state.files.slice();
  },

  clearReceived() {
    state.received = [];
  },

  /** `count` requests, `concurrency` at a time; returns the replies, in order. */
  async requests(count, concurrency) {
    const replies = new Array(count);
    let next = 0;
    async function worker() {
      while (next < count) {
        const i = next++;
        const reply = await state.client.request(`q${i}`, { timeoutMs: 60_000 });
        replies[i] = new TextDecoder().decode(reply);
      }
    }
    await Promise.all(Array.from({ length: concurrency }, worker));
    return replies;
  },

  /** Uploads `size` pseudo-random bytes from a Blob; returns the page's SHA-256 and the result. */
  async upload(size, seed, name) {
    const bytes = randomBytes(size, seed);
    const local = hex(await crypto.subtle.digest('SHA-256', bytes));
    const blob = new Blob([bytes], { type: 'application/octet-stream' });
    const transfer = state.client.sendFile(blob, { name });
    let progress = 0;
    transfer.on('progress', (p) => {
      progress++;
      show(`upload: ${p.bytesCommitted} of ${p.total} bytes committed`);
    });
    const result = await transfer.done;
    report();
    return { local, result, progress, id: transfer.id };
  },

  /**
   * The page's timers as Chromium's throttling of a hidden tab makes them: none runs sooner than
   * `ms` after it was set. The document says it is hidden (and tells its listeners).
   */
  throttleTimers(ms) {
    const original = window.setTimeout;
    state.restoreTimers = () => {
      window.setTimeout = original;
    };
    window.setTimeout = (callback, delay, ...args) =>
      original.call(window, callback, Math.max(ms, delay ?? 0), ...args);
    setVisibility('hidden');
  },

  /** Back to visible, with normal timers. */
  unthrottleTimers() {
    state.restoreTimers?.();
    setVisibility('visible');
  },

  /** Sets a 10 ms timer; `probeFired` says whether it ran. */
  armProbe() {
    state.probeFired = false;
    setTimeout(() => {
      state.probeFired = true;
    }, 10);
  },

  probeFired() {
    return state.probeFired;
  },

  /** What the page says to a client without `url` (no TCP here) and to the store option. */
  async refusals() {
    const out = {};
    try {
      new TetherClient({ url: 'ws://127.0.0.1:1/tether', store: { dir: 'x' } });
      out.store = 'constructed';
    } catch (error) {
      out.store = `${error.name}: ${error.message}`;
    }
    const tcp = new TetherClient({ port: 7070, retries: 3 });
    try {
      await tcp.connect();
      out.tcp = 'connected';
    } catch (error) {
      out.tcp = error.code;
    }
    out.tcpReconnects = tcp.stats().reconnects;
    return out;
  },

  stats() {
    const s = state.client.stats();
    return {
      state: s.state,
      reconnects: state.reconnects,
      sessions: state.sessions.map((x) => ({ resumed: x.resumed, sessionId: x.sessionId })),
      errors: state.errors.slice(),
      outbox: s.outbox.depth,
    };
  },

  async close() {
    await state.client?.close();
    report();
  },
};

show('ready');
window.ready = true;
