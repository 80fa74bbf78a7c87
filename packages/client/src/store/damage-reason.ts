/** Why a store's state was cut or started over. */
export const DamageReason = {
  /**
   * The journal ended in a record cut short or garbled, with nothing valid after it: what a
   * crash in the middle of a write leaves. Nothing that left the client depended on it.
   */
  TORN_TAIL: 'torn-tail',
  /**
   * Valid records follow the damage, or a record contradicts the ones before: data in the middle
   * was lost. The client cannot know what the server saw, so it starts a new session and sends
   * every restored message again with new sequence numbers (new ids): at least once.
   */
  CORRUPT: 'corrupt',
  /**
   * A previous run found the server ahead of the journal (records it had made durable were lost:
   * a disk that lied about fsync, or sync 'never' and an OS crash). As for CORRUPT.
   */
  DIVERGED: 'diverged',
} as const;
export type DamageReason = (typeof DamageReason)[keyof typeof DamageReason];
