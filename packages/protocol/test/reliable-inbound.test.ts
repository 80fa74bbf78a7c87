import { describe, expect, it } from 'vitest';
import { ErrorCode, InboundVerdict, ProtocolError, ReliableInbound } from '../src/index.js';

describe('reliable-inbound', () => {
  it('reliable-inbound - delivers sequences in order', () => {
    const inbound = new ReliableInbound();
    expect(inbound.delivered).toBe(0);
    for (let seq = 1; seq <= 5; seq++) {
      expect(inbound.accept(seq)).toBe(InboundVerdict.DELIVER);
      expect(inbound.delivered).toBe(seq);
    }
    expect(InboundVerdict.DELIVER).toBe('deliver');
    expect(InboundVerdict.DUPLICATE).toBe('duplicate');
  });

  it('reliable-inbound - continues after the delivered base it was built with', () => {
    const inbound = new ReliableInbound(100);
    expect(inbound.delivered).toBe(100);
    expect(inbound.takeAck()).toBeUndefined();
    expect(inbound.accept(100)).toBe(InboundVerdict.DUPLICATE);
    expect(inbound.accept(101)).toBe(InboundVerdict.DELIVER);
    expect(inbound.takeAck()).toBe(101);
  });

  it('reliable-inbound - a gap is SEQUENCE_GAP and does not advance', () => {
    const inbound = new ReliableInbound();
    inbound.accept(1);
    const gap = inbound.accept(3);
    expect(gap).toBeInstanceOf(ProtocolError);
    expect((gap as ProtocolError).code).toBe(ErrorCode.SEQUENCE_GAP);
    expect(inbound.delivered).toBe(1);
    expect(inbound.accept(2)).toBe(InboundVerdict.DELIVER);
  });

  it('reliable-inbound - seq <= delivered is DUPLICATE and does not move delivered', () => {
    const inbound = new ReliableInbound();
    for (let seq = 1; seq <= 3; seq++) inbound.accept(seq);
    expect(inbound.accept(3)).toBe(InboundVerdict.DUPLICATE);
    expect(inbound.accept(1)).toBe(InboundVerdict.DUPLICATE);
    expect(inbound.delivered).toBe(3);
    expect(inbound.accept(4)).toBe(InboundVerdict.DELIVER);
  });

  it('reliable-inbound - a duplicate makes the next takeAck re-send the current ack', () => {
    const inbound = new ReliableInbound();
    for (let seq = 1; seq <= 3; seq++) inbound.accept(seq);
    expect(inbound.takeAck()).toBe(3);
    expect(inbound.takeAck()).toBeUndefined();
    expect(inbound.accept(2)).toBe(InboundVerdict.DUPLICATE);
    expect(inbound.takeAck()).toBe(3);
    expect(inbound.takeAck()).toBeUndefined();
  });

  it('reliable-inbound - duplicates mixed with new deliveries in one burst cost one ack', () => {
    const inbound = new ReliableInbound();
    for (let seq = 1; seq <= 3; seq++) inbound.accept(seq);
    inbound.takeAck();
    inbound.accept(2);
    inbound.accept(3);
    inbound.accept(4);
    inbound.accept(5);
    expect(inbound.takeAck()).toBe(5);
    expect(inbound.takeAck()).toBeUndefined();
  });

  it('reliable-inbound - takeAck coalesces many accepts into one value', () => {
    const inbound = new ReliableInbound();
    expect(inbound.takeAck()).toBeUndefined();
    for (let seq = 1; seq <= 500; seq++) inbound.accept(seq);
    expect(inbound.takeAck()).toBe(500);
    expect(inbound.takeAck()).toBeUndefined();
    inbound.accept(501);
    expect(inbound.takeAck()).toBe(501);
  });

  it('reliable-inbound - a gap does not cause an ack', () => {
    const inbound = new ReliableInbound();
    inbound.accept(1);
    inbound.takeAck();
    inbound.accept(5);
    expect(inbound.takeAck()).toBeUndefined();
  });

  it('reliable-inbound - resetAck makes the next takeAck repeat the current ack, even 0', () => {
    const fresh = new ReliableInbound();
    fresh.resetAck();
    expect(fresh.takeAck()).toBe(0);
    expect(fresh.takeAck()).toBeUndefined();

    const inbound = new ReliableInbound();
    for (let seq = 1; seq <= 7; seq++) inbound.accept(seq);
    expect(inbound.takeAck()).toBe(7);
    inbound.resetAck();
    expect(inbound.takeAck()).toBe(7);
    expect(inbound.takeAck()).toBeUndefined();
  });
});
