#!/usr/bin/env node
import { run } from './cli.js';

// The `tether` executable. Exit explicitly: a command that finished has closed its sockets, but
// a stdin reader or a signal handler must not keep the process alive.
run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `tether: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
