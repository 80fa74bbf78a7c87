// One side of one benchmark cell, in its own process: `role: 'server'` starts a system's server
// and reports its port; `role: 'client'` runs a scenario against it and reports result rows.
import {
  barrier,
  cpuOf,
  type Row,
  rssOf,
  type WorkerArgs,
  type WorkerMessage,
} from './lib/common.js';
import { system } from './systems/index.js';
import { makeHandler } from './systems/types.js';

// Scenario modules load on demand, as systems do: a worker carries only what its cell runs
// (hdr-histogram-js, which rtt loads, measurably slowed the file receiver it was loaded into).
const args = JSON.parse(process.argv[2] as string) as WorkerArgs;
const send = (m: WorkerMessage) => process.send?.(m);
process.on('unhandledRejection', () => {});

async function server(): Promise<void> {
  let port: number;
  let memoryPid = process.pid;
  let close: () => Promise<void>;
  if (args.scenario === 'file' && args.system === 'raw-net') {
    const { startRawFileServer } = await import('./scenarios/file.js');
    const s = await startRawFileServer(args.uploadDir as string);
    port = s.port;
    close = s.close;
  } else {
    const s = await (await system(args.system)).startServer({
      handler: makeHandler(args.mode ?? 'sink'),
      tls: args.tls,
      uploadDir: args.uploadDir,
    });
    port = s.port;
    memoryPid = s.memoryPid;
    close = s.close;
  }
  process.on('message', async (m: { type: string }) => {
    if (m.type === 'sample') {
      (globalThis as { gc?: () => void }).gc?.();
      const usage = process.memoryUsage();
      send({
        type: 'sample',
        rssBytes: await rssOf(memoryPid),
        heapUsedBytes: memoryPid === process.pid ? usage.heapUsed : 0,
        cpuUs: await cpuOf(memoryPid),
      });
    } else if (m.type === 'stop') {
      await Promise.race([close(), new Promise((r) => setTimeout(r, 500))]);
      process.exit(0);
    }
  });
  send({ type: 'ready', port, memoryPid });
}

async function client(): Promise<void> {
  let rows: Row[] = [];
  if (args.scenario === 'file') {
    rows = await (await import('./scenarios/file.js')).fileClient(args);
  } else if (args.scenario === 'recovery') {
    rows = await (await import('./scenarios/recovery.js')).recoveryClient(args);
  } else if (args.scenario === 'idle-connections') {
    await (await import('./scenarios/idle.js')).idleClient(args);
  } else {
    const c = await (await system(args.system)).connect({
      port: args.port as number,
      ...(args.tls ? { tls: { cert: args.tls.cert } } : {}),
    });
    if (args.scenario === 'throughput') {
      rows = await (await import('./scenarios/throughput.js')).throughputClient(c, args);
    }
    if (args.scenario === 'rtt' || args.params?.thenRtt) {
      // Same processes, the server switched to echo (saves a pair of process start-ups).
      if (args.scenario === 'throughput') c.send(barrier('MODE', 1, 0));
      rows.push(...(await (await import('./scenarios/rtt.js')).rttClient(c, args)));
    }
    await c.close().catch(() => {});
  }
  send({ type: 'result', rows });
  setTimeout(() => process.exit(0), 100);
}

(args.role === 'server' ? server() : client()).catch((error: Error) => {
  send({
    type: 'log',
    text: `${args.role} ${args.system}/${args.scenario}: ${error.stack ?? error}`,
  });
  process.exit(1);
});
