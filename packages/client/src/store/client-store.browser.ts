// The browser build's client-store.ts (package.json "browser" field): the crash-safe store keeps
// its journal in files, and a page has no file system. The `store` option is refused there.
export { DamageReason } from './damage-reason.js';

/** Stands in for the file-backed store: opening it is refused. */
export const ClientStore = {
  open(): never {
    throw new TypeError('the store option needs a file system: it is not available in a browser');
  },
};
