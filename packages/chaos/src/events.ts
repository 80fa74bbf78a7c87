import type { LinkInfo } from './link.js';
import type { Flow } from './toxic.js';

/** Payload of the `forward` event: one write to a destination socket. */
export interface ForwardInfo {
  link: number;
  direction: Flow;
  bytes: number;
}

/** Events of {@link ChaosProxy}. None is needed for the proxy to work; `error` is informational. */
export interface ChaosProxyEvents {
  /** A client connected; toxics have been drawn for the link. */
  connection: (link: LinkInfo) => void;
  /** Both sockets of a link have closed. */
  disconnect: (link: LinkInfo) => void;
  /**
   * One write to a destination (after the toxics), e.g. one slicer piece. Emitted only while someone
   * listens.
   */
  forward: (info: ForwardInfo) => void;
  /**
   * A socket error (ECONNRESET, ECONNREFUSED from the target, ...) or a listener error after start.
   * Never thrown: a proxy without an `error` listener just carries on.
   */
  error: (error: Error, link: number | undefined) => void;
}
