// Signals and closed pipes end a command as shells expect, through the built CLI: SIGTERM exits 143 and SIGINT 130
// (128 + the signal's number) after `train` / `extract` saved what they had, so the same command resumes; output
// into a pipe whose reader has gone (`emofuse extract --help | head -1`) ends quietly, never with a stack trace.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';
import { makeManifestDataset } from './inputs.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-signals-'));
const small = ['--backend', 'cpu', '--width', '16', '--heads', '2', '--layers', '1', '--batch-size', '4', '--no-progress'];
const stackTrace = /Unhandled 'error' event|\n\s+at |unexpected error/;

beforeAll(() => buildCli(), 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The built CLI with `args`; `onStderr` sees stderr as it grows (to send a signal at the right moment); `closeStdout`
 * destroys the stdout pipe before the command writes anything. Killed after `timeoutMs`.
 */
function run(
  args: string[],
  o: {
    onStderr?: (soFar: string, kill: (s: NodeJS.Signals) => void) => void;
    closeStdout?: boolean;
    timeoutMs?: number;
    env?: Record<string, string>;
  } = {},
): Promise<Spawned> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...o.env };
    delete env.EMOFUSE_DEBUG;
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const r: Spawned = { code: null, signal: null, stdout: '', stderr: '' };
    const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
    if (o.closeStdout) child.stdout.destroy();
    else child.stdout.on('data', (d) => (r.stdout += d));
    child.stderr.on('data', (d) => {
      r.stderr += d;
      o.onStderr?.(r.stderr, (s) => child.kill(s));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ ...r, code, signal });
    });
  });
}

/** Sends `sig` once, the first time stderr matches `when`. */
const signalOn = (when: RegExp, sig: NodeJS.Signals) => {
  let sent = false;
  return (soFar: string, kill: (s: NodeJS.Signals) => void) => {
    if (!sent && when.test(soFar)) {
      sent = true;
      kill(sig);
    }
  };
};

describe('signals exit 128 + the signal number, after saving', () => {
  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    'train killed with %s after its first epoch exits %i and resumes',
    async (sig, code) => {
      const out = join(tmp, `train-${sig}`);
      const args = ['train', '--synthetic', '--epochs', '40', '--out', out, ...small];
      const r = await run(args, { onStderr: signalOn(/^epoch 1:/m, sig) });
      expect(r.stderr).toMatch(/stopped at step \d+ \(.*last\.safetensors saved\)\. Continue with:\n.*--resume/);
      expect(r.stderr).not.toMatch(stackTrace);
      expect(r.code).toBe(code);
      expect(existsSync(join(out, 'last.safetensors'))).toBe(true);
      // the run it left continues: the same command with --resume (and fewer epochs to wait for) trains on to the end
      const again = await emofuse([...args.map((a, i) => (args[i - 1] === '--epochs' ? '3' : a)), '--resume'], { timeoutMs: 60_000 });
      expect(again.stderr).toContain('(resuming)');
      expect(again.code).toBe(0);
    },
    90_000,
  );

  it('extract killed with SIGTERM exits 143, and the same command resumes', async () => {
    const dir = join(tmp, 'extract');
    const manifest = makeManifestDataset(dir, 30);
    const out = join(dir, 'cache');
    const args = ['extract', '--dataset', 'manifest', '--data', manifest, '--out', out, '--shard-size', '4', '--batch-size', '4'];
    // a progress line after every shard (stderr is a pipe here): the signal comes once the first shard is saved
    const r = await run(args, { onStderr: signalOn(/^extract: [1-9]\d*\//m, 'SIGTERM'), env: { EMOFUSE_PROGRESS_SECONDS: '0' } });
    expect(r.stderr).toMatch(/interrupted; resume by running the same command/);
    expect(r.stderr).not.toMatch(stackTrace);
    expect(r.code).toBe(143);
    const again = await emofuse([...args, '--no-progress'], { timeoutMs: 60_000 });
    expect(again.stdout).toMatch(/wrote feature cache .*\(resumed after [1-9]\d* utterances\)/);
    expect(again.code).toBe(0);
  }, 90_000);
});

describe('output into a closed pipe ends quietly', () => {
  it.each([['--help'], ['extract', '--help'], ['train', '--help'], ['predict', '--help']])('emofuse %s: exit 0', async (...args) => {
    const r = await run(args, { closeStdout: true, timeoutMs: 20_000 });
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    expect(r.code).toBe(0);
  });

  it('a command cut off before its summary: exit 141 (128 + SIGPIPE), no stack trace', async () => {
    const r = await run(['train', '--synthetic', '--epochs', '1', '--out', join(tmp, 'epipe'), ...small], { closeStdout: true });
    expect(r.stderr).toMatch(/^epoch 1:/m);
    expect(r.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    expect(r.code).toBe(141);
  }, 60_000);
});
