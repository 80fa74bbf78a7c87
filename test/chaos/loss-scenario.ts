/**
 * The loss suite: bytes lost on a live link. A faulty middlebox or proxy drops a stretch of
 * traffic (the `drop` toxic: whole reads discarded, nothing closed) for less than the dead-link
 * deadline, so no heartbeat has to notice anything, and TCP stays up on both sides. Whatever the
 * peers make of the hole in their byte stream (a decoder error, a sequence gap, a rewind), they
 * must end up where a clean link would have left them:
 *
 * 1. Message streams both ways, then a drop in one direction or both while they flow.
 * 2. An upload of 16-40 MiB, alone in half the runs (so only the transfer itself can notice the
 *    loss), beside sparse or dense message streams in the others, and a drop once the receiver
 *    has committed a seeded share of the file.
 *
 * The checker's usual checks hold (nothing acknowledged lost, no duplicates, order kept, the
 * ending), and the upload must be complete at both ends (received byte-identical, the sender's
 * transfer resolved) within `3 x deadAfterMs` of the drop healing plus the time the rest of the
 * file takes at a floor rate; otherwise the run fails with `file-late`.
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deriveSeed, mulberry32, type Random } from '@tether/chaos';
import { encodeValue, type FaultRecord, type History, now, OpStatus } from './history.js';
import type { ServerSide } from './mirror.js';
import { type ProxyRig, withProxyRig } from './proxy-scenario.js';
import { type RunResult, Suite, Timing } from './run-result.js';
import { endRun, type RunSetup, setUpRun, workloadEnv } from './run-setup.js';
import { type ClientDriver, type FaultInjector, finish, Stream as Seeds } from './workload.js';

const MiB = 1024 * 1024;

/** Which way a drop acts, and the fault kind it is recorded as. */
export const LossFlow = {
  upstream: 'drop_up',
  downstream: 'drop_down',
  both: 'drop_both',
} as const;
export type LossFlow = keyof typeof LossFlow;

/** One stretch of lost bytes. */
export interface LossDrop {
  flow: LossFlow;
  /** How long it lasts: always below the dead-link deadline. */
  holdMs: number;
  /** Chance that each read in that direction is dropped while it lasts. */
  probability: number;
}

/** Messages beside the upload: none, one each way now and then, or a steady stream. */
export const Traffic = {
  NONE: 'upload alone',
  SPARSE: 'sparse messages',
  DENSE: 'dense messages',
} as const;
export type Traffic = (typeof Traffic)[keyof typeof Traffic];

/** `burst` messages each way every `everyMs` (no messages when `burst` is 0). */
export interface Stream {
  burst: number;
  everyMs: number;
}

/** A loss run, drawn from its seed. */
export interface LossPlan {
  /** The messages of the first part (always dense). */
  messages: Stream;
  /** Messages before the first drop. */
  leadMs: number;
  messageDrop: LossDrop;
  fileSize: number;
  traffic: Traffic;
  /** The messages beside the upload. */
  uploadMessages: Stream;
  /** The drop during the upload, once the receiver has committed `atBytes`. */
  uploadDrop: LossDrop & { atBytes: number };
}

/** The longest drop, against the dead-link deadline (250 ms): nothing has to find the link dead. */
const MAX_HOLD_MS = 200;
/**
 * Floor of the upload rate once the link recovered, for the rest of the file: the bound is
 * `3 x deadAfterMs` after healing plus the rest at this rate. A transfer through the proxy runs
 * at 100+ MiB/s on an idle machine and above 30 MiB/s with the suite's three workers; a stall
 * never completes.
 */
const FLOOR_MIB_PER_S = 16;
const FLOOR_BYTES_PER_MS = (FLOOR_MIB_PER_S * MiB) / 1000;
/** How long the upload may take to reach the point of its drop (it normally takes < 1 s). */
const REACH_TIMEOUT_MS = 10_000;
/** Breathing time after the messages' drop healed, before the upload starts. */
const COOLDOWN_MS = 200;
/** Nothing to do with faults here: the run draws none from the workload's injector. */
const NO_FAULTS: FaultInjector = {
  kinds: [],
  apply: () => Promise.reject(new Error('the loss suite applies its drops itself')),
};

