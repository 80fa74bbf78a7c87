/** An incremental SHA-256: Node's `crypto.createHash`, or a JavaScript one in browsers. */
export interface Sha256 {
  update(data: Uint8Array): void;
  /** The digest, lowercase hex (the hash is then done). */
  hex(): string;
}

/** Makes a fresh {@link Sha256}. */
export type Sha256Factory = () => Sha256;
