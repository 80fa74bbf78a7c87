import { describe, expect, it } from 'vitest';
import { Fifo } from '../src/index.js';

function fifoOf<T>(...items: T[]): Fifo<T> {
  const fifo = new Fifo<T>();
  for (const item of items) fifo.push(item);
  return fifo;
}

describe('fifo', () => {
  it('fifo - shifts items in push order', () => {
    const fifo = fifoOf('a', 'b', 'c');
    expect(fifo.length).toBe(3);
    expect(fifo.peek()).toBe('a');
    expect(fifo.shift()).toBe('a');
    expect(fifo.shift()).toBe('b');
    fifo.push('d');
    expect(fifo.shift()).toBe('c');
    expect(fifo.shift()).toBe('d');
    expect(fifo.length).toBe(0);
  });

  it('fifo - shift and peek on an empty queue return undefined', () => {
    const fifo = new Fifo<number>();
    expect(fifo.peek()).toBeUndefined();
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.length).toBe(0);
    fifo.push(1);
    expect(fifo.shift()).toBe(1);
    expect(fifo.shift()).toBeUndefined();
    expect(fifo.length).toBe(0);
  });

  it('fifo - at() indexes from the head, also after shifts', () => {
    const fifo = fifoOf(10, 11, 12, 13);
    expect(fifo.at(0)).toBe(10);
    expect(fifo.at(3)).toBe(13);
    expect(fifo.at(4)).toBeUndefined();
    fifo.shift();
    fifo.shift();
    expect(fifo.at(0)).toBe(12);
    expect(fifo.at(1)).toBe(13);
    expect(fifo.at(2)).toBeUndefined();
  });

  it('fifo - iterates from the head without consuming', () => {
    const fifo = fifoOf(1, 2, 3, 4);
    fifo.shift();
    expect([...fifo]).toEqual([2, 3, 4]);
    expect([...fifo]).toEqual([2, 3, 4]);
    expect(fifo.length).toBe(3);
  });

  it('fifo - removeWhere removes matches and keeps the order of the rest', () => {
    const fifo = fifoOf(1, 2, 3, 4, 5, 6, 7);
    fifo.shift();
    const removed = fifo.removeWhere((n) => n % 2 === 0);
    expect(removed).toEqual([2, 4, 6]);
    expect([...fifo]).toEqual([3, 5, 7]);
    expect(fifo.length).toBe(3);
    expect(fifo.at(1)).toBe(5);
    expect(fifo.shift()).toBe(3);
    fifo.push(8);
    expect([...fifo]).toEqual([5, 7, 8]);
  });

  it('fifo - removeWhere with no match changes nothing', () => {
    const fifo = fifoOf('x', 'y');
    fifo.shift();
    expect(fifo.removeWhere(() => false)).toEqual([]);
    expect([...fifo]).toEqual(['y']);
    expect(fifo.length).toBe(1);
  });

  it('fifo - compaction after more than 1024 shifts keeps contents and order', () => {
    const fifo = new Fifo<number>();
    for (let i = 0; i < 3000; i++) fifo.push(i);
    const shifted = Array.from({ length: 2000 }, () => fifo.shift());
    expect(shifted).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(fifo.length).toBe(1000);
    expect(fifo.peek()).toBe(2000);
    expect(fifo.at(0)).toBe(2000);
    expect(fifo.at(999)).toBe(2999);
    expect(fifo.at(1000)).toBeUndefined();
    for (let i = 3000; i < 3500; i++) fifo.push(i);
    const rest = [...fifo];
    expect(rest).toHaveLength(1500);
    expect(rest[0]).toBe(2000);
    expect(rest.every((v, i) => v === 2000 + i)).toBe(true);
    const drained = Array.from({ length: 1500 }, () => fifo.shift());
    expect(drained).toEqual(Array.from({ length: 1500 }, (_, i) => 2000 + i));
    expect(fifo.length).toBe(0);
    expect(fifo.shift()).toBeUndefined();
  });

  it('fifo - interleaved push and shift across compactions never loses an item', () => {
    const fifo = new Fifo<number>();
    let next = 0;
    let expected = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 97; i++) fifo.push(next++);
      const got = Array.from({ length: 90 }, () => fifo.shift());
      expect(got).toEqual(Array.from({ length: 90 }, (_, i) => expected + i));
      expected += 90;
      expect(fifo.length).toBe(next - expected);
      expect(fifo.peek()).toBe(expected);
    }
    expect(fifo.clear()).toEqual(Array.from({ length: next - expected }, (_, i) => expected + i));
  });

  it('fifo - clear returns every item and empties the queue', () => {
    const fifo = fifoOf('a', 'b', 'c');
    fifo.shift();
    expect(fifo.clear()).toEqual(['b', 'c']);
    expect(fifo.length).toBe(0);
    expect([...fifo]).toEqual([]);
    fifo.push('d');
    expect(fifo.peek()).toBe('d');
    expect(fifo.length).toBe(1);
  });
});
