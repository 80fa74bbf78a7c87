import { setTimeout as sleep } from 'node:timers/promises';
import type { ChaosProxy } from '@tether/chaos';
import type { DemoContext } from './demo-context.js';
import { connected, type DemoClient } from './demo-stack.js';

/**
 * Throttles the uplink (1.5 MB/s) so the files are still in flight when the first cuts come.
 * Returns the toxic's id, for {@link runCuts} to lift it.
 */
export function throttleUplink(proxy: ChaosProxy): string {
  return proxy.addToxic({ type: 'bandwidth', direction: 'upstream', rate: 1500, name: 'throttle' });
}

/**
 * The cuts, one after the other, each ended by waiting for the client to reconnect: a black hole,
 * a reset, a slicer, a byte limit that cuts frames in half, then (throttle lifted) a half-open
 * link and the proxy going down. The black hole and the half-open link are armed for the
 * detection-time check: only the heartbeat can find those.
 */
export async function runCuts(
  demo: DemoContext,
  proxy: ChaosProxy,
  observed: DemoClient,
  throttle: string,
): Promise<void> {
  const cut = async (name: string, run: () => Promise<void>): Promise<void> => {
    demo.log(`chaos: ${name}`);
    await run();
  };
  await cut('black hole, both directions, for 2 s', () => blackHole(demo, proxy, observed));
  await cut('TCP reset of every link', () => resetAll(proxy, observed));
  await cut('slicer: 1 to 127-byte pieces, 0.5 ms apart, for 2 s', () => slice(proxy, observed));
  await cut('limit_data: each link dies after 40 KB upstream, mid-frame, for 1.5 s', () =>
    limitData(proxy, observed),
  );
  proxy.removeToxic(throttle);
  await cut('half-open: nothing comes back from the server, for 2 s', () =>
    halfOpen(proxy, observed),
  );
  await cut('proxy down (connections refused) for 1 s', () => proxyDown(proxy, observed));
  demo.log('chaos: over; waiting for the last messages and files');
}

/** Nothing passes either way for 2 s: a dead link only the heartbeat can find. */
async function blackHole(demo: DemoContext, proxy: ChaosProxy, observed: DemoClient) {
  const hole = proxy.addToxic({ type: 'blackhole', direction: 'both' });
  observed.armDetection('black hole');
  await sleep(2000);
  proxy.removeToxic(hole);
  demo.log('chaos: black hole removed');
  await connected(observed.client);
  await sleep(800);
}

/** Every link reset at once (RST). */
async function resetAll(proxy: ChaosProxy, observed: DemoClient) {
  proxy.resetAll();
  await sleep(100);
  await connected(observed.client);
  await sleep(800);
}

/** For 2 s every write arrives in 1 to 127-byte pieces, 0.5 ms apart: frames split anywhere. */
async function slice(proxy: ChaosProxy, observed: DemoClient) {
  const slicer = proxy.addToxic({
    type: 'slicer',
    direction: 'both',
    average_size: 64,
    size_variation: 63,
    delay: 500,
  });
  await sleep(2000);
  proxy.removeToxic(slicer);
  await connected(observed.client);
  await sleep(300);
}

/** For 1.5 s each link is closed after 40 KB upstream, in the middle of a frame. */
async function limitData(proxy: ChaosProxy, observed: DemoClient) {
  const limit = proxy.addToxic({ type: 'limit_data', direction: 'upstream', bytes: 40_000 });
  await sleep(1500);
  proxy.removeToxic(limit);
  await connected(observed.client);
  await sleep(500);
}

/** For 2 s nothing comes back while the client keeps writing: a one-way dead link. */
async function halfOpen(proxy: ChaosProxy, observed: DemoClient) {
  const half = proxy.addToxic({ type: 'half_open', direction: 'downstream' });
  observed.armDetection('half-open');
  await sleep(2000);
  proxy.removeToxic(half);
  await connected(observed.client);
  await sleep(500);
}

/** The proxy refuses connections for 1 s. */
async function proxyDown(proxy: ChaosProxy, observed: DemoClient) {
  await proxy.setDown(true);
  await sleep(1000);
  await proxy.setDown(false);
  await connected(observed.client);
}
