// ablate --resume (issue 23): a tiny synthetic ablation killed with SIGKILL while its second run trains, then
// resumed, ends with the same table as the same ablation run straight through (every score, parameter count and
// epoch count; train seconds aside). Also: a resume with other flags is refused naming the difference, and a used
// --out without --resume says how to continue.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-ablate-resume-'));
// every step saves last.safetensors, so the kill lands in a run with a checkpoint to resume from
const args = (out: string, ...extra: string[]) => [
  'ablate',
  '--synthetic',
  ...['--backend', 'cpu', '--width', '16', '--heads', '2', '--epochs', '3', '--batch-size', '16', '--save-every', '1'],
  ...['--variants', 'cross,mean', '--seeds', '0,1', '--no-progress', '--json', '--out', out, ...extra],
];

/** ablation.json without the wall-clock train seconds (never equal between two runs). */
function table(out: string): unknown {
  const r = JSON.parse(readFileSync(join(out, 'ablation.json'), 'utf8'));
  for (const row of r.rows) delete row.trainSeconds;
  return r;
}

beforeAll(() => buildCli(), 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('ablate --resume', () => {
  it('after kill -9 in the second run: the finished run is kept, the interrupted one resumed, the table as uninterrupted', async () => {
    const straight = join(tmp, 'straight');
    const killed = join(tmp, 'killed');
    const full = await emofuse(args(straight));
    expect(full.code, full.stderr).toBe(0);

    const child = spawn(process.execPath, [bin, ...args(killed)], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    const second = join(killed, 'cross-s1', 'last.safetensors'); // cross-s0 is done when cross-s1 saves
    let waited = 0;
    while (!existsSync(second) && waited < 120_000 && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 20));
      waited += 20;
    }
    child.kill('SIGKILL');
    await exited;
    expect(existsSync(join(killed, 'cross-s0', 'run.json'))).toBe(true);
    expect(existsSync(join(killed, 'cross-s1', 'run.json'))).toBe(false);
    expect(existsSync(join(killed, 'ablation.json'))).toBe(false);

    const again = await emofuse(args(killed));
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--resume/);

    const other = await emofuse(args(killed, '--resume', '--lr', '0.001'));
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/differs .*train\.lr was 0\.0005, now 0\.001/);

    const kept = statSync(join(killed, 'cross-s0', 'last.safetensors')).mtimeMs;
    const resumed = await emofuse(args(killed, '--resume'));
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(table(killed)).toEqual(table(straight));
    // the finished run was not trained again: its checkpoint is the one from before the kill
    expect(statSync(join(killed, 'cross-s0', 'last.safetensors')).mtimeMs).toBe(kept);
  }, 600_000);
});
