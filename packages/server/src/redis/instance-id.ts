import { randomBytes } from 'node:crypto';

/** A fresh instance id: 16 hex characters. */
export function newInstanceId(): string {
  return randomBytes(8).toString('hex');
}
