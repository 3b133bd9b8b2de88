// `emofuse extract --augment` as a user runs it: a bad item exits 2 naming it and the accepted forms, the index records
// the list, and resuming a cache with another --augment exits 2 naming the flag.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { buildCli, emofuse } from '../helpers/cli.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-extract-augment-'));
const manifest = join(tmp, 'manifest.csv');

beforeAll(async () => {
  await buildCli();
  const rows = ['id,text,audio,label,split,speaker'];
  for (let i = 0; i < 4; i++) {
    const wav = new WaveFile();
    const n = 16000 * (0.4 + 0.1 * i);
    wav.fromScratch(
      1,
      16000,
      '16',
      Array.from({ length: n }, (_, k) => Math.round(8000 * Math.sin((2 * Math.PI * (180 + 30 * i) * k) / 16000))),
    );
    writeFileSync(join(tmp, `u${i}.wav`), wav.toBuffer());
    rows.push(`u${i},utterance ${i},u${i}.wav,${i % 2 ? 'joy' : 'anger'},${i < 3 ? 'train' : 'dev'},spk${i % 2}`);
  }
  writeFileSync(manifest, rows.join('\n') + '\n');
});

const extract = (out: string, augment: string) =>
  emofuse(['extract', '--dataset', 'manifest', '--data', manifest, '--augment', augment, '--out', join(tmp, out), '--no-progress']);

describe('emofuse extract --augment', () => {
  it('exits 2 on a bad item, naming it and the accepted forms', async () => {
    for (const bad of ['speed:0', 'noise:abc', 'pitch:2']) {
      const r = await extract(`bad-${bad.replace(':', '-')}`, `speed:0.9,${bad}`);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(
        `--augment: '${bad}' is not an augmentation; accepted: speed:F (F in [0.5, 2], e.g. speed:0.9) or noise:SNR`,
      );
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('records the list and refuses to resume the cache with another --augment', async () => {
    const r = await extract('cache', 'speed:1.1,noise:20');
    expect(r.code, r.stderr).toBe(0);
    const index = JSON.parse(readFileSync(join(tmp, 'cache/index.json'), 'utf8'));
    expect(index.augment).toEqual({ version: 1, list: ['speed:1.1', 'noise:20'] });
    expect(index.splits.train.ids).toEqual([
      'u0',
      'u0~speed1.1',
      'u0~noise20',
      'u1',
      'u1~speed1.1',
      'u1~noise20',
      'u2',
      'u2~speed1.1',
      'u2~noise20',
    ]);
    expect(index.splits.dev.ids).toEqual(['u3']);
    const again = await extract('cache', 'speed:0.9');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(
      'was extracted with --augment speed:1.1,noise:20 (augmentation version 1), this run asks for --augment speed:0.9',
    );
    const plain = await emofuse(['extract', '--dataset', 'manifest', '--data', manifest, '--out', join(tmp, 'cache'), '--no-progress']);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toContain('this run asks for --augment none');
  });
});
