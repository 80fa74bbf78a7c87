import {
  ErrorCode,
  encodeFileFailed,
  type FileChunkFrame,
  type FileOfferBody,
  FrameType,
  ProtocolError,
} from '@tether/protocol';
import type { FileFrame } from './file-frame.js';
import type { LinkPort } from './port.js';
import type { Sender } from './sender.js';

/** The receiving half of an engine (files on disk, or Blobs in a page), as frames reach it. */
export interface IncomingSide {
  onOffer(offer: FileOfferBody): void;
  onChunk(frame: FileChunkFrame): void;
  onEnd(id: string, sha256: string): void;
  onCancel(id: string): unknown;
}

// Receiver-to-sender frames: they must name a transfer this side offered on the connection.
const ANSWERS: ReadonlySet<number> = new Set([
  FrameType.FILE_ACCEPT,
  FrameType.FILE_STATUS,
  FrameType.FILE_COMPLETE,
  FrameType.FILE_FAILED,
]);

/**
 * Hands a FILE_* frame from the peer to the engine's sending or receiving half. Returns a
 * ProtocolError (UNEXPECTED_FRAME) for a FILE_ACCEPT, FILE_STATUS, FILE_COMPLETE or FILE_FAILED
 * naming a transfer never offered on the current connection: the caller fails the connection
 * with it. Frames for a transfer offered on this connection and since finished or cancelled are
 * a normal race and are ignored (a FILE_ACCEPT gets FILE_CANCEL, so the receiver lets go of what
 * it accepted), as are FILE_CHUNK, FILE_END and FILE_CANCEL for unknown transfers. Without a
 * receiving half, every offer is refused (TRANSFER_REFUSED).
 */
export function routeFileFrame(
  frame: FileFrame,
  port: LinkPort,
  sender: Sender,
  receiver: IncomingSide | undefined,
): ProtocolError | undefined {
  const id = frame.type === FrameType.FILE_CHUNK ? frame.id : frame.body.id;
  if (ANSWERS.has(frame.type) && !port.wasOffered(id)) {
    return new ProtocolError(
      ErrorCode.UNEXPECTED_FRAME,
      `file frame 0x${frame.type.toString(16)} for transfer ${id}, never offered on this connection`,
    );
  }
  switch (frame.type) {
    case FrameType.FILE_OFFER:
      if (receiver !== undefined) receiver.onOffer(frame.body);
      else {
        port.send(
          encodeFileFailed({
            id,
            code: ErrorCode.TRANSFER_REFUSED,
            message: 'this endpoint does not accept files',
            retryable: false,
          }),
        );
      }
      break;
    case FrameType.FILE_CHUNK:
      receiver?.onChunk(frame);
      break;
    case FrameType.FILE_END:
      receiver?.onEnd(id, frame.body.sha256);
      break;
    case FrameType.FILE_CANCEL:
      if (!sender.onCancel(id, frame.body.reason)) receiver?.onCancel(id);
      break;
    case FrameType.FILE_ACCEPT:
      sender.onAccept(id, frame.body.offset);
      break;
    case FrameType.FILE_STATUS:
      sender.onStatus(id, frame.body.offset);
      break;
    case FrameType.FILE_COMPLETE:
      sender.onComplete(id, frame.body.size, frame.body.sha256);
      break;
    case FrameType.FILE_FAILED:
      sender.onFailed(id, frame.body.code, frame.body.message);
      break;
  }
  return undefined;
}
