import { ErrorCode, TetherError } from '@tether/protocol';
import type { PeerSendReceipt } from '../peer.js';

interface Tracked {
  seq: number;
  resolve(receipt: PeerSendReceipt): void;
  reject(error: Error): void;
}

/** What the poll reads for a session: its acknowledged seq, or undefined when it is gone. */
export type ReadAcked = (sids: string[]) => Promise<(number | undefined)[]>;

/**
 * Sends of this instance's application to sessions that live elsewhere (another instance owns
 * them, or none does until the client resumes): their promises wait here for the owner's word
 * (`a` and `e` on this instance's channel). A message on a channel can be missed (a reconnect),
 * so every `pollMs` while anything waits the sessions' acknowledged positions are read again:
 * a promise settles even when its word was lost.
 */
export class RemoteSends {
  readonly #bySession = new Map<string, Tracked[]>();
  readonly #read: ReadAcked;

  constructor(read: ReadAcked) {
    this.#read = read;
  }

  /** Sends waiting. */
  get size(): number {
    let n = 0;
    for (const list of this.#bySession.values()) n += list.length;
    return n;
  }

  /** Waits for the message `seq` of session `sid` to be acknowledged. */
  track(sid: string, seq: number, send: Omit<Tracked, 'seq'>): void {
    let list = this.#bySession.get(sid);
    if (list === undefined) {
      list = [];
      this.#bySession.set(sid, list);
    }
    const tracked: Tracked = { seq, resolve: send.resolve, reject: send.reject };
    // Appends of one session come back in seq order, so this is almost always a push.
    let i = list.length;
    while (i > 0 && (list[i - 1] as Tracked).seq > seq) i--;
    list.splice(i, 0, tracked);
  }

  /** The client acknowledged session `sid` up to `seq`. */
  acked(sid: string, seq: number): void {
    const list = this.#bySession.get(sid);
    if (list === undefined) return;
    let n = 0;
    while (n < list.length && (list[n] as Tracked).seq <= seq) n++;
    if (n === 0) return;
    const done = list.splice(0, n);
    if (list.length === 0) this.#bySession.delete(sid);
    for (const send of done) send.resolve({ id: `${sid}:${send.seq}`, seq: send.seq });
  }

  /** Session `sid` ended: what it held is not delivered. */
  ended(sid: string, error: TetherError): void {
    const list = this.#bySession.get(sid);
    if (list === undefined) return;
    this.#bySession.delete(sid);
    for (const send of list) send.reject(error);
  }

  /** Fails everything waiting (this instance closes). */
  failAll(error: TetherError): void {
    for (const sid of [...this.#bySession.keys()]) this.ended(sid, error);
  }

  /** Reads the acknowledged positions of every session with a send waiting; settles what it can. */
  async poll(): Promise<void> {
    const sids = [...this.#bySession.keys()];
    if (sids.length === 0) return;
    const acked = await this.#read(sids);
    sids.forEach((sid, i) => {
      const seq = acked[i];
      if (seq === undefined) {
        this.ended(sid, new TetherError(ErrorCode.CLOSED, 'the session has ended'));
      } else {
        this.acked(sid, seq);
      }
    });
  }
}
