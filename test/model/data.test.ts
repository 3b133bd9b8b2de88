// Bad training input stops before any step with a message naming the place and the fix; checkpoints round-trip.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CpuBackend,
  DataError,
  epochOrder,
  inverseFrequencyWeights,
  learningRate,
  memoryFeatureSplit,
  readArraysFile,
  readSafetensors,
  syntheticBimodal,
  train,
  writeSafetensors,
  type FeatureSet,
} from '@emofuse/model';

const dir = mkdtempSync(join(tmpdir(), 'emofuse-data-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const utt = (id: string, label: string | number, text: unknown, audio: unknown) => ({ id, label, text, audio });
function arraysFile(splits: Record<string, unknown[]>): string {
  const p = join(dir, `a${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(p, JSON.stringify({ classNames: ['calm', 'angry'], textDim: 2, audioDim: 3, splits }));
  return p;
}
const good = () =>
  utt(
    'u',
    'calm',
    [[1, 2]],
    [
      [1, 2, 3],
      [4, 5, 6],
    ],
  );
const opts = { epochs: 1, batchSize: 2, lr: 1e-3, outDir: join(dir, 'run'), model: { width: 8, heads: 2 } };

describe('training input checks', () => {
  it('reads a valid arrays file', () => {
    const fs = readArraysFile(
      arraysFile({
        train: [
          good(),
          utt(
            'v',
            1,
            [
              [0, 0],
              [1, 1],
            ],
            [[1, 1, 1]],
          ),
        ],
      }),
    );
    expect(fs.splits.train!.size).toBe(2);
    expect(Array.from(fs.splits.train!.labels)).toEqual([0, 1]);
    const b = fs.splits.train!.batch([0, 1]);
    expect([b.Tt, b.Ta]).toEqual([2, 2]);
  });
  it('mismatched widths name the utterance, the token and the declared width', () => {
    const p = arraysFile({ train: [good(), utt('bad', 'calm', [[1, 2, 3]], [[1, 2, 3]])] });
    expect(() => readArraysFile(p)).toThrow(/splits\.train\[1\] \(id 'bad'\): text\[0\] has 3 values, but textDim is 2/);
  });
  it('unknown labels list the known classes', () => {
    const p = arraysFile({ train: [utt('x', 'happy', [[1, 2]], [[1, 2, 3]])] });
    expect(() => readArraysFile(p)).toThrow(/label 'happy' is not one of classNames \(calm, angry\)/);
  });
  it('non-numbers (JSON has no NaN: null) are refused', () => {
    const p = arraysFile({ train: [utt('x', 'calm', [[1, null]], [[1, 2, 3]])] });
    expect(() => readArraysFile(p)).toThrow(/text\[0\]\[1\] is null, not a finite number/);
  });
  it('NaN features in a FeatureSet stop training before the first step', async () => {
    const mk = (id: string, v: number) => ({
      id,
      label: 0,
      text: Float32Array.of(1, v),
      textLen: 1,
      audio: Float32Array.of(1, 2, 3),
      audioLen: 1,
    });
    const fs: FeatureSet = {
      classNames: ['calm', 'angry'],
      textDim: 2,
      audioDim: 3,
      textEncoder: 't',
      audioEncoder: 'a',
      splits: { train: memoryFeatureSplit([mk('a', 1), mk('nan-one', Number.NaN)], 2, 3), dev: memoryFeatureSplit([mk('d', 1)], 2, 3) },
    };
    await expect(train(new CpuBackend(), fs, opts)).rejects.toThrow(
      /split 'train', utterance 'nan-one': text feature \[token 0, channel 1\] is NaN/,
    );
  });
  it('text-only features (no audio tokens) train the text variant and stop the others', async () => {
    const mk = (id: string, label: number) => ({
      id,
      label,
      text: Float32Array.of(1, label),
      textLen: 1,
      audio: new Float32Array(0),
      audioLen: 0,
    });
    const split = () => memoryFeatureSplit([mk('a', 0), mk('b', 1)], 2, 1);
    const fs: FeatureSet = {
      classNames: ['calm', 'angry'],
      textDim: 2,
      audioDim: 1,
      textEncoder: 't',
      audioEncoder: 'none',
      splits: { train: split(), dev: split() },
    };
    await expect(train(new CpuBackend(), fs, opts)).rejects.toThrow(
      /utterance 'a': no audio tokens \(a text-only cache trains only --fusion text\)/,
    );
    const r = await train(new CpuBackend(), fs, { ...opts, outDir: join(dir, 'text-only'), model: { ...opts.model, fusion: 'text' } });
    expect(r.steps).toBe(1);
  });
  it('an empty or missing split stops training with its name', async () => {
    const fs = readArraysFile(arraysFile({ train: [good()], dev: [] }));
    await expect(train(new CpuBackend(), fs, opts)).rejects.toThrow(DataError);
    await expect(train(new CpuBackend(), fs, opts)).rejects.toThrow(/split 'dev' is empty/);
    await expect(train(new CpuBackend(), fs, { ...opts, devSplit: 'valid' })).rejects.toThrow(
      /has no split 'valid' \(it has: train, dev\)/,
    );
  });
});

describe('training helpers', () => {
  it('a batch at the model shape is truncated, padded with label -1 rows, and equal to the longest-padded batch where they overlap', () => {
    const mk = (id: string, label: number, T: number, A: number) => ({
      id,
      label,
      text: Float32Array.from({ length: T * 2 }, (_, i) => i + 1),
      textLen: T,
      audio: Float32Array.from({ length: A * 3 }, (_, i) => -i - 1),
      audioLen: A,
    });
    const split = memoryFeatureSplit([mk('a', 1, 3, 1), mk('b', 0, 1, 4)], 2, 3);
    const b = split.batch([1, 0], { rows: 3, Tt: 2, Ta: 3 });
    expect([b.Tt, b.Ta, b.text.length, b.audio.length]).toEqual([2, 3, 3 * 2 * 2, 3 * 3 * 3]);
    expect(Array.from(b.labels)).toEqual([0, 1, -1]);
    expect(Array.from(b.textMask)).toEqual([1, 0, 1, 1, 0, 0]); // 'a' (3 tokens) truncated to 2, padding row empty
    expect(Array.from(b.audioMask)).toEqual([1, 1, 1, 1, 0, 0, 0, 0, 0]);
    expect(Array.from(b.text.subarray(4, 8))).toEqual([1, 2, 3, 4]);
    expect(Array.from(b.audio.subarray(0, 9))).toEqual([-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    const loose = split.batch([1, 0]);
    expect([loose.Tt, loose.Ta, Array.from(loose.labels)]).toEqual([3, 4, [0, 1]]);
    expect(() => split.batch([0, 1], { rows: 1, Tt: 2, Ta: 2 })).toThrow(/2 utterances do not fit a batch of 1/);
  });
  it('inverse-frequency weights are n / (K n_k)', () => {
    expect(inverseFrequencyWeights([0, 0, 0, 1], 3)).toEqual([4 / 9, 4 / 3, 0]);
  });
  it('epoch orders are seeded permutations, different per epoch', () => {
    const a = epochOrder(50, 1, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochOrder(50, 1, 0)).toEqual(a);
    expect(epochOrder(50, 1, 1)).not.toEqual(a);
  });
  it('the schedule warms up linearly then decays to minLr', () => {
    const o = { lr: 1, minLr: 0.1, warmup: 4, total: 14, decay: 'cosine' as const };
    expect(learningRate(0, o)).toBeCloseTo(0.25, 12);
    expect(learningRate(3, o)).toBeCloseTo(1, 12);
    expect(learningRate(13, o)).toBeCloseTo(0.1, 12);
    expect(learningRate(8, { ...o, decay: 'linear' })).toBeCloseTo(0.1 + 0.9 * (1 - 4 / 9), 12);
  });
  it('safetensors round-trip, and the header follows the spec (u64 length, JSON, F32 offsets)', () => {
    const p = join(dir, 'x.safetensors');
    const t = new Map([
      ['w', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 4, 5, -6.5) }],
      ['b', { shape: [1], data: Float32Array.of(7) }],
    ]);
    writeSafetensors(p, t, { note: 'hi' });
    const raw = readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString());
    expect(header.w).toEqual({ dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    expect(header.b).toEqual({ dtype: 'F32', shape: [1], data_offsets: [24, 28] });
    expect(raw.length).toBe(8 + n + 28);
    const back = readSafetensors(p);
    expect(Array.from(back.tensors.get('w')!.data)).toEqual([1, 2, 3, 4, 5, -6.5]);
    expect(back.metadata.note).toBe('hi');
  });
  it('the synthetic task draws all four classes about equally', () => {
    const fs = syntheticBimodal({ train: 400, dev: 4, test: 4 });
    const counts = [0, 0, 0, 0];
    for (const y of fs.splits.train!.labels) counts[y]! += 1;
    for (const c of counts) expect(c).toBeGreaterThan(70);
  });
});
