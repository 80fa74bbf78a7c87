// Debian's chromium for the browser tests, driven by playwright-core (no browser download).
// `.ci/run` (through scripts/system-deps.sh) installs it; elsewhere without it those tests skip.
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';
export const HAVE_CHROMIUM: boolean = existsSync(CHROMIUM);
export const SKIP_NOTE = `chromium not found at ${CHROMIUM} (apt-get install -y chromium; .ci/run installs it)`;
// Under CI a missing browser is a broken install step, not a reason to skip.
if (!HAVE_CHROMIUM && process.env.CI) throw new Error(SKIP_NOTE);

/** Headless, no sandbox (root in CI), and nothing that reaches beyond loopback. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
