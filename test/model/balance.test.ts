// Corpus-balanced sampling (train --balance, train/data.ts balancedOrder): in a set joined from caches of very
// different sizes (MELD's 9,989 train utterances beside RAVDESS's 960 and EmoDB's 259), each corpus can be drawn
// equally often per epoch ('corpus') or in proportion to the square root of its size ('sqrt'). An epoch keeps its
// n draws (its step count), each corpus's draws are whole shuffled passes over it plus part of one more, the draws
// are a function of (seed, epoch), and a run stopped mid-epoch and resumed ends bit-for-bit where a straight one does.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '@emofuse/kernels';
import {
  CpuBackend,
  balancedOrder,
  corpusShares,
  epochBatches,
  joinFeatureSets,
  loadCheckpoint,
  memoryFeatureSplit,
  parseSettings,
  train,
  type FeatureSet,
  type TrainOptions,
  type UtteranceFeatures,
} from '@emofuse/model';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'emofuse-balance-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A learnable bimodal set of n train utterances: the label is a +3 on channel `label` of every token. */
function makeSet(seed: number, n: number, prefix: string): FeatureSet {
  const r = mulberry32(seed);
  const [Ct, Ca] = [6, 5];
  const make = (split: string, m: number): UtteranceFeatures[] =>
    Array.from({ length: m }, (_, i) => {
      const label = i % 3;
      const textLen = 2 + Math.floor(r() * 4);
      const audioLen = 3 + Math.floor(r() * 5);
      const text = Float32Array.from({ length: textLen * Ct }, (_, k) => (k % Ct === label ? 3 : 0) + r() - 0.5);
      const audio = Float32Array.from({ length: audioLen * Ca }, (_, k) => (k % Ca === label ? 3 : 0) + r() - 0.5);
      return { id: `${prefix}-${split}-${i}`, label, text, textLen, audio, audioLen };
    });
  return {
    classNames: ['neutral', 'joy', 'anger'],
    textDim: Ct,
    audioDim: Ca,
    textEncoder: 'hash',
    audioEncoder: 'logmel',
    splits: { train: memoryFeatureSplit(make('train', n), Ct, Ca), dev: memoryFeatureSplit(make('dev', 12), Ct, Ca) },
  };
}

const count = (xs: readonly string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());

describe('corpus-balanced epochs', () => {
  // a joined train split as the recipe's: RAVDESS, EmoDB, MELD train sizes, corpora interleaved as a join lists them
  const sizes = { ravdess: 960, emodb: 259, meld: 9989 };
  const corpora = Object.entries(sizes).flatMap(([c, m]) => Array.from({ length: m }, () => c));
  const n = corpora.length;

  it("shares: 'corpus' equal, 'sqrt' by the square root of the size, 'none' the sizes; always n in all", () => {
    expect(corpusShares([960, 259, 9989], 'corpus')).toEqual([3736, 3736, 3736]);
    expect(corpusShares([960, 259, 9989], 'none')).toEqual([960, 259, 9989]);
    const sqrt = corpusShares([960, 259, 9989], 'sqrt');
    expect(sqrt.reduce((a, b) => a + b)).toBe(n);
    const w = [960, 259, 9989].map(Math.sqrt);
    for (const [c, s] of sqrt.entries()) expect(Math.abs(s - (n * w[c]!) / (w[0]! + w[1]! + w[2]!))).toBeLessThan(1);
    expect(corpusShares([5, 5, 1], 'corpus')).toEqual([4, 4, 3]); // largest remainders, ties to the first corpus
  });

  for (const balance of ['corpus', 'sqrt'] as const) {
    it(`${balance}: n draws, each corpus its share, as even passes over its utterances; the same for the same (seed, epoch)`, () => {
      const order = balancedOrder(corpora, balance, 3, 1);
      expect(order).toHaveLength(n);
      const shares = corpusShares(Object.values(sizes), balance);
      const got = count(order.map((i) => corpora[i]!));
      expect(Object.keys(sizes).map((c) => got.get(c))).toEqual(shares);
      // a corpus drawn s times from m utterances: each utterance floor(s/m) or ceil(s/m) times
      Object.entries(sizes).forEach(([c, m], k) => {
        const per = count(order.filter((i) => corpora[i] === c).map(String));
        const times = [...per.values()];
        const s = shares[k]!;
        expect(Math.min(...times, per.size < m ? 0 : Number.POSITIVE_INFINITY)).toBe(Math.floor(s / m));
        expect(Math.max(...times)).toBe(Math.ceil(s / m));
      });
      expect(balancedOrder(corpora, balance, 3, 1)).toEqual(order);
      expect(balancedOrder(corpora, balance, 3, 2)).not.toEqual(order);
      expect(balancedOrder(corpora, balance, 4, 1)).not.toEqual(order);
      // mixed: the first batch-sized window is not one corpus
      expect(count(order.slice(0, 64).map((i) => corpora[i]!)).size).toBe(3);
    });
  }

  it("epochBatches: 'none' (and no corpora) gives the unbalanced batches; 'corpus' the balanced draws in ceil(n/B) batches", () => {
    const keys = Int32Array.from({ length: n }, (_, i) => (i * 7919) % 97);
    const plain = epochBatches(keys, 32, 1, 0);
    expect(epochBatches(keys, 32, 1, 0, { corpora, balance: 'none' })).toEqual(plain);
    const bal = epochBatches(keys, 32, 1, 0, { corpora, balance: 'corpus' });
    expect(bal).toHaveLength(plain.length);
    expect(
      bal
        .flat()
        .sort((a, b) => a - b)
        .join(),
    ).toBe(
      balancedOrder(corpora, 'corpus', 1, 0)
        .sort((a, b) => a - b)
        .join(),
    );
  });

  it('parses --balance and refuses another value, naming the flag and the choices', () => {
    expect(parseSettings({ balance: 'sqrt' }).balance).toBe('sqrt');
    expect(() => parseSettings({ balance: 'even' })).toThrow(/--balance must be 'none' or 'corpus' or 'sqrt', got 'even'/);
  });
});

