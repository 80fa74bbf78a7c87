import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SessionCursor } from '../src/store/session-cursor.js';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const SLOT = 4096;

function path(): string {
  const dir = fs.mkdtempSync(join(tmpdir(), 'tether-session-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'session');
}

function open(file: string): ReturnType<typeof SessionCursor.open> {
  const opened = SessionCursor.open(file);
  cleanups.push(() => opened.cursor.close());
  return opened;
}

describe('store session file', () => {
  it('store session file - a new file reads as no session', () => {
    const { state, damage } = open(path());
    expect(state).toEqual({ sessionId: '', resumeToken: '', delivered: 0, handing: 0 });
    expect(damage).toBeUndefined();
  });

  it('store session file - the session and positions read back after every kind of write', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s-1', 'token-1', false);
    expect(open(file).state).toMatchObject({ sessionId: 's-1', delivered: 0 });
    cursor.handing(1);
    const reading = open(file).state;
    expect(reading).toEqual({ sessionId: 's-1', resumeToken: 'token-1', delivered: 0, handing: 1 });
    cursor.handing(2);
    cursor.handled(2);
    expect(open(file).state).toMatchObject({ delivered: 2, handing: 2 });
    // A resume keeps the positions (the token may change); a new session starts from zero.
    cursor.session('s-1', 'token-2', true);
    expect(open(file).state).toEqual({
      sessionId: 's-1',
      resumeToken: 'token-2',
      delivered: 2,
      handing: 2,
    });
    cursor.session('s-2', 'token-3', false);
    expect(open(file).state).toMatchObject({ sessionId: 's-2', delivered: 0, handing: 0 });
  });

  it('store session file - handled() keeps a handing mark above it (a message redelivered after a crash not handled yet)', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s', 't', false);
    cursor.handing(5);
    const { cursor: reopened, state } = open(file);
    expect(state).toMatchObject({ delivered: 4, handing: 5 });
    reopened.handled(4);
    expect(open(file).state).toMatchObject({ delivered: 4, handing: 5 });
  });

  it('store session file - writes alternate between two slots: a garbled newest slot falls back to the one before, reported', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s', 't', false);
    cursor.handing(1);
    cursor.handing(2);
    // Three writes: counters 1, 2, 3; the newest (3) is in slot 1.
    const bytes = fs.readFileSync(file);
    bytes[SLOT + 20] = (bytes[SLOT + 20] as number) ^ 0x40;
    fs.writeFileSync(file, bytes);
    const { state, damage } = open(file);
    expect(state).toMatchObject({ sessionId: 's', delivered: 0, handing: 1 });
    expect(damage).toMatch(/slot 1: bad checksum/);
  });

  it('store session file - both slots garbled: no session, reported', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s', 't', false);
    cursor.handing(1);
    const bytes = fs.readFileSync(file);
    bytes[10] = (bytes[10] as number) ^ 1;
    bytes[SLOT + 10] = (bytes[SLOT + 10] as number) ^ 1;
    fs.writeFileSync(file, bytes);
    const { state, damage } = open(file);
    expect(state).toEqual({ sessionId: '', resumeToken: '', delivered: 0, handing: 0 });
    expect(damage).toBeDefined();
  });

  it('store session file - a slot cut short is damage, not a crash', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s', 't', false);
    fs.truncateSync(file, SLOT + 12);
    const { state, damage } = open(file);
    expect(state.sessionId).toBe('');
    expect(damage).toMatch(/slot 1/);
  });

  it('store session file - an id and token too large for a slot are not kept (a restart opens a new session)', () => {
    const file = path();
    const { cursor } = open(file);
    cursor.session('s', 'x'.repeat(5000), false);
    cursor.handing(1);
    expect(open(file).state).toEqual({ sessionId: '', resumeToken: '', delivered: 0, handing: 1 });
  });
});
