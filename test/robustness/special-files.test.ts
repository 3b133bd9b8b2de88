// Nothing hangs on a non-regular file: a FIFO, a socket or a device given where a file (or folder) is read is refused
// before the command starts (exit 2, the flag, the path and what it is), through the built CLI. Reading a FIFO with
// no writer blocks forever, so each case has a 10 s timeout: a hang fails the test instead of stalling the suite.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, emofuse } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-special-'));
const fifo = join(tmp, 'pipe');
const sock = join(tmp, 'sock');
const out = join(tmp, 'out');
let server: Server;

beforeAll(async () => {
  await buildCli();
  execFileSync('mkfifo', [fifo]);
  server = createServer();
  await new Promise<void>((res) => server.listen(sock, res));
}, 120_000);

afterAll(async () => {
  await new Promise<void>((res) => server.close(() => res()));
  rmSync(tmp, { recursive: true, force: true });
});

/** [flag shown in the message, the command line with `p` where the flag's path goes]. */
const cases: [string, (p: string) => string[]][] = [
  ['--features', (p) => ['train', '--features', p, '--backend', 'cpu', '--out', out]],
  ['--features', (p) => ['train', '--features', `${join(tmp, 'missing')},${p}`, '--backend', 'cpu', '--out', out]],
  ['--features', (p) => ['eval', '--checkpoint', join(tmp, 'missing.safetensors'), '--features', p]],
  ['--checkpoint', (p) => ['eval', '--checkpoint', p, '--synthetic']],
  ['--checkpoint', (p) => ['predict', '--checkpoint', p, '--text', 'hello']],
  ['--checkpoint', (p) => ['export', '--checkpoint', p, '--onnx', join(out, 'm.onnx')]],
  ['--data', (p) => ['extract', '--dataset', 'manifest', '--data', p, '--out', out, '--no-progress']],
  ['--manifest', (p) => ['predict', '--manifest', p]],
  ['--audio', (p) => ['predict', '--audio', p, '--text', 'hello']],
  ['--label-map', (p) => ['train', '--synthetic', '--label-map', p, '--backend', 'cpu', '--out', out]],
  ['--text-from', (p) => ['analyze', join(tmp, 'missing.wav'), '--text-from', p]],
  ['<recording>', (p) => ['analyze', p]],
];

describe('non-regular files are refused at once', () => {
  it.each(cases.map(([flag, args], i) => [`${args('x')[0]} ${flag} (case ${i + 1})`, flag, args] as const))(
    'a FIFO as %s',
    async (_name, flag, args) => {
      const r = await emofuse(args(fifo), { timeoutMs: 10_000 });
      expect(r.stderr).toContain(`${flag} ${fifo} is a FIFO (named pipe), not a file`);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
    },
    15_000,
  );

  it('a socket as --features', async () => {
    const r = await emofuse(['train', '--features', sock, '--backend', 'cpu', '--out', out], { timeoutMs: 10_000 });
    expect(r.stderr).toContain(`--features ${sock} is a socket, not a file`);
    expect(r.code).toBe(2);
  }, 15_000);

  it('/dev/null as --checkpoint: a character device', async () => {
    const r = await emofuse(['eval', '--checkpoint', '/dev/null', '--synthetic'], { timeoutMs: 10_000 });
    expect(r.stderr).toContain('--checkpoint /dev/null is a character device, not a file');
    expect(r.code).toBe(2);
  }, 15_000);
});
