import { FileSendState } from '@tether/protocol';
import { describe, expect, it } from 'vitest';
import { Outgoing, OutgoingPhase } from '../src/outgoing.js';
import { SourceFile } from '../src/source-file.js';
import { Transfer } from '../src/transfer.js';

function outgoing(): Outgoing {
  const transfer = new Transfer(
    { id: 'f'.repeat(32), name: 'f.bin', size: 10, path: '/x/f.bin' },
    () => {},
    () => {},
  );
  return new Outgoing({
    transfer,
    resolve: () => {},
    reject: () => {},
    file: new SourceFile('/x/f.bin', 10, 1),
    startedAt: 0,
    ready: () => {},
    readFailed: () => {},
  });
}

describe('outgoing phases', () => {
  it('outgoing - a transfer moves queued, opening, ready, offered, accepting, sending, sealing, sending, done', () => {
    const o = outgoing();
    expect(o.phase).toBe(OutgoingPhase.QUEUED);
    for (const phase of [
      OutgoingPhase.OPENING,
      OutgoingPhase.READY,
      OutgoingPhase.OFFERED,
      OutgoingPhase.ACCEPTING,
      OutgoingPhase.SENDING,
      OutgoingPhase.SEALING,
      OutgoingPhase.SENDING,
      OutgoingPhase.DONE,
    ]) {
      o.to(phase);
      expect(o.phase).toBe(phase);
    }
    expect(o.finished).toBe(true);
  });

  it('outgoing - transitions outside the table throw, and nothing leaves done or failed', () => {
    const o = outgoing();
    expect(() => o.to(OutgoingPhase.SENDING)).toThrow(/queued -> sending/);
    expect(() => o.to(OutgoingPhase.OFFERED)).toThrow();
    o.to(OutgoingPhase.FAILED);
    for (const phase of Object.values(OutgoingPhase)) expect(() => o.to(phase)).toThrow();
  });

  it('outgoing - leaving the wire (a dropped connection) forgets the offer; offeredOn names its connection', () => {
    const o = outgoing();
    o.to(OutgoingPhase.OPENING);
    o.to(OutgoingPhase.READY);
    o.to(OutgoingPhase.OFFERED);
    o.state = new FileSendState({ size: 10 });
    o.generation = 3;
    expect(o.offeredOn(3)).toBe(true);
    expect(o.offeredOn(4)).toBe(false);
    o.to(OutgoingPhase.READY);
    expect(o.state).toBeUndefined();
    expect(o.offeredOn(3)).toBe(false);
  });
});
