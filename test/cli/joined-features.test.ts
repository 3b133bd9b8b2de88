// `--features A,B` through the bundled CLI: two arrays files labelled differently are refused without a label map
// (exit 2, naming --label-map), train through a CSV label map prints each corpus's report, eval applies the
// checkpoint's map and prints each corpus's scores, ablate's table has a column pair per corpus, and encoders that
// differ are refused naming both sources.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'emofuse-cli-joined-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An arrays file whose label is written on one channel of every token (learnable), dims 4 x 3. */
function arraysFile(name: string, classNames: string[], seed: number, textDim = 4): string {
  let s = seed;
  const rand = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31 - 0.5;
  };
  const utt = (split: string, i: number) => {
    const label = i % classNames.length;
    const tokens = (n: number, dim: number) =>
      Array.from({ length: n }, () => Array.from({ length: dim }, (_, c) => (c === label % dim ? 2 : 0) + rand()));
    return { id: `${name}-${split}-${i}`, label: classNames[label], text: tokens(2 + (i % 3), textDim), audio: tokens(3 + (i % 4), 3) };
  };
  const file = join(dir, `${name}.json`);
  const splits = { train: Array.from({ length: 24 }, (_, i) => utt('train', i)), dev: Array.from({ length: 8 }, (_, i) => utt('dev', i)) };
  writeFileSync(file, JSON.stringify({ classNames, textDim, audioDim: 3, splits }));
  return file;
}

const a = arraysFile('tv', ['neutral', 'joy', 'anger'], 1);
const b = arraysFile('acted', ['calm', 'happy', 'angry'], 2);
const map = join(dir, 'map.csv');
writeFileSync(map, 'from,to\ncalm,neutral\nhappy,joy\nangry,anger\n');
const small = ['--width', '8', '--heads', '2', '--layers', '1', '--batch-size', '8', '--lr', '5e-3', '--no-progress'];

beforeAll(async () => {
  await buildCli();
  expect(existsSync(bin)).toBe(true);
}, 120_000);

describe('--features A,B', () => {
  it('refuses differently labelled files without --label-map, and files of other widths naming both', async () => {
    const r = await emofuse([
      'train',
      '--features',
      `${a},${b}`,
      '--epochs',
      '1',
      '--out',
      join(dir, 'refused'),
      '--backend',
      'cpu',
      ...small,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/labelled differently \(tv: neutral, joy, anger; acted: calm, happy, angry\).*--label-map meld7/);
    expect(r.stderr).not.toMatch(/\s+at /);
    const wide = arraysFile('wide', ['neutral', 'joy', 'anger'], 3, 5);
    const w = await emofuse([
      'train',
      '--features',
      `${a},${wide}`,
      '--epochs',
      '1',
      '--out',
      join(dir, 'refused'),
      '--backend',
      'cpu',
      ...small,
    ]);
    expect(w.code).toBe(2);
    expect(w.stderr).toMatch(/'tv' and 'wide' differ in text width .*'4' vs '5'/);
  });

  it('train through a label map prints each corpus report; eval and ablate score each corpus beside both', async () => {
    const out = join(dir, 'run');
    const t = await emofuse([
      'train',
      '--features',
      `${a},${b}`,
      '--label-map',
      map,
      '--epochs',
      '2',
      '--out',
      out,
      '--backend',
      'cpu',
      ...small,
    ]);
    expect(t.code).toBe(0);
    expect(t.stderr).toMatch(/joined features .*tv\.json \(tv\) \+ .*acted\.json \(acted\)/);
    expect(t.stderr).toMatch(/acted:\s+calm\s+-> neutral\s+train 8\s+dev 3/); // the progress log
    expect(t.stderr).toMatch(/tv: label map .*map\.csv: 3 labels onto 3 classes/);
    const e = await emofuse([
      'eval',
      '--checkpoint',
      join(out, 'best.safetensors'),
      '--features',
      `${a},${b}`,
      '--split',
      'dev',
      '--backend',
      'cpu',
    ]);
    expect(e.code).toBe(0);
    expect(e.stdout).toMatch(/labels read through the checkpoint's label map .*map\.csv/);
    expect(e.stdout).toMatch(/tv\s+8\s+[\d.]+/);
    expect(e.stdout).toMatch(/acted\s+8\s+[\d.]+/);
    const metrics = JSON.parse(readFileSync(join(out, 'eval-dev', 'metrics.json'), 'utf8'));
    expect(metrics.perCorpus.map((c: { corpus: string }) => c.corpus)).toEqual(['tv', 'acted']);
    expect(metrics.classNames).toEqual(['neutral', 'joy', 'anger']);
    const ab = join(dir, 'ablate');
    const r = await emofuse([
      'ablate',
      '--features',
      `${a},${b}`,
      '--label-map',
      map,
      '--variants',
      'concat',
      '--test-split',
      'dev',
      '--epochs',
      '1',
      '--out',
      ab,
      '--backend',
      'cpu',
      ...small,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/tv wF1\s+tv acc\s+acted wF1\s+acted acc/);
    expect(readFileSync(join(ab, 'ablation.md'), 'utf8')).toMatch(/\| tv wF1 \| tv acc \| acted wF1 \| acted acc \|/);
  }, 120_000);
});
