/**
 * Kernel-level faults: a network namespace joined to this one by a veth pair, both created by the
 * test and always removed. Addresses are link-local (169.254.x.y/30): traffic to them can only
 * ever cross this veth pair, never be routed anywhere else. Faults are nft DROP rules inside the
 * namespace (both ways, or one way: a true half-open link), the link set down and up, and tc tbf
 * throttling on both ends. Requires root, `ip`, `tc` and `nft`.
 *
 * Routing safety: before the veth gets its address, the host gets an `unreachable` route for the
 * same /30 with a high metric. While the veth is up its connected route wins; if that route ever
 * goes away (the host end down, the namespace deleted) connections to the namespace fail with
 * EHOSTUNREACH here instead of following the default route out of the machine. For the same
 * reason `link_down` downs the namespace end: the host route stays (marked linkdown) and packets
 * die on the veth.
 *
 * Names: `tth-<pid>-<n>` (base 36) for the namespace, `<name>h` for the host end of the veth and
 * `<name>n` for the namespace end; a namespace whose creating process is gone is a leftover of a
 * crashed run and is removed (processes in it first, by pid) before a suite starts, and so are
 * safety routes no live veth uses.
 */
import { execFile, spawn } from 'node:child_process';
import type { Random } from '@tether/chaos';
import { Direction } from './history.js';
import type { FaultInjector, FaultKind } from './workload.js';

const PREFIX = 'tth-';
/** Metric of the safety routes: how leftovers are recognised. */
const SAFETY_METRIC = '4242';
const COMMAND_TIMEOUT_MS = 5000;

/** Runs a command; rejects with its stderr on failure. */
export function run(command: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${command} ${args.join(' ')}: ${stderr.trim() || error.message}`));
        else resolve(stdout);
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

export type NetnsCapability = { ok: true } | { ok: false; reason: string };

/** Whether this process may create namespaces, veth pairs, nft tables and tbf qdiscs. */
export async function netnsCapability(): Promise<NetnsCapability> {
  if (process.platform !== 'linux')
    return { ok: false, reason: `platform is ${process.platform}, not linux` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'not running as root' };
  for (const [tool, flag] of [
    ['ip', '-V'],
    ['tc', '-V'],
    ['nft', '--version'],
  ] as const) {
    try {
      await run(tool, [flag]);
    } catch {
      return {
        ok: false,
        reason: `\`${tool}\` is not installed${tool === 'nft' ? ' (apt-get install -y nftables)' : ' (iproute2)'}`,
      };
    }
  }
  let link: NetnsLink | undefined;
  try {
    link = await NetnsLink.create();
    await link.throttle(1000);
    await link.unthrottle();
    return { ok: true };
  } catch (error) {
    return {
      ok: false,
      reason: `network namespaces are not permitted here: ${(error as Error).message}`,
    };
  } finally {
    await link?.remove();
  }
}

