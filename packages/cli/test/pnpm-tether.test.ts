import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './spawn.js';

// `pnpm tether <command>` right after install, before any build: the root script runs the CLI
// from its TypeScript source, as `pnpm demo` does (the published bin is dist/main.js).

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function pnpm(args: string[]): Promise<Run> {
  // Under `pnpm test` npm_execpath is pnpm itself; otherwise the pnpm on PATH.
  const execPath = process.env.npm_execpath;
  const viaNode = execPath !== undefined && /pnpm\.c?js$/.test(execPath);
  const child = viaNode
    ? spawn(process.execPath, [execPath, ...args], { cwd: ROOT })
    : spawn('pnpm', args, { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('cli - pnpm tether', { timeout: 30_000 }, () => {
  it('pnpm tether - the root script runs the source, not dist', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const script = pkg.scripts.tether ?? '';
    expect(script).toMatch(/^tsx /);
    expect(script).toContain('--conditions=@tether/source');
    expect(script).toContain('packages/cli/src/main.ts');
    expect(script).not.toContain('dist');
  });

  it('pnpm tether - --help and a command help exit 0, bad arguments exit 2', async () => {
    const [help, serveHelp, bad] = await Promise.all([
      pnpm(['tether', '--help']),
      pnpm(['tether', 'serve', '--help']),
      pnpm(['--silent', 'tether', 'nope']),
    ]);
    // Code and stderr together, so that a wrong exit code shows what the command printed.
    expect({ code: help.code, stderr: help.stderr }).toMatchObject({ code: 0 });
    expect(help.stdout).toContain('Usage: tether <command> [options]');
    expect({ code: serveHelp.code, stderr: serveHelp.stderr }).toMatchObject({ code: 0 });
    expect(serveHelp.stdout).toContain('Usage: tether serve [options]');
    expect({ code: bad.code, stderr: bad.stderr }).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('tether: unknown command "nope"'),
    });
  });
});
