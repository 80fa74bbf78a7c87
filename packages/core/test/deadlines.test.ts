import { describe, expect, it } from 'vitest';
import { Deadlines, type Scheduled } from '../src/deadlines.js';
import { VirtualScheduler } from '../src/scheduler.js';

interface Item extends Scheduled {
  name: string;
}

const item = (name: string): Item => ({ name, deadlineSlot: -1, deadlineAt: 0 });

function harness() {
  const fired: { name: string; dueAt: number; at: number }[] = [];
  const scheduler = new VirtualScheduler();
  const now = (): number => scheduler.now();
  const deadlines = new Deadlines<Item>(scheduler, (it, dueAt) => {
    fired.push({ name: it.name, dueAt, at: now() });
  });
  return { deadlines, fired, now, scheduler };
}

describe('deadlines', () => {
  it('deadlines - items fire at their time, earliest first, each once', () => {
    const { deadlines, fired, scheduler } = harness();
    const items = ['e', 'b', 'd', 'a', 'c'].map(item);
    const at: Record<string, number> = { a: 10, b: 20, c: 30, d: 40, e: 50 };
    for (const it of items) deadlines.schedule(it, at[it.name] as number);
    expect(deadlines.size).toBe(5);
    scheduler.advance(25);
    expect(fired.map((f) => f.name)).toEqual(['a', 'b']);
    expect(fired.map((f) => f.at)).toEqual([10, 20]);
    scheduler.advance(100);
    expect(fired.map((f) => f.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(fired.map((f) => f.dueAt)).toEqual([10, 20, 30, 40, 50]);
    expect(deadlines.size).toBe(0);
    for (const it of items) expect(it.deadlineSlot).toBe(-1);
  });

  it('deadlines - scheduling again replaces the deadline, earlier or later', () => {
    const { deadlines, fired, scheduler } = harness();
    const [a, b, c] = ['a', 'b', 'c'].map(item) as [Item, Item, Item];
    deadlines.schedule(a, 100);
    deadlines.schedule(b, 200);
    deadlines.schedule(c, 300);
    deadlines.schedule(c, 50); // earlier
    deadlines.schedule(a, 250); // later
    expect(deadlines.size).toBe(3);
    scheduler.advance(1000);
    expect(fired.map((f) => [f.name, f.at])).toEqual([
      ['c', 50],
      ['b', 200],
      ['a', 250],
    ]);
  });

  it('deadlines - a cancelled item never fires; the others keep their order', () => {
    const { deadlines, fired, scheduler } = harness();
    const items = Array.from({ length: 20 }, (_, i) => item(`i${i}`));
    items.forEach((it, i) => {
      deadlines.schedule(it, ((i * 7) % 20) + 1);
    });
    for (const it of items.filter((_, i) => i % 3 === 0)) deadlines.cancel(it);
    deadlines.cancel(item('never scheduled'));
    scheduler.advance(100);
    const expected = items
      .map((it, i) => ({ name: it.name, at: ((i * 7) % 20) + 1, kept: i % 3 !== 0 }))
      .filter((e) => e.kept)
      .sort((x, y) => x.at - y.at);
    expect(fired.map((f) => f.name)).toEqual(expected.map((e) => e.name));
    expect(fired.map((f) => f.at)).toEqual(expected.map((e) => e.at));
  });

  it('deadlines - one Node timer serves every item, and none is left when the schedule empties', () => {
    const { deadlines, scheduler } = harness();
    const items = Array.from({ length: 1000 }, (_, i) => item(`i${i}`));
    items.forEach((it, i) => {
      deadlines.schedule(it, 1000 + i);
    });
    expect(scheduler.pending).toBe(1);
    for (const it of items) deadlines.cancel(it);
    expect(scheduler.pending).toBe(0);
    deadlines.schedule(item('x'), 10);
    scheduler.advance(10);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - items due together that schedule themselves again arm the Node timer once, not once each', () => {
    const scheduler = new VirtualScheduler();
    let armed = 0;
    const setTimeout = scheduler.setTimeout.bind(scheduler);
    scheduler.setTimeout = (callback, ms) => {
      armed++;
      return setTimeout(callback, ms);
    };
    const fired: string[] = [];
    const deadlines: Deadlines<Item> = new Deadlines<Item>(scheduler, (it, dueAt) => {
      fired.push(it.name);
      deadlines.schedule(it, dueAt + 1000);
    });
    const items = Array.from({ length: 100 }, (_, i) => item(`i${i}`));
    for (const it of items) deadlines.schedule(it, 100);
    expect(armed).toBe(1);
    scheduler.advance(100);
    expect(fired).toHaveLength(100);
    // One timer for the round that fired, armed again for the next one: two in all.
    expect(armed).toBe(2);
    expect(scheduler.pending).toBe(1);
    scheduler.advance(1000);
    expect(fired).toHaveLength(200);
    expect(armed).toBe(3);
  });

  it('deadlines - an item its fire schedules again (a heartbeat) runs on every turn', () => {
    const fired: number[] = [];
    const scheduler = new VirtualScheduler();
    const beat = item('beat');
    const deadlines: Deadlines<Item> = new Deadlines<Item>(scheduler, (it, dueAt) => {
      fired.push(dueAt);
      deadlines.schedule(it, dueAt + 100);
    });
    deadlines.schedule(beat, 100);
    scheduler.advance(550);
    expect(fired).toEqual([100, 200, 300, 400, 500]);
    deadlines.cancel(beat);
    scheduler.advance(1000);
    expect(fired).toHaveLength(5);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - random schedules, reschedules and cancels fire exactly the live items in time order', () => {
    let state = 12345;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const { deadlines, fired, scheduler } = harness();
    const items = Array.from({ length: 200 }, (_, i) => item(`i${i}`));
    const due = new Map<Item, number>();
    for (let step = 0; step < 2000; step++) {
      const it = items[rand(items.length)] as Item;
      if (rand(4) === 0) {
        deadlines.cancel(it);
        due.delete(it);
      } else {
        const at = 1 + rand(10_000);
        deadlines.schedule(it, at);
        due.set(it, at);
      }
    }
    expect(deadlines.size).toBe(due.size);
    scheduler.advance(20_000);
    const expected = [...due].sort((x, y) => x[1] - y[1]);
    expect(fired.map((f) => f.dueAt)).toEqual(expected.map(([, at]) => at));
    expect(new Set(fired.map((f) => f.name))).toEqual(new Set(expected.map(([it]) => it.name)));
    for (const f of fired) expect(f.at).toBe(f.dueAt);
  });
});