function int(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

function drawDrop(random: Random): LossDrop {
  const flows = Object.keys(LossFlow) as LossFlow[];
  return {
    flow: flows[Math.floor(random() * flows.length)] as LossFlow,
    holdMs: int(random, 60, MAX_HOLD_MS),
    // Mostly every read; sometimes a share of them, like a flaky middlebox.
    probability: random() < 0.7 ? 1 : Math.round((0.3 + random() * 0.6) * 100) / 100,
  };
}

export function makeLossPlan(seed: number): LossPlan {
  const random = mulberry32(deriveSeed(seed, Seeds.PLAN));
  const messages = { burst: int(random, 1, 4), everyMs: int(random, 5, 15) };
  const leadMs = int(random, 30, 120);
  const messageDrop = drawDrop(random);
  const fileSize = int(random, 16, 40) * MiB + int(random, 0, MiB - 1);
  // Half the uploads run alone: then only the transfer itself can notice the loss.
  const r = random();
  const traffic = r < 0.5 ? Traffic.NONE : r < 0.75 ? Traffic.SPARSE : Traffic.DENSE;
  const uploadMessages =
    traffic === Traffic.NONE
      ? { burst: 0, everyMs: 50 }
      : traffic === Traffic.SPARSE
        ? { burst: 1, everyMs: int(random, 60, 150) }
        : { burst: int(random, 1, 3), everyMs: int(random, 5, 15) };
  const uploadDrop = {
    ...drawDrop(random),
    atBytes: Math.floor(fileSize * (0.1 + random() * 0.7)),
  };
  return { messages, leadMs, messageDrop, fileSize, traffic, uploadMessages, uploadDrop };
}

function describeDrop(drop: LossDrop): string {
  return `${LossFlow[drop.flow]} ${drop.holdMs}ms${drop.probability < 1 ? ` p=${drop.probability}` : ''}`;
}

export function describeLossPlan(plan: LossPlan): string {
  const mib = (bytes: number): string => `${(bytes / MiB).toFixed(1)} MiB`;
  const stream = (s: Stream): string => `${s.burst} each way every ${s.everyMs}ms`;
  return [
    `messages ${stream(plan.messages)}`,
    `${describeDrop(plan.messageDrop)} during messages`,
    `upload ${mib(plan.fileSize)}, ${plan.traffic === Traffic.NONE ? 'alone' : `messages ${stream(plan.uploadMessages)}`}`,
    `${describeDrop(plan.uploadDrop)} at ${mib(plan.uploadDrop.atBytes)} committed`,
  ].join('; ');
}

/** Sends messages both ways as `stream` says until stopped (values count up per direction). */
class MessagePump {
  stream: Stream;
  readonly #client: ClientDriver;
  readonly #server: ServerSide;
  readonly #random: Random;
  #c2s = 0;
  #s2c = 0;
  #running: Promise<void> | undefined;
  #stopped = false;

  constructor(seed: number, client: ClientDriver, server: ServerSide, stream: Stream) {
    this.#client = client;
    this.#server = server;
    this.#random = mulberry32(deriveSeed(seed, Seeds.PLAN, 2));
    this.stream = stream;
  }

  start(): void {
    this.#running = this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
  }

  /** One message each way, with a seeded padding unless `pad` is given. */
  send(pad?: number): void {
    const p = pad ?? int(this.#random, 0, 160);
    this.#client.send(++this.#c2s, p);
    const value = ++this.#s2c;
    this.#server.send(value, encodeValue('v', value, p), this.#client.incarnation);
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      for (let i = 0; i < this.stream.burst; i++) this.send();
      await sleep(this.stream.everyMs);
    }
  }
}

/** A drop in effect, recorded as a fault; `heal()` ends it. */
interface ActiveDrop {
  record: FaultRecord;
  heal(): void;
}

/** Starts dropping bytes at once (synchronously: it starts between two reads of the proxy). */
function startDrop(history: History, rig: ProxyRig, drop: LossDrop, detail: string): ActiveDrop {
  const id = rig.proxy.addToxic({
    type: 'drop',
    direction: drop.flow,
    probability: drop.probability,
  });
  const before = { ...rig.proxy.stats().dropped };
  const record = history.fault({
    kind: LossFlow[drop.flow],
    // Shorter than the deadline: nobody has to find the link dead (and may not).
    silent: false,
    background: false,
    detail,
    clientConnected: rig.client.connected,
    serverConnected: rig.server.connected,
  });
  return {
    record,
    heal: () => {
      rig.proxy.removeToxic(id);
      record.healAt = now();
      const after = rig.proxy.stats().dropped;
      record.detail += `; dropped ${after.upstream - before.upstream} B up, ${after.downstream - before.downstream} B down`;
    },
  };
}

/** Drops bytes for `drop.holdMs`; resolves with the fault's record once healed. */
async function holdDrop(active: ActiveDrop, drop: LossDrop): Promise<FaultRecord> {
  const left = active.record.startAt + drop.holdMs - now();
  if (left > 0) await sleep(left);
  active.heal();
  return active.record;
}

/** Seeded bytes, fast (a 32-bit word per draw). */
function seededBytes(seed: number, size: number): Buffer {
  const random = mulberry32(deriveSeed(seed, Seeds.PLAN, 3));
  const words = new Uint32Array(Math.ceil(size / 4));
  for (let i = 0; i < words.length; i++) words[i] = random() * 0x1_0000_0000;
  return Buffer.from(words.buffer, 0, size);
}

/** Runs the plan; `upload` gets the fault record of the upload's drop. */
async function runLoss(
  setup: RunSetup,
  rig: ProxyRig,
  plan: LossPlan,
  upload: { fault?: FaultRecord },
): Promise<void> {
  const { history, seed } = setup;
  const env = workloadEnv(setup, rig.client, rig.server, NO_FAULTS);
  const pump = new MessagePump(seed, rig.client, rig.server, plan.messages);
  pump.start();
  try {
    await sleep(plan.leadMs);
    history.mark(`drop during messages: ${describeDrop(plan.messageDrop)}`);
    const messageDrop = startDrop(
      history,
      rig,
      plan.messageDrop,
      `during messages, p=${plan.messageDrop.probability}`,
    );
    await holdDrop(messageDrop, plan.messageDrop);
    await sleep(COOLDOWN_MS);

    pump.stream = plan.uploadMessages;
    const name = `loss-${seed}.bin`;
    const path = join(setup.dirs.sources, name);
    const content = seededBytes(seed, plan.fileSize);
    writeFileSync(path, content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    history.mark(`upload ${plan.fileSize} B`);
    const { op, transfer } = rig.client.sendFile(name, path, plan.fileSize, sha256);
    // The drop starts from the sender's progress event, when the receiver's committed offset
    // passes the plan's point: before the sender writes the chunks the new offset allows.
    let uploadDrop: ActiveDrop | undefined;
    const reached = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), REACH_TIMEOUT_MS);
      transfer.on('progress', (progress) => {
        op.committed = progress.bytesCommitted;
        if (uploadDrop !== undefined || progress.bytesCommitted < plan.uploadDrop.atBytes) return;
        uploadDrop = startDrop(
          history,
          rig,
          plan.uploadDrop,
          `during the upload at ${progress.bytesCommitted} B committed, p=${plan.uploadDrop.probability}`,
        );
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!(await reached) || uploadDrop === undefined)
      throw new Error(
        `the upload stalled before its drop: ${op.committed ?? 0} of ${plan.uploadDrop.atBytes} B committed in ${REACH_TIMEOUT_MS} ms`,
      );
    history.mark(`drop during the upload: ${describeDrop(plan.uploadDrop)}`);
    const record = await holdDrop(uploadDrop, plan.uploadDrop);
    upload.fault = record;
    const healAt = record.healAt ?? now();
    const left = plan.fileSize - (op.committed ?? 0);
    const restMs = left / FLOOR_BYTES_PER_MS;
    op.dueBy = healAt + 3 * Timing.deadAfterMs + restMs;
    op.due = `${3 * Timing.deadAfterMs} ms (3 x deadAfterMs) after ${record.kind} healed + ${restMs.toFixed(0)} ms for the ${left} B left at ${FLOOR_MIB_PER_S} MiB/s`;
    const settled = transfer.done.then(
      () => true,
      () => true,
    );
    await Promise.race([settled, sleep(Math.max(0, op.dueBy - now()) + 50)]);
    if (op.status === OpStatus.PENDING) history.mark('upload still pending at its deadline');
  } finally {
    await pump.stop();
  }
  // Probe traffic after the last fault, then the common ending (quiescence, gauges, TTL).
  for (let i = 0; i < 2; i++) pump.send(0);
  await finish(env, {
    sessionTtlMs: Timing.sessionTtlMs,
    quiesceMs: Timing.quiesceMs,
    staleMs: Timing.staleMs,
  });
}

export async function runLossScenario(seed: number): Promise<RunResult> {
  // The knobs' plan budget is unused here: the loss plan has its own shape.
  const setup = setUpRun(seed, { min: 0, max: 0 });
  const plan = makeLossPlan(seed);
  const upload: { fault?: FaultRecord } = {};
  const error = await withProxyRig(setup, `chaos-loss-${seed}`, (rig) =>
    runLoss(setup, rig, plan, upload),
  );
  const run = await endRun(setup, Suite.LOSS, error, describeLossPlan(plan));
  const { history } = setup;
  const healAt = upload.fault?.healAt;
  const op = history.files[0];
  const receivedAt = history.fileDeliveries.find((d) => d.name === op?.name)?.at;
  run.loss = {
    uploadDrop: LossFlow[plan.uploadDrop.flow],
    traffic: plan.traffic,
    late: run.violations.some((v) => v.check === 'file-late'),
  };
  if (healAt !== undefined && op?.dueBy !== undefined) {
    run.loss.boundMs = op.dueBy - healAt;
    if (receivedAt !== undefined) run.loss.receivedAfterHealMs = receivedAt - healAt;
  }
  return run;
}
