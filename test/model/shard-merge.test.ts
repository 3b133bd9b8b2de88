// Extraction that scales out: 3 local processes each run `emofuse extract --shard K/3` into the same --out (as the
// pods of a Kubernetes Indexed Job or the tasks of a Slurm array would), `emofuse cache merge` joins the parts, and
// the merged cache equals a single process's: the same shard files byte for byte (tensors, ids, labels, splits),
// the same splits and failures in index.json. Also: K/N from the engines' environment, and the refusals.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFeatureCache, readCacheIndex, resolveShard } from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';
import { buildCli, emofuse as runCli } from '../helpers/cli.ts';

const wavs = join(modelSettings.assetsDir, 'emodb/wav');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-shard-'));
const emofuse = (args: string[]) => runCli(args, { timeoutMs: 300_000 });

/** A manifest of 29 EmoDB clips and 2 broken ones (missing, empty): failures land in two different parts. */
function manifest(): string {
  const dir = join(tmp, 'data');
  mkdirSync(join(dir, 'wav'), { recursive: true });
  const names = [
    '03a01Fa',
    '03a01Nc',
    '03a01Wa',
    '03a02Fc',
    '03a02Nc',
    '03a02Ta',
    '03a02Wb',
    '03a02Wc',
    '03a04Ad',
    '03a04Fd',
    '03a04Lc',
    '03a04Nc',
    '03a04Ta',
    '03a04Wc',
    '03a05Aa',
    '03a05Fc',
    '03a05Nd',
    '03a05Tc',
    '03a05Wa',
    '03a05Wb',
    '03a07Fa',
    '03a07Fb',
    '03a07La',
    '03a07Nc',
    '03a07Wc',
    '03b01Fa',
    '03b01Lb',
    '03b01Nb',
    '03b01Td',
  ];
  const rows = ['id,text,audio,label,split'];
  names.forEach((n, i) => {
    copyFileSync(join(wavs, `${n}.wav`), join(dir, 'wav', `${n}.wav`));
    rows.push(
      `${n},utterance number ${i} said ` +
        `${'again '.repeat(i % 7)},wav/${n}.wav,${['anger', 'neutral', 'joy'][i % 3]},${i % 4 === 3 ? 'dev' : 'train'}`,
    );
    if (i === 4) rows.push('gone,a clip that is missing,wav/gone.wav,joy,train');
    if (i === 11) rows.push('empty,a clip that is empty,wav/empty.wav,anger,dev');
  });
  writeFileSync(join(dir, 'wav', 'empty.wav'), '');
  writeFileSync(join(dir, 'm.csv'), rows.join('\n') + '\n');
  return join(dir, 'm.csv');
}

