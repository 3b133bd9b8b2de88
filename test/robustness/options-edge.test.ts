// Accepted without a word, option side (issue 23): numbers every flag shares one parser for (integers written as
// digits only, decimal numbers, nothing that overflows to Infinity), settings checked against each other (--min-lr
// above --lr), ablate's duplicate --variants / --seeds, bench --out naming a folder, a class with no training
// examples (a warning), and make-dataset's temp files of a killed run. Each case runs the built CLI; a refusal is
// exit 2 with the flag and the reason, before any work starts.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli, emofuse } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-options-'));
const small = ['--backend', 'cpu', '--width', '16', '--heads', '2', '--epochs', '1', '--batch-size', '4', '--no-progress'];
const train = (...extra: string[]) => ['train', '--synthetic', ...small, ...extra, '--out', join(tmp, 'run')];

beforeAll(() => buildCli(), 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** [arguments, what the message must say]: each is refused with exit 2 and no "unexpected error". */
const refused: [string[], RegExp][] = [
  // integers: digits only
  [train('--epochs', '0x2'), /--epochs must be an integer >= 1, got '0x2' \(not a decimal number\)/],
  [train('--epochs', '1e3'), /--epochs .*got '1e3' \(write 1000 as digits only\)/],
  [train('--epochs', '2.0'), /--epochs .*got '2.0' \(write 2 as digits only\)/],
  [train('--epochs', ' 3'), /--epochs .*got ' 3' \(not a decimal number\)/],
  [train('--epochs', '+4'), /--epochs .*got '\+4' \(write 4 as digits only\)/],
  [train('--layers', '0x1'), /--layers/],
  [train('--seed', '1e400'), /--seed .*not a finite number/],
  [['ablate', '--synthetic', ...small, '--seeds', '0,0x1', '--out', join(tmp, 'ab')], /--seeds .*0x1/],
  [['bench', 'kernels', '--iterations', '1e1', '--out', join(tmp, 'b.json')], /--iterations .*digits only/],
  [['make-dataset', 'controlled', '--out', join(tmp, 'md'), '--size', '0x10'], /--size .*not a decimal number/],
  // numbers: finite, decimal
  [train('--lr', '1e400'), /--lr must be a number > 0, got '1e400' \(not a finite number\)/],
  [train('--dropout', '1e400'), /--dropout .*not a finite number/],
  [train('--weight-decay', '-1e400'), /--weight-decay .*not a finite number/],
  [train('--lr', '0x1'), /--lr .*not a decimal number/],
  [train('--lr', ''), /--lr .*not a decimal number/],
  [train('--class-weights', '1e400,1'), /--class-weights .*not a finite number/],
  // settings against each other
  [train('--min-lr', '0.1', '--lr', '0.01'), /--min-lr 0.1 is above --lr 0.01/],
  [train('--min-lr', '0.001'), /--min-lr 0.001 is above --lr 0.0005/],
  // ablate: duplicates, before any data is read
  [
    ['ablate', '--features', join(tmp, 'missing.json'), ...small, '--variants', 'cross,mean,cross', '--out', join(tmp, 'ab')],
    /--variants names cross twice/,
  ],
  [['ablate', '--features', join(tmp, 'missing.json'), ...small, '--seeds', '1,0,1', '--out', join(tmp, 'ab')], /--seeds names 1 twice/],
  [['ablate', '--synthetic', ...small, '--resume', '--force', '--out', join(tmp, 'ab')], /--resume.*--force/],
  // bench --out a folder: refused before the bench runs
  [['bench', 'kernels', '--quick', '--out', tmp], /--out .* is a folder/],
  [['bench', 'kernels', '--quick', '--out', join(tmp, 'b.json'), '--markdown', tmp], /--markdown .* is a folder/],
];

describe('options: refused up front', () => {
  for (const [args, says] of refused) {
    it(args.map((a) => (a === '' ? "''" : a.replace(tmp, '<tmp>'))).join(' '), async () => {
      const r = await emofuse(args, { timeoutMs: 60_000 });
      const out = r.stdout + r.stderr;
      expect(r.code, out).toBe(2);
      expect(out).toMatch(says);
      expect(out).not.toMatch(/unexpected error|\n\s+at /);
    }, 90_000);
  }

  it('bench --out a folder leaves no temp file there', () => {
    expect(readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('options: accepted', () => {
  it('integers and numbers in their plain spellings still train', async () => {
    const r = await emofuse(train('--epochs', '1', '--lr', '3e-3', '--min-lr', '.0001', '--dropout', '0.', '--seed', '-0', '--force'));
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);
});

describe('a class with no training examples', () => {
  it('train warns naming the class, then trains', async () => {
    const item = (id: string, label: number) => ({ id, label, text: [[0.1, 0.2]], audio: [[0.5, 0.1, 0.2]] });
    const file = join(tmp, 'arrays.json');
    const split = (p: string, labels: number[]) => labels.map((l, i) => item(`${p}${i}`, l));
    writeFileSync(
      file,
      JSON.stringify({
        classNames: ['a', 'b', 'unseen'],
        textDim: 2,
        audioDim: 3,
        splits: { train: split('t', [0, 1, 0, 1]), dev: split('d', [0, 2]), test: split('s', [1, 2]) },
      }),
    );
    const r = await emofuse(['train', '--features', file, ...small, '--out', join(tmp, 'unseen')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: class 'unseen' has no examples in the 'train' split/);
  }, 180_000);
});

describe('make-dataset after a kill', () => {
  const espeak = spawnSync('espeak-ng', ['--version']).status === 0;
  it.skipIf(!espeak)(
    'removes the *.tmp-PID files a killed run left',
    async () => {
      const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
      const out = join(tmp, 'controlled');
      mkdirSync(join(out, 'wavs'), { recursive: true });
      const orphans = [join(out, `manifest.jsonl.tmp-${dead}`), join(out, 'wavs', `c-0000.wav.tmp-${dead}.wav`)];
      for (const f of orphans) writeFileSync(f, 'half');
      const r = await emofuse(['make-dataset', 'controlled', '--out', out, '--size', '4', '--no-progress']);
      expect(r.code, r.stderr).toBe(0);
      for (const f of orphans) expect(existsSync(f), f).toBe(false);
      expect(execFileSync('find', [out, '-name', '*.tmp-*']).toString()).toBe('');
    },
    180_000,
  );
});
