/**
 * The server of a netns run, started by netns-scenario.ts inside the namespace:
 *
 *   ip netns exec tth-... node --conditions=@tether/source --import <tsx> ns-server.ts '<settings>'
 *
 * Commands arrive as JSON lines on stdin, reports leave as JSON lines on stdout (ServerReport).
 * When stdin ends (the parent is done, or died) the server is closed; the process must then exit
 * by itself: one that does not holds a leaked handle, and the parent reports it.
 */
import { createInterface } from 'node:readline';
import {
  handlesBeyond,
  liveHandles,
  ServerHost,
  type ServerReport,
  type ServerSettings,
} from './server-host.js';

/** Commands from the parent. */
export type ServerCommand =
  | { op: 'send'; value: number; payload: string }
  | { op: 'sendFile'; name: string; path: string }
  | { op: 'restart'; token: number }
  | { op: 'stats'; token: number }
  | { op: 'close'; token: number };

const settings = JSON.parse(process.argv[2] ?? '{}') as ServerSettings;
const baseline = liveHandles();
const report = (r: ServerReport): void => {
  process.stdout.write(`${JSON.stringify(r)}\n`);
};
const host = new ServerHost(settings, report);
let closing: Promise<void> | undefined;
const close = (): Promise<void> => {
  closing ??= host.close();
  return closing;
};

// Commands run one after another, in order: a send after a restart goes to the new server.
let queue: Promise<void> = Promise.resolve();
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = JSON.parse(line) as ServerCommand;
  queue = queue
    .then(() => execute(command))
    .catch((error: unknown) => {
      process.stderr.write(`ns-server: ${(error as Error).stack}\n`);
      process.exitCode = 1;
    });
});
lines.on('close', () => {
  queue = queue.then(close);
});

async function execute(command: ServerCommand): Promise<void> {
  switch (command.op) {
    case 'send':
      host.send(command.value, command.payload);
      break;
    case 'sendFile':
      host.sendFile(command.name, command.path);
      break;
    case 'restart':
      await host.restart();
      report({ ev: 'done', token: command.token });
      break;
    case 'stats':
      report({ ev: 'stats', token: command.token, stats: host.stats() });
      break;
    case 'close': {
      await close();
      // Give sockets the server ended a moment to finish closing before counting.
      const by = performance.now() + 2000;
      let left = handlesBeyond(baseline, liveHandles());
      while (Object.keys(left).length > 0 && performance.now() < by) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        left = handlesBeyond(baseline, liveHandles());
      }
      report({ ev: 'closed', token: command.token, handles: left });
      break;
    }
  }
}

await host.start();