describe('training with --balance corpus', () => {
  const joined = joinFeatureSets([
    { corpus: 'big', features: makeSet(1, 60, 'b') },
    { corpus: 'small', features: makeSet(2, 12, 's') },
  ]);
  const base: Omit<TrainOptions, 'outDir'> = {
    model: { fusion: 'cross-self', width: 8, heads: 2, layers: 1, ffnMult: 2, dropout: 0.1, seed: 5 },
    epochs: 2,
    batchSize: 8,
    lr: 5e-3,
    warmup: 2,
    balance: 'corpus',
  };

  it('stopped mid-epoch and resumed, ends bit-for-bit where a straight run does; another --balance on resume is refused', async () => {
    const straight = await train(new CpuBackend('f32'), joined, { ...base, outDir: tmp() });
    expect(straight.steps).toBe(18); // ceil(72 / 8) per epoch: the balanced epoch keeps the step count
    const unbalanced = await train(new CpuBackend('f32'), joined, { ...base, balance: 'none', outDir: tmp() });
    const dir = tmp();
    const first = await train(new CpuBackend('f32'), joined, { ...base, outDir: dir, stopAfterSteps: 13 });
    expect(first.steps).toBe(13);
    await expect(train(new CpuBackend('f32'), joined, { ...base, balance: 'sqrt', outDir: dir, resume: true })).rejects.toThrow(
      /--balance: the run has corpus, given sqrt/,
    );
    const resumed = await train(new CpuBackend('f32'), joined, { ...base, outDir: dir, resume: true });
    const [a, b, c] = [await straight.model.readState(), await resumed.model.readState(), await unbalanced.model.readState()];
    let differsFromUnbalanced = false;
    for (const [name, s] of a) {
      const x = s.value;
      const y = b.get(name)!.value;
      const i = x.findIndex((v, j) => !Object.is(v, y[j]));
      expect(i, `${name}[${i}]: straight ${x[i]} vs resumed ${y[i]}`).toBe(-1);
      if (x.some((v, j) => v !== c.get(name)!.value[j])) differsFromUnbalanced = true;
    }
    expect(differsFromUnbalanced).toBe(true); // the setting reaches the sampler
    const { meta } = loadCheckpoint(new CpuBackend('f32'), join(dir, 'last.safetensors'));
    expect((meta.train as { flags: Record<string, unknown> }).flags.balance).toBe('corpus');
  });
});
