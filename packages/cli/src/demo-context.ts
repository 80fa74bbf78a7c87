import { createHash } from 'node:crypto';
import type { TetherError, TransferProgress, TransferResult } from '@tether/client';
import type { Output } from './term.js';

/** What every step of the demo shares. */
export interface DemoContext {
  out: Output;
  /** Prints a line stamped with the time since the start. */
  log(text: string): void;
  /** `performance.now()` when the demo started. */
  start: number;
  /** Temporary directory of this run (source files, uploads); deleted at the end. */
  dir: string;
  /** Seed of the chaos proxy and the generated image. */
  seed: number;
  /** Messages to send. */
  total: number;
  /** Registers a cleanup step: at the end they run in reverse order, whatever happened. */
  defer(step: () => Promise<unknown>): void;
}

/** One file the client sends, and what became of it. */
export interface FileState {
  name: string;
  path: string;
  size: number;
  sha256: string;
  progress: TransferProgress | undefined;
  result: TransferResult | undefined;
  error: TetherError | undefined;
  /** Where the server stored it and the hash it verified. */
  stored: { path: string; sha256: string } | undefined;
  /** Link drops while this file was part-way through. */
  cuts: number;
}

/** Messages the client sends, counted as they go. */
export interface MessageCounts {
  sent: number;
  acked: number;
  failed: number;
  /** Indices of the acknowledged messages, in the order their acknowledgements came. */
  ackedIndices: number[];
}

/** Waits for `promise`, at most `ms`, leaving no timer behind. */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
