import type { PendingSend } from './outbox.js';

/**
 * A message from `publish()`: the outbox entry, with no promise behind it. An acknowledgement
 * ends it silently; a failure goes to `failed`, the client's report (the `publishFailed` event).
 * Its methods live on the prototype, so a message costs this one object.
 */
export class Published implements PendingSend {
  readonly payload: Buffer;
  readonly flags: number = 0;
  readonly requestId: number = 0;
  seq = 0;
  readonly expiresAt: number;
  journalId = 0;
  order = 0;
  publishId: number;
  readonly #failed: (entry: Published, error: Error) => void;

  constructor(
    payload: Buffer,
    expiresAt: number,
    publishId: number,
    failed: (entry: Published, error: Error) => void,
  ) {
    this.payload = payload;
    this.expiresAt = expiresAt;
    this.publishId = publishId;
    this.#failed = failed;
  }

  resolve(): void {}

  reject(error: Error): void {
    this.#failed(this, error);
  }
}
