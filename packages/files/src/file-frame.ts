import { type ControlFrame, type FileChunkFrame, type Frame, FrameType } from '@tether/protocol';

type FileControlType =
  | typeof FrameType.FILE_OFFER
  | typeof FrameType.FILE_ACCEPT
  | typeof FrameType.FILE_END
  | typeof FrameType.FILE_COMPLETE
  | typeof FrameType.FILE_FAILED
  | typeof FrameType.FILE_CANCEL
  | typeof FrameType.FILE_STATUS;

/** Any FILE_* frame: what {@link TransferEngine.handle} takes. */
export type FileFrame = FileChunkFrame | Extract<ControlFrame, { type: FileControlType }>;

/** Whether a decoded frame belongs to file transfer (types 0x30 to 0x37). */
export function isFileFrame(frame: Frame): frame is FileFrame {
  return frame.type >= FrameType.FILE_OFFER && frame.type <= FrameType.FILE_STATUS;
}
