// The README's main command: the whole pipeline on the built-in controlled benchmark, then run again, when
// every step must resume from what the first run left instead of starting over.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}packages/cli/bin/emofuse.js`;
const out = mkdtempSync(join(tmpdir(), 'emofuse-quickstart-'));

beforeAll(async () => {
  await run(process.execPath, [`${root}packages/cli/build.mjs`]);
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('emofuse quickstart', () => {
  it('makes the dataset, extracts, trains on the wgsl kernels and evaluates; a second run resumes', async () => {
    const first = await run(process.execPath, [bin, 'quickstart', '--out', out, '--epochs', '2'], { timeout: 300_000 });
    expect(first.stdout).toMatch(/== 4\/4 evaluate/);
    expect(first.stdout).toMatch(/quickstart done/);
    const metrics = JSON.parse(readFileSync(join(out, 'run', 'eval-test', 'metrics.json'), 'utf8'));
    expect(metrics.split).toBe('test');
    expect(metrics.n).toBeGreaterThan(50); // the controlled benchmark's test split: speakers unseen in training
    expect(metrics.weightedF1).toBeGreaterThanOrEqual(0);
    expect(existsSync(join(out, 'run', 'eval-test', 'confusion.png'))).toBe(true);

    const second = await run(process.execPath, [bin, 'quickstart', '--out', out, '--epochs', '2'], { timeout: 300_000 });
    expect(second.stdout).toMatch(/train .*--resume/);
    expect(second.stdout).toMatch(/quickstart done/);
  });

  it('predict classifies a labelled CSV manifest of test clips and writes JSONL', async () => {
    const rows = readFileSync(join(out, 'data', 'manifest.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.split === 'test')
      .slice(0, 6);
    const csv = join(out, 'some.csv');
    writeFileSync(
      csv,
      'id,audio,text,label\n' +
        rows.map((r) => [r.id, join(out, 'data', r.audio), JSON.stringify(r.text), r.label].join(',')).join('\n') +
        '\n',
    );
    const jsonl = join(out, 'pred.jsonl');
    const r = await run(
      process.execPath,
      [bin, 'predict', '--checkpoint', join(out, 'run', 'best.safetensors'), '--manifest', csv, '--out', jsonl],
      { timeout: 120_000 },
    );
    expect(r.stdout).toMatch(/accuracy [\d.]+% on 6 labelled utterances/);
    const preds = readFileSync(jsonl, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(preds.map((p) => p.id)).toEqual(rows.map((x) => x.id));
    for (const p of preds) {
      const total = Object.values(p.probabilities as Record<string, number>).reduce((a, b) => a + b, 0);
      expect(total).toBeCloseTo(1, 5);
      expect(p.transcribed).toBe(false);
    }
  });

  it('predict without --text and without a Whisper model says how to fix it (offline), no stack trace', async () => {
    const clip = readFileSync(join(out, 'data', 'manifest.jsonl'), 'utf8').split('\n')[0]!;
    const audio = join(out, 'data', JSON.parse(clip).audio);
    const err = await run(process.execPath, [bin, 'predict', '--checkpoint', join(out, 'run', 'best.safetensors'), '--audio', audio], {
      timeout: 120_000,
      env: { ...process.env, EMOFUSE_OFFLINE: '1', EMOFUSE_MODELS: join(out, 'no-models') },
    }).catch((e) => e);
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/no speech recognition model/);
    expect(err.stderr).toMatch(/--text/);
    expect(err.stderr).not.toMatch(/\s+at /);
  });
});
