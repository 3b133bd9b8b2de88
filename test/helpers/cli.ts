// The bundled CLI as a user runs it, for every test that runs it: `emofuse(args)` runs packages/cli/dist/emofuse.js
// in a child process and gives back its exit code and output (never throws); `buildCli()` rebuilds that bundle from
// the current sources (fast), for a test file's beforeAll, so no test runs a stale dist/.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const bin = join(root, 'packages/cli/dist/emofuse.js');

export interface Run {
  /** The exit code; 128 when a signal (or the timeout) killed it, -1 when it could not start. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Added to (undefined: removed from) the environment, which never carries EMOFUSE_DEBUG (stack traces) unless set here. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Killed after this long (default 180 s). */
  timeoutMs?: number;
}

/** The built CLI with `args` in a child process; never throws. */
export function emofuse(args: readonly string[], opts: RunOptions = {}): Promise<Run> {
  return new Promise((resolve) => {
    const env = { ...process.env, EMOFUSE_DEBUG: undefined, ...opts.env } as unknown as Record<string, string>;
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    execFile(
      process.execPath,
      [bin, ...args],
      { env, cwd: opts.cwd, timeout: opts.timeoutMs ?? 180_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const e = err as (Error & { code?: number | string; signal?: string }) | null;
        resolve({
          code: e ? (typeof e.code === 'number' ? e.code : e.signal ? 128 : -1) : 0,
          stdout: String(stdout),
          stderr: String(stderr),
        });
      },
    );
  });
}

/** Bundles the CLI from the current sources (packages/cli/build.mjs). */
export async function buildCli(): Promise<void> {
  await promisify(execFile)(process.execPath, [join(root, 'packages/cli/build.mjs')]);
}