beforeAll(async () => {
  await buildCli();
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('extract --shard K/N on 3 processes + cache merge', () => {
  it.runIf(existsSync(wavs))(
    'equals one process: the same shard files byte for byte, splits and failures',
    async () => {
      const data = manifest();
      const common = [
        'extract',
        '--dataset',
        'manifest',
        '--data',
        data,
        '--text-encoder',
        'hash',
        '--audio-encoder',
        'logmel',
        '--shard-size',
        '8',
        '--batch-size',
        '3',
        '--no-progress',
      ];
      const single = join(tmp, 'single');
      const sharded = join(tmp, 'sharded');
      const [one, ...parts] = await Promise.all([
        emofuse([...common, '--out', single]),
        ...[0, 1, 2].map((k) => emofuse([...common, '--out', sharded, '--shard', `${k}/3`])),
      ]);
      for (const r of [one, ...parts]) expect(r.code, r.stderr).toBe(0);
      // a part is not a cache to train on
      const part1 = readCacheIndex(join(sharded, 'part-1-of-3'));
      expect(part1.part).toEqual({ index: 1, count: 3, items: 10, shardSize: 8 });
      expect(() => openFeatureCache(join(sharded, 'part-1-of-3'))).toThrow(/partial cache \(part 1 of 3.*cache merge/);

      const m = await emofuse(['cache', 'merge', sharded]);
      expect(m.code, m.stderr).toBe(0);
      expect(m.stdout).toMatch(/merged 3 parts/);
      const a = readCacheIndex(single);
      const b = readCacheIndex(sharded);
      expect(a.shards.length).toBe(4); // 31 items in shards of 8
      expect(b.shards).toEqual(a.shards); // file names, item ranges, sizes and sha256 of every shard
      for (const s of a.shards) expect(readFileSync(join(sharded, s.file)).equals(readFileSync(join(single, s.file)))).toBe(true);
      expect(b.splits).toEqual(a.splits);
      expect(b.failures).toEqual(a.failures);
      expect(a.failures.map((f) => f.id)).toEqual(['gone', 'empty']);
      expect({ ...b, throughput: 0, seconds: 0 }).toEqual({ ...a, throughput: 0, seconds: 0 });
      // and it opens and reads like the single run's
      const fa = openFeatureCache(single);
      const fb = openFeatureCache(sharded);
      const idx = Array.from({ length: fa.splits.train!.size }, (_, i) => i);
      expect(fb.splits.train!.batch(idx).text).toEqual(fa.splits.train!.batch(idx).text);
    },
    600_000,
  );

  it.runIf(existsSync(wavs))(
    'refuses a missing part, a part from another extraction, and resuming with another --shard',
    async () => {
      const data = manifest();
      const common = [
        'extract',
        '--dataset',
        'manifest',
        '--data',
        data,
        '--text-encoder',
        'hash',
        '--audio-encoder',
        'logmel',
        '--no-progress',
      ];
      const out = join(tmp, 'refuse');
      expect((await emofuse([...common, '--out', out, '--shard', '0/2', '--limit', '6'])).code).toBe(0);
      const r = await emofuse(['cache', 'merge', out]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/parts 1 of 2 are missing.*--shard K\/2/);
      expect((await emofuse([...common, '--out', out, '--shard', '1/2', '--limit', '7'])).code).toBe(0); // other dataset contents (7 items)
      const r2 = await emofuse(['cache', 'merge', out]);
      expect(r2.code).toBe(2);
      expect(r2.stderr).toMatch(/other dataset contents/);
      const r3 = await emofuse([...common, '--out', join(out, 'part-0-of-2'), '--limit', '6']);
      expect(r3.code).toBe(2);
      expect(r3.stderr).toMatch(/holds part 0\/2, this run writes a whole cache/);
      const r4 = await emofuse([...common, '--out', out, '--shard', '3/2']);
      expect(r4.code).toBe(2);
      expect(r4.stderr).toMatch(/--shard 3\/2: part 3 of 2: K must be an integer in \[0, N\)/);
    },
    600_000,
  );
});

describe('--shard from the cluster engine', () => {
  it('K/N given; a Kubernetes Indexed Job (auto/N); a Slurm array (auto), 0- or 1-based', () => {
    expect(resolveShard('2/5', {})).toEqual({ index: 2, count: 5 });
    expect(resolveShard('auto/4', { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 3, count: 4 });
    const slurm = (id: number, min: number, n: number) => ({
      SLURM_ARRAY_TASK_ID: String(id),
      SLURM_ARRAY_TASK_MIN: String(min),
      SLURM_ARRAY_TASK_MAX: String(min + n - 1),
      SLURM_ARRAY_TASK_COUNT: String(n),
    });
    expect(resolveShard('auto', slurm(0, 0, 3))).toEqual({ index: 0, count: 3 });
    expect(resolveShard('auto', slurm(3, 1, 3))).toEqual({ index: 2, count: 3 });
  });
  it('says what is missing or wrong', () => {
    expect(() => resolveShard('auto', { JOB_COMPLETION_INDEX: '1' })).toThrow(/completions.*--shard auto\/N/);
    expect(() => resolveShard('auto', {})).toThrow(/neither JOB_COMPLETION_INDEX .* nor SLURM_ARRAY_TASK_ID/);
    expect(() => resolveShard('auto/3', { JOB_COMPLETION_INDEX: '3' })).toThrow(/part 3 of 3/);
    expect(() =>
      resolveShard('auto', {
        ...{
          SLURM_ARRAY_TASK_ID: '4',
          SLURM_ARRAY_TASK_MIN: '0',
          SLURM_ARRAY_TASK_MAX: '8',
          SLURM_ARRAY_TASK_COUNT: '3',
          SLURM_ARRAY_TASK_STEP: '4',
        },
      }),
    ).toThrow(/contiguous/);
    expect(() =>
      resolveShard('auto/2', {
        SLURM_ARRAY_TASK_ID: '0',
        SLURM_ARRAY_TASK_MIN: '0',
        SLURM_ARRAY_TASK_MAX: '2',
        SLURM_ARRAY_TASK_COUNT: '3',
      }),
    ).toThrow(/3 tasks/);
    expect(() => resolveShard('2', {})).toThrow(/K\/N/);
    expect(() => resolveShard('x/3', {})).toThrow(/expected K\/N/);
  });
});
