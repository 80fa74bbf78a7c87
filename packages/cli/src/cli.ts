import { ExitCode, UsageError } from './args.js';
import { chaosProxy } from './chaos-proxy.js';
import { demo } from './demo.js';
import { ping } from './ping.js';
import { send, sendFile } from './send.js';
import { serve } from './serve.js';
import { simulate } from './simulate.js';
import { createOutput, type Output } from './term.js';

export const HELP = `Usage: tether <command> [options]

Commands:
  serve                        run a server (live peer table, connect/evict/file lines)
  send <host:port> <text...>   send messages, wait until delivered
  send-file <host:port> <f...> send files: resumable, verified by SHA-256, progress bars
  ping <host:port>             RTT statistics from request/echo round trips
  simulate <host:port>         many clients at a rate: connected, reconnects, msg/s, RTT p50/p99
  chaos-proxy                  fault-injecting TCP proxy (--listen, --target, --toxic)
  demo                         the whole stack under chaos, then a verification summary

Run \`tether <command> --help\` for a command's options.
Exit codes: 0 success, 1 a check or transfer failed, 2 bad arguments.`;

type Command = (argv: string[], out: Output) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  serve,
  send,
  'send-file': sendFile,
  ping,
  simulate,
  'chaos-proxy': chaosProxy,
  demo,
};

/**
 * Runs the `tether` command line (without the node and script arguments) and resolves with the
 * exit code. Bad arguments print one line to stderr and give exit code 2.
 */
export async function run(argv: string[], out: Output = createOutput()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.line(HELP);
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  try {
    if (command === undefined) {
      throw new UsageError(`unknown command ${JSON.stringify(name)} (try tether --help)`);
    }
    return await command(rest, out);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tether: ${error.message}\n`);
      return ExitCode.USAGE;
    }
    if (error instanceof TypeError) {
      // Options the SDK rejected (ports, timings ...): still a bad command line.
      process.stderr.write(`tether ${name}: ${error.message}\n`);
      return ExitCode.USAGE;
    }
    throw error;
  }
}
