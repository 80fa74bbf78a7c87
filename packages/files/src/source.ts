/**
 * What an outgoing transfer reads: a file on disk ({@link SourceFile}) or a Blob
 * ({@link BlobSource}). It is opened once, read at offsets, and hashed once, in offset order: by
 * the chunks as they are read (`feed`), and from the source for what no chunk carried (`hashTo`,
 * `seal`).
 */
export interface Source {
  readonly size: number;
  /** SHA-256 (lowercase hex) of the whole source, once sealed. */
  readonly sha256: string | undefined;
  /**
   * Opens the source (`changed` hears of modifications where they can be watched). Returns false
   * when it was closed meanwhile (the transfer ended).
   */
  open(changed: () => void): Promise<boolean>;
  /** Throws FILE_CHANGED when the source no longer is what `sendFile` found. */
  checkUnchanged(): Promise<void>;
  /** Reads `target.length` bytes at `offset` (an `ESHORT` error when the source is shorter). */
  read(target: Uint8Array, offset: number): Promise<void>;
  /** Feeds a chunk read at `offset` into the hash; false when it cannot (see SourceFile). */
  feed(offset: number, data: Uint8Array): boolean;
  /** Hashes the source's bytes up to `offset` (a resume past what was hashed). */
  hashTo(offset: number): Promise<void>;
  /** Finishes the SHA-256 once (concurrent callers share it), checking the source is unchanged. */
  seal(): Promise<string>;
  /** Stops watching and releases the source. */
  close(): Promise<void>;
}

/** A source ready to send: its transfer id (from its fingerprint) and size. */
export interface PreparedSource {
  id: string;
  size: number;
  source: Source;
}