/** The loud warning printed when the netns suite cannot run. */
export function skipWarning(reason: string): string {
  const bar = '!'.repeat(78);
  return [
    bar,
    '!! CHAOS: THE NETWORK-NAMESPACE SUITE IS SKIPPED',
    `!! reason: ${reason}`,
    '!! Kernel-level faults (nft DROP, link down/up, tc tbf) were NOT tested.',
    '!! It needs root, iproute2 and nftables (apt-get install -y nftables).',
    bar,
  ].join('\n');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The creating pid encoded in one of our names, if it is one. */
function ownerOf(name: string): number | undefined {
  if (!name.startsWith(PREFIX)) return undefined;
  const pid = Number.parseInt(name.slice(PREFIX.length).split('-')[0] ?? '', 36);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Removes namespaces and veth ends left by runs that crashed: those of a process that is gone,
 * and those of this process (its runs are sequential and clean up after themselves).
 */
export async function removeLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  const stale = (name: string): boolean => {
    const pid = ownerOf(name);
    return pid !== undefined && (pid === process.pid || !isAlive(pid));
  };
  const namespaces = (await run('ip', ['netns', 'list']))
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter(stale);
  for (const ns of namespaces) {
    const pids = (await run('ip', ['netns', 'pids', ns]).catch(() => ''))
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await run('ip', ['netns', 'del', ns]).catch(() => {});
    removed.push(ns);
  }
  const links = (await run('ip', ['-o', 'link', 'show']))
    .split('\n')
    .map((line) => line.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter(stale);
  for (const link of links) {
    await run('ip', ['link', 'del', link]).catch(() => {});
    removed.push(link);
  }
  // Safety routes whose /30 no veth of ours uses any more.
  const inUse = new Set(
    (await run('ip', ['-o', '-4', 'addr', 'show']))
      .split('\n')
      .filter((line) => line.includes(` ${PREFIX}`))
      .map((line) => /inet (169\.254\.\d+\.\d+)\/30/.exec(line)?.[1])
      .filter((ip): ip is string => ip !== undefined)
      .map(subnetOf),
  );
  for (const subnet of await safetyRoutes()) {
    if (inUse.has(subnet)) continue;
    await deleteSafetyRoute(subnet);
    removed.push(`route ${subnet}`);
  }
  return removed;
}

/** `169.254.7.5` -> `169.254.7.4/30`. */
function subnetOf(ip: string): string {
  const parts = ip.split('.').map(Number);
  parts[3] = (parts[3] as number) & ~3;
  return `${parts.join('.')}/30`;
}

async function safetyRoutes(): Promise<string[]> {
  return (await run('ip', ['-4', 'route', 'show', 'type', 'unreachable']))
    .split('\n')
    .filter((line) => line.includes(`metric ${SAFETY_METRIC}`) && line.includes('169.254.'))
    .map((line) => line.split(' ')[1] ?? '')
    .filter((subnet) => subnet.endsWith('/30'));
}

function deleteSafetyRoute(subnet: string): Promise<unknown> {
  return run('ip', ['route', 'del', 'unreachable', subnet, 'metric', SAFETY_METRIC]).catch(
    () => {},
  );
}

/** A /30 in 169.254.1-160.x that no route on this host mentions yet. */
async function freeSubnet(n: number): Promise<{ octet: number; offset: number }> {
  const routes = await run('ip', ['-4', 'route', 'show', 'table', 'all']);
  for (let i = 0; i < 160 * 64; i++) {
    const k = n + i;
    // 169.254.1-160.x: never 169.254.169.254 (cloud metadata).
    const octet = 1 + ((process.pid + Math.floor(k / 64)) % 160);
    const offset = 4 * (k % 64);
    if (!routes.includes(`169.254.${octet}.${offset}/30`)) return { octet, offset };
  }
  throw new Error('no free 169.254.x.y/30 subnet');
}

let created = 0;

/** A namespace and the veth pair into it. */
export class NetnsLink {
  readonly name: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostIp: string;
  readonly nsIp: string;
  readonly subnet: string;
  #removed = false;

  private constructor(name: string, octet: number, offset: number) {
    this.name = name;
    this.hostIf = `${name}h`;
    this.nsIf = `${name}n`;
    this.hostIp = `169.254.${octet}.${offset + 1}`;
    this.nsIp = `169.254.${octet}.${offset + 2}`;
    this.subnet = `169.254.${octet}.${offset}/30`;
  }

  /** Creates the namespace, the veth pair, the addresses and an empty nft table inside. */
  static async create(): Promise<NetnsLink> {
    const n = created++;
    const name = `${PREFIX}${process.pid.toString(36)}-${(n % 36 ** 3).toString(36)}`;
    const { octet, offset } = await freeSubnet(n);
    const link = new NetnsLink(name, octet, offset);
    try {
      // First of all: traffic to this /30 can never leave the machine.
      await run('ip', ['route', 'add', 'unreachable', link.subnet, 'metric', SAFETY_METRIC]);
      await run('ip', ['netns', 'add', name]);
      await run('ip', [
        'link',
        'add',
        link.hostIf,
        'type',
        'veth',
        'peer',
        'name',
        link.nsIf,
        'netns',
        name,
      ]);
      await run('ip', ['addr', 'add', `${link.hostIp}/30`, 'dev', link.hostIf]);
      await run('ip', ['link', 'set', link.hostIf, 'up']);
      await run('ip', ['-n', name, 'addr', 'add', `${link.nsIp}/30`, 'dev', link.nsIf]);
      await run('ip', ['-n', name, 'link', 'set', link.nsIf, 'up']);
      await run('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
      await link.nft(`
        table inet tth {
          chain input { type filter hook input priority 0; policy accept; }
          chain output { type filter hook output priority 0; policy accept; }
        }`);
      await link.#waitReachable();
    } catch (error) {
      await link.remove();
      throw error;
    }
    return link;
  }

  /** Runs an nft script inside the namespace (atomically: one transaction). */
  nft(script: string): Promise<string> {
    return run('ip', ['netns', 'exec', this.name, 'nft', '-f', '-'], script);
  }

  /** Drops what the server receives from the client (`in`), what it sends (`out`), or both. */
  drop(which: 'in' | 'out' | 'both'): Promise<string> {
    const rules: string[] = [];
    if (which !== 'out') rules.push(`add rule inet tth input ip saddr ${this.hostIp} drop`);
    if (which !== 'in') rules.push(`add rule inet tth output ip daddr ${this.hostIp} drop`);
    return this.nft(rules.join('\n'));
  }

  undrop(): Promise<string> {
    return this.nft('flush chain inet tth input\nflush chain inet tth output');
  }

  /** Sets the namespace end down or up (see the routing note at the top). */
  setLink(up: boolean): Promise<string> {
    return run('ip', ['-n', this.name, 'link', 'set', this.nsIf, up ? 'up' : 'down']);
  }

  /** tbf on both ends: `kbit` per second, a burst of ~10 ms worth, 50 ms of queue. */
  async throttle(kbit: number): Promise<void> {
    const burst = `${Math.max(4, Math.ceil(kbit / 8 / 100))}kb`;
    const tbf = ['root', 'tbf', 'rate', `${kbit}kbit`, 'burst', burst, 'latency', '50ms'];
    await run('tc', ['qdisc', 'replace', 'dev', this.hostIf, ...tbf]);
    await run('tc', ['-n', this.name, 'qdisc', 'replace', 'dev', this.nsIf, ...tbf]);
  }

  async unthrottle(): Promise<void> {
    await run('tc', ['qdisc', 'del', 'dev', this.hostIf, 'root']).catch(() => {});
    await run('tc', ['-n', this.name, 'qdisc', 'del', 'dev', this.nsIf, 'root']).catch(() => {});
  }

  /** Removes everything (idempotent; never throws): the qdiscs, the veth pair, the namespace. */
  async remove(): Promise<void> {
    if (this.#removed) return;
    this.#removed = true;
    const pids = (await run('ip', ['netns', 'pids', this.name]).catch(() => ''))
      .split('\n')
      .map(Number)
      .filter((pid) => Number.isInteger(pid) && pid > 0);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await run('tc', ['qdisc', 'del', 'dev', this.hostIf, 'root']).catch(() => {});
    await run('ip', ['link', 'del', this.hostIf]).catch(() => {});
    await run('ip', ['netns', 'del', this.name]).catch(() => {});
    // Last: the veth is gone, so nothing can use the default route for this /30 meanwhile.
    await deleteSafetyRoute(this.subnet);
  }

  // The veth needs a moment after `up` before it carries packets (carrier, neighbour entry).
  async #waitReachable(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const state = await run('ip', ['-n', this.name, '-o', 'link', 'show', this.nsIf]);
      if (state.includes('LOWER_UP')) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`${this.nsIf} did not come up`);
  }
}

/** Kernel-level fault kinds. */
export const NETNS_FAULTS: readonly FaultKind[] = [
  { name: 'nft_drop_both', silent: true, background: false },
  { name: 'nft_drop_c2s', silent: true, background: false, oneWay: Direction.C2S },
  { name: 'nft_drop_s2c', silent: true, background: false, oneWay: Direction.S2C },
  { name: 'link_down', silent: true, background: false },
  { name: 'tbf_throttle', silent: false, background: true },
];

export class NetnsFaults implements FaultInjector {
  readonly kinds: readonly FaultKind[] = NETNS_FAULTS;
  readonly #link: NetnsLink;

  constructor(link: NetnsLink) {
    this.#link = link;
  }

  async apply(
    kind: FaultKind,
    random: Random,
  ): Promise<{ detail: string; heal: () => Promise<void> }> {
    const link = this.#link;
    switch (kind.name) {
      case 'nft_drop_both':
        await link.drop('both');
        return { detail: 'DROP both ways', heal: async () => void (await link.undrop()) };
      case 'nft_drop_c2s':
        await link.drop('in');
        return { detail: 'DROP client to server', heal: async () => void (await link.undrop()) };
      case 'nft_drop_s2c':
        await link.drop('out');
        return { detail: 'DROP server to client', heal: async () => void (await link.undrop()) };
      case 'link_down':
        await link.setLink(false);
        return { detail: `${link.nsIf} down`, heal: async () => void (await link.setLink(true)) };
      case 'tbf_throttle': {
        const kbit = 256 + Math.floor(random() * 4 * 1024);
        await link.throttle(kbit);
        return { detail: `tbf ${kbit} kbit/s`, heal: () => link.unthrottle() };
      }
      default:
        throw new Error(`unknown netns fault ${kind.name}`);
    }
  }
}

/** Spawns `command` inside the namespace; the caller owns (and must reap) the child. */
export function spawnIn(link: NetnsLink, command: string, args: readonly string[]) {
  return spawn('ip', ['netns', 'exec', link.name, command, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
