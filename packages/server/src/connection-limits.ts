/**
 * The server's connection counts, shared by its listeners (TCP or TLS, and WebSocket): one
 * `maxConnections` and one `maxConnectionsPerAddress` for every connection, however it came.
 */
export class ConnectionLimits {
  readonly #max: number;
  readonly #maxPerAddress: number;
  #open = 0;
  readonly #perAddress = new Map<string, number>();
  /** Connections refused at the limits. */
  refusals = 0;

  constructor(max: number, maxPerAddress: number) {
    this.#max = max;
    this.#maxPerAddress = maxPerAddress;
  }

  /** Connections counted now. */
  get open(): number {
    return this.#open;
  }

  /**
   * Counts a new connection from `address` and returns true, or counts a refusal and returns
   * false when either limit is reached. Every true must be matched by one `release`.
   */
  admit(address: string): boolean {
    const fromAddress = this.#perAddress.get(address) ?? 0;
    if (this.#open >= this.#max || fromAddress >= this.#maxPerAddress) {
      this.refusals++;
      return false;
    }
    this.#open++;
    this.#perAddress.set(address, fromAddress + 1);
    return true;
  }

  /** An admitted connection from `address` closed. */
  release(address: string): void {
    this.#open--;
    const left = (this.#perAddress.get(address) ?? 1) - 1;
    if (left === 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, left);
  }
}
