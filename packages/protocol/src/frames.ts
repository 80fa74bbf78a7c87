import type {
  ChallengeBody,
  ErrorBody,
  FileAcceptBody,
  FileCancelBody,
  FileCompleteBody,
  FileEndBody,
  FileFailedBody,
  FileOfferBody,
  FileStatusBody,
  GoawayBody,
  HelloBody,
  WelcomeBody,
} from './control-bodies.js';
import type { FrameType } from './frame-types.js';

/** A reliable application message. */
export interface DataFrame {
  type: typeof FrameType.DATA;
  /** {@link DataFlag} bits. */
  flags: number;
  /** Sequence number, from 1, one per DATA frame and direction. */
  seq: number;
  /** Request id when flags has REQUEST or RESPONSE, else 0. */
  requestId: number;
  payload: Buffer;
}

/** Cumulative acknowledgement of every sequence up to and including `seq`. */
export interface AckFrame {
  type: typeof FrameType.ACK;
  seq: number;
}

/** Liveness probe or its answer; `stamp` is opaque to the receiver and echoed back. */
export interface PingFrame {
  type: typeof FrameType.PING | typeof FrameType.PONG;
  stamp: number;
}

/** A slice of a file at `offset`, with the CRC32 of `data`. */
export interface FileChunkFrame {
  type: typeof FrameType.FILE_CHUNK;
  /** Transfer id, 32 lowercase hex characters. */
  id: string;
  offset: number;
  crc32: number;
  data: Buffer;
}

/** A control frame with its JSON body. */
export type ControlFrame =
  | { type: typeof FrameType.CHALLENGE; body: ChallengeBody }
  | { type: typeof FrameType.HELLO; body: HelloBody }
  | { type: typeof FrameType.WELCOME; body: WelcomeBody }
  | { type: typeof FrameType.ERROR; body: ErrorBody }
  | { type: typeof FrameType.GOAWAY; body: GoawayBody }
  | { type: typeof FrameType.FILE_OFFER; body: FileOfferBody }
  | { type: typeof FrameType.FILE_ACCEPT; body: FileAcceptBody }
  | { type: typeof FrameType.FILE_END; body: FileEndBody }
  | { type: typeof FrameType.FILE_COMPLETE; body: FileCompleteBody }
  | { type: typeof FrameType.FILE_FAILED; body: FileFailedBody }
  | { type: typeof FrameType.FILE_CANCEL; body: FileCancelBody }
  | { type: typeof FrameType.FILE_STATUS; body: FileStatusBody };

/** Any decoded frame, discriminated by `type`. */
export type Frame = DataFrame | AckFrame | PingFrame | FileChunkFrame | ControlFrame;
