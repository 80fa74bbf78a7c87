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

// Items whose deadline moves later without rescheduling (a heartbeat check pushed back by
// inbound bytes): `due` is where each stands now, asked by the schedule as `current`.
interface Lazy extends Item {
  due: number;
}

const lazy = (name: string, due: number): Lazy => ({ ...item(name), due });

function wheelHarness(slotMs = 1000) {
  const fired: { name: string; dueAt: number; at: number }[] = [];
  const asked: string[] = [];
  const scheduler = new VirtualScheduler();
  let armed = 0;
  const setTimeout = scheduler.setTimeout.bind(scheduler);
  scheduler.setTimeout = (callback, ms) => {
    armed++;
    return setTimeout(callback, ms);
  };
  const deadlines = new Deadlines<Lazy>(
    scheduler,
    (it, dueAt) => {
      fired.push({ name: it.name, dueAt, at: scheduler.now() });
    },
    {
      slotMs,
      current: (it) => {
        asked.push(it.name);
        return it.due;
      },
    },
  );
  return { deadlines, fired, asked, scheduler, armed: () => armed };
}

describe('deadlines - with current (a wheel of slots)', () => {
  it('deadlines - items fire at their exact time, in order, whatever slot they wait in', () => {
    const { deadlines, fired, scheduler } = wheelHarness();
    const at: Record<string, number> = { a: 10, b: 999, c: 1000, d: 2500, e: 2501, f: 7333 };
    for (const name of ['f', 'c', 'e', 'a', 'd', 'b']) {
      deadlines.schedule(lazy(name, at[name] as number), at[name] as number);
    }
    expect(deadlines.size).toBe(6);
    scheduler.advance(2500);
    expect(fired.map((f) => [f.name, f.at])).toEqual([
      ['a', 10],
      ['b', 999],
      ['c', 1000],
      ['d', 2500],
    ]);
    scheduler.advance(10_000);
    expect(fired.map((f) => f.name)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    for (const f of fired) expect([f.at, f.dueAt]).toEqual([at[f.name], at[f.name]]);
    expect(deadlines.size).toBe(0);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - a deadline that moved later is asked once its slot comes up and fires at the new time only', () => {
    const { deadlines, fired, asked, scheduler, armed } = wheelHarness();
    const beat = lazy('beat', 7500);
    deadlines.schedule(beat, 7500);
    // Inbound bytes push the check back twice without telling the schedule.
    beat.due = 10_000;
    scheduler.advance(6000);
    beat.due = 12_600;
    scheduler.advance(20_000);
    expect(fired).toEqual([{ name: 'beat', dueAt: 12_600, at: 12_600 }]);
    // Asked when slot 7 (7000 ms) came up, and again at its new slot 12 (12,000 ms).
    expect(asked).toEqual(['beat', 'beat']);
    // Woken for slot 7, slot 12 and 12,600: never at 7,500 or 10,000.
    expect(armed()).toBe(3);
  });

  it('deadlines - an idle heartbeat pushed back before every check costs one wake-up per slot, not one per item', () => {
    const { deadlines, fired, scheduler, armed } = wheelHarness();
    // 1,000 checks 7.5 s after each item's last inbound byte, spread over 5 s.
    const items = Array.from({ length: 1000 }, (_, i) => lazy(`i${i}`, 7500 + i * 5));
    for (const it of items) deadlines.schedule(it, it.due);
    // Every item hears from its peer every 5 s, its check moving 5 s later each time.
    for (let t = 0; t < 30_000; t += 1000) {
      for (const [i, it] of items.entries()) {
        if (Math.floor((i * 5) / 1000) === (t / 1000) % 5) it.due += 5000;
      }
      scheduler.advance(1000);
    }
    expect(fired).toEqual([]);
    expect(deadlines.size).toBe(1000);
    // One wake-up per slot (30 s, 1 s slots), where a heap would wake for every check.
    expect(armed()).toBeLessThanOrEqual(31);
  });

  it('deadlines - a deadline moved earlier by schedule fires at the earlier time', () => {
    const { deadlines, fired, scheduler } = wheelHarness();
    const a = lazy('a', 9000);
    const b = lazy('b', 5000);
    deadlines.schedule(a, 9000);
    deadlines.schedule(b, 5000);
    scheduler.advance(100);
    a.due = 300; // from a far slot into the slot that came up
    deadlines.schedule(a, 300);
    b.due = 2100; // from one far slot to an earlier one
    deadlines.schedule(b, 2100);
    scheduler.advance(10_000);
    expect(fired.map((f) => [f.name, f.at])).toEqual([
      ['a', 300],
      ['b', 2100],
    ]);
    expect(deadlines.size).toBe(0);
  });

  it('deadlines - an item cancelled while waiting in its slot is neither asked nor fired, and its slot costs no wake-up', () => {
    const { deadlines, fired, asked, scheduler } = wheelHarness();
    const a = lazy('a', 5000);
    const b = lazy('b', 5200);
    deadlines.schedule(a, 5000);
    deadlines.schedule(b, 5200);
    deadlines.cancel(a);
    expect(deadlines.size).toBe(1);
    deadlines.cancel(b);
    expect(deadlines.size).toBe(0);
    expect(scheduler.pending).toBe(0);
    scheduler.advance(10_000);
    expect(fired).toEqual([]);
    expect(asked).toEqual([]);
  });

  it('deadlines - an item cancelled by another one firing at the same time does not fire', () => {
    const scheduler = new VirtualScheduler();
    const fired: string[] = [];
    const [a, b, c] = [lazy('a', 3000), lazy('b', 3000), lazy('c', 3000)];
    const deadlines: Deadlines<Lazy> = new Deadlines<Lazy>(
      scheduler,
      (it) => {
        fired.push(it.name);
        // The first to fire ends the other two (a connection closing its session's others).
        for (const other of [a, b, c]) if (other !== it) deadlines.cancel(other);
      },
      { current: (it) => it.due },
    );
    for (const it of [a, b, c]) deadlines.schedule(it, 3000);
    scheduler.advance(5000);
    expect(fired).toHaveLength(1);
    expect(deadlines.size).toBe(0);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - an item with no deadline left (current is Infinity) leaves without firing', () => {
    const { deadlines, fired, scheduler } = wheelHarness();
    const a = lazy('a', 4000);
    deadlines.schedule(a, 4000);
    a.due = Number.POSITIVE_INFINITY;
    scheduler.advance(10_000);
    expect(fired).toEqual([]);
    expect(deadlines.size).toBe(0);
    expect(a.deadlineSlot).toBe(-1);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - after the event loop was suspended, every deadline passed fires at once with its own due time', () => {
    // A clock that jumps while nothing runs (a laptop asleep), and the one timer run by hand.
    let now = 0;
    let timer: { callback: () => void; at: number } | undefined;
    const scheduler = {
      now: () => now,
      setTimeout: (callback: () => void, ms: number) => {
        timer = { callback, at: now + ms };
        return timer;
      },
      clearTimeout: (handle: unknown) => {
        if (handle === timer) timer = undefined;
      },
      defer: (callback: () => void) => callback(),
    };
    const fired: [string, number, number][] = [];
    const deadlines = new Deadlines<Lazy>(
      scheduler,
      (it, dueAt) => fired.push([it.name, dueAt, now]),
      { current: (it) => it.due },
    );
    const a = lazy('a', 7500);
    const b = lazy('b', 12_000);
    const c = lazy('c', 90_000);
    for (const it of [a, b, c]) deadlines.schedule(it, it.due);
    a.due = 9000; // moved on before the sleep
    expect(timer?.at).toBe(7000);
    now = 60_000;
    timer?.callback();
    expect(fired).toEqual([
      ['a', 9000, 60_000],
      ['b', 12_000, 60_000],
    ]);
    expect(deadlines.size).toBe(1);
    expect(timer?.at).toBe(90_000);
  });

  it('deadlines - random schedules, cancels and deadlines moved later fire each live item once, at the last time it was scheduled for or told', () => {
    let state = 777;
    const rand = (n: number): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const scheduler = new VirtualScheduler();
    const fired: { it: Lazy; dueAt: number; at: number }[] = [];
    // The time each item was last scheduled for, or last told the schedule when it was asked.
    const told = new Map<Lazy, number>();
    const scheduledAt = new Map<Lazy, number>();
    const deadlines = new Deadlines<Lazy>(
      scheduler,
      (it, dueAt) => fired.push({ it, dueAt, at: scheduler.now() }),
      {
        slotMs: 250,
        current: (it) => {
          told.set(it, it.due);
          return it.due;
        },
      },
    );
    const items = Array.from({ length: 200 }, (_, i) => lazy(`i${i}`, 0));
    const live = new Set<Lazy>();
    let moved = 0;
    const advance = (ms: number): void => {
      const before = fired.length;
      scheduler.advance(ms);
      for (const f of fired.slice(before)) {
        // At its time (never late), never before where it stands now, and only while live.
        expect(f.at).toBe(told.get(f.it));
        expect(f.dueAt).toBe(f.at);
        expect(f.it.due).toBeGreaterThanOrEqual(f.at);
        expect(live.has(f.it)).toBe(true);
        live.delete(f.it);
      }
    };
    for (let t = 0; t < 20_000; t += 50) {
      for (let k = 0; k < 5; k++) {
        const it = items[rand(items.length)] as Lazy;
        const op = rand(6);
        if (op === 0) {
          deadlines.cancel(it);
          live.delete(it);
        } else if (op === 1 && live.has(it)) {
          it.due += 1 + rand(3000); // moved later, unannounced
          moved++;
        } else if (!live.has(it) || op === 2) {
          it.due = t + 1 + rand(5000);
          deadlines.schedule(it, it.due);
          told.set(it, it.due);
          scheduledAt.set(it, it.due);
          live.add(it);
        }
      }
      advance(50);
      expect(deadlines.size).toBe(live.size);
    }
    expect(moved).toBeGreaterThan(100);
    // Moves heard when a slot came up: those items fired at a time they were never scheduled for.
    expect(fired.filter((f) => f.at !== scheduledAt.get(f.it)).length).toBeGreaterThan(10);
    advance(100_000);
    expect(live.size).toBe(0);
    expect(deadlines.size).toBe(0);
    expect(scheduler.pending).toBe(0);
  });

  it('deadlines - a slot width that is not a positive number is refused', () => {
    const scheduler = new VirtualScheduler();
    for (const slotMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(
        () => new Deadlines<Item>(scheduler, () => {}, { current: (it) => it.deadlineAt, slotMs }),
      ).toThrow(TypeError);
    }
  });
});
