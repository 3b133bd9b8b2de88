// The lone-utterance fallback of --speaker-norm and --speaker-norm-mix (fusion/input-norm.ts SpeakerFallback).
//
// A --speaker-norm model's own input statistics are those of speaker-standardized tokens (about mean 0, std 1); an
// utterance with no speaker statistics used to reach them raw, on another scale altogether (13.3% on lone RAVDESS dev
// clips). A --speaker-norm run now keeps the pooled raw train statistics (every train token: "an average speaker") in
// its checkpoint, and an utterance without a speaker's statistics is standardized with them, in training, eval and
// predict; --speaker-norm-mix p trains on them too (each utterance, each epoch, with probability p, seeded by
// (seed, epoch, utterance), so --resume stays exact). Synthetic speakers here differ by an offset (10 per speaker along
// one direction of the audio channels) and a scale, the label a +3 on one audio channel: lone utterances read raw score
// at chance, with the fallback well above it, and a model trained with the mix higher still.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CpuBackend,
  DataError,
  evaluate,
  evaluateCheckpoint,
  loadCheckpoint,
  memoryFeatureSplit,
  pooledTokenStats,
  saveCheckpoint,
  speakerFallbackFromJson,
  speakerFallbackToJson,
  speakerNormMixDraw,
  speakerTokenStats,
  standardizeSpeakers,
  train,
  type FeatureSet,
  type FeatureSplit,
  type TrainOptions,
  type UtteranceFeatures,
} from '@emofuse/model';
import { mulberry32 } from '@emofuse/kernels';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'emofuse-sn-fallback-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const CLASSES = ['neutral', 'joy', 'anger', 'sadness'];
const [Ct, Ca] = [3, 4];
/** A speaker's offset direction over the audio channels (speaker k: 10 k times it). */
const VOICE = [1, 0.3, -0.5, -1];

/**
 * Speakers spk0..spk<S-1>: speaker k's audio tokens are (onehot(label) * 3 + noise) * (1 + k / 2) + 10 k VOICE, text tokens noise;
 * `speakers: false`: the same utterances with no speaker named (lone clips).
 */
function speakerSet(seed: number, o: { n: number; S: number; first?: number; name?: string; speakers?: boolean }): FeatureSplit {
  const r = mulberry32(seed);
  const first = o.first ?? 0;
  const spk = Array.from({ length: o.n }, (_, i) => first + (i % o.S));
  const u: UtteranceFeatures[] = spk.map((k, i) => {
    const label = Math.floor(i / o.S) % CLASSES.length;
    const [textLen, audioLen] = [2 + Math.floor(r() * 3), 3 + Math.floor(r() * 5)];
    const text = Float32Array.from({ length: textLen * Ct }, () => r() - 0.5);
    const audio = Float32Array.from(
      { length: audioLen * Ca },
      (_, j) => ((j % Ca === label ? 3 : 0) + r() - 0.5) * (1 + 0.5 * k) + 10 * k * VOICE[j % Ca]!,
    );
    return { id: `u${seed}-${i}`, label, text, textLen, audio, audioLen };
  });
  const split = memoryFeatureSplit(u, Ct, Ca);
  return o.speakers === false ? split : { ...split, speakers: spk.map((k) => `${o.name ?? 'spk'}${k}`) };
}

const set = (splits: Record<string, FeatureSplit>): FeatureSet => ({
  classNames: CLASSES,
  textDim: Ct,
  audioDim: Ca,
  textEncoder: 'hash',
  audioEncoder: 'logmel',
  splits,
});
// train: speakers spk0-spk3; dev: two other speakers (dev1, dev2) with the voices of 1 and 2; lone: the same dev
// utterances without speakers
const data = set({ train: speakerSet(1, { n: 96, S: 4 }), dev: speakerSet(2, { n: 32, S: 2, first: 1, name: 'dev' }) });
const lone = set({ ...data.splits, dev: speakerSet(2, { n: 32, S: 2, first: 1, speakers: false }) });

const base: Omit<TrainOptions, 'outDir'> = {
  model: { fusion: 'cross-self', width: 8, heads: 2, layers: 1, ffnMult: 2, dropout: 0, seed: 3 },
  epochs: 6,
  batchSize: 16,
  lr: 1e-2,
  warmup: 2,
  speakerNorm: true,
};

describe('the pooled raw train statistics (SpeakerFallback)', () => {
  it('are the mean / std of every kept train token, and survive the checkpoint metadata exactly', () => {
    const split = data.splits.train!;
    const f = pooledTokenStats(split, Ct, Ca);
    const b = split.batch(Array.from({ length: split.size }, (_, i) => i));
    let [n, s] = [0, 0];
    for (let t = 0; t < split.size * b.Ta; t++) if (b.audioMask[t]) [n, s] = [n + 1, s + b.audio[t * Ca]!];
    expect(f.audio.mean[0]).toBeCloseTo(s / n, 4);
    expect(f.audio.std[0]).toBeGreaterThan(5); // the speakers' offsets are in it: 10 apart
    const back = speakerFallbackFromJson(JSON.parse(JSON.stringify(speakerFallbackToJson(f))), { text: Ct, audio: Ca }, 'x');
    expect([...back!.audio.std]).toEqual([...f.audio.std]);
    expect([...back!.text.mean]).toEqual([...f.text.mean]);
    expect(speakerFallbackFromJson(undefined, { text: Ct, audio: Ca }, 'x')).toBeNull();
    expect(() =>
      speakerFallbackFromJson(
        { text: speakerFallbackToJson(f).text, audio: { mean: [0], std: [1] } },
        { text: Ct, audio: Ca },
        'ck.safetensors',
      ),
    ).toThrow(/ck.safetensors: speakerFallback.audio must hold 4 finite means/);
  });

  it('standardize an utterance without a speaker where they are given; without them it keeps its tokens (as before)', () => {
    const f = pooledTokenStats(data.splits.train!, Ct, Ca);
    const idx = Array.from({ length: 32 }, (_, i) => i);
    const raw = lone.splits.dev!.batch(idx);
    const old = standardizeSpeakers(lone).splits.dev!.batch(idx);
    const now = standardizeSpeakers(lone, f).splits.dev!.batch(idx);
    expect([...old.audio]).toEqual([...raw.audio]);
    for (let t = 0; t < 32 * raw.Ta; t++) {
      for (let c = 0; c < Ca; c++) {
        const want = raw.audioMask[t] ? (raw.audio[t * Ca + c]! - f.audio.mean[c]!) / f.audio.std[c]! : 0;
        expect(now.audio[t * Ca + c]).toBeCloseTo(want, 5);
      }
    }
    // an utterance whose speaker is known still takes its speaker's statistics
    const known = standardizeSpeakers(data, f).splits.dev!.batch(idx);
    const st = speakerTokenStats([{ split: data.splits.dev!, speakers: data.splits.dev!.speakers! }], Ct, Ca).get('dev1')!;
    expect(known.audio[0]).toBeCloseTo((raw.audio[0]! - st.audio.mean[0]!) / st.audio.std[0]!, 5);
  });

  it('speakerNormMixDraw: a function of (seed, epoch, utterance), about uniform', () => {
    const draws = Array.from({ length: 2000 }, (_, u) => speakerNormMixDraw(3, 1, u));
    expect(draws).toEqual(Array.from({ length: 2000 }, (_, u) => speakerNormMixDraw(3, 1, u)));
    expect(draws.filter((d) => d < 0.5).length).toBeGreaterThan(900);
    expect(draws.filter((d) => d < 0.5).length).toBeLessThan(1100);
    const other = Array.from({ length: 2000 }, (_, u) => speakerNormMixDraw(3, 2, u));
    expect(other).not.toEqual(draws);
    expect(draws.every((d) => d >= 0 && d < 1)).toBe(true);
  });
});

describe('training with the fallback and the mix', () => {
  it('a --speaker-norm model scores lone utterances at chance read raw, well above with the fallback; the mix more', async () => {
    const runs: Record<string, { lone: number; raw: number; known: number }> = {};
    for (const mix of [0, 0.5]) {
      const r = await train(new CpuBackend('f32'), data, { ...base, speakerNormMix: mix, outDir: tmp() });
      const { meta, model } = loadCheckpoint(new CpuBackend('f32'), r.lastCheckpoint);
      const fallback = speakerFallbackFromJson(meta.train.speakerFallback, { text: Ct, audio: Ca }, r.lastCheckpoint);
      expect(fallback).not.toBeNull();
      const acc = async (fs: FeatureSet) => (await evaluate(model, fs.splits.dev!, CLASSES, 16)).accuracy;
      runs[mix] = {
        known: await acc(standardizeSpeakers(data, fallback)),
        lone: await acc(standardizeSpeakers(lone, fallback)),
        raw: await acc(standardizeSpeakers(lone)), // before the fallback
      };
      // eval applies the checkpoint's fallback to the utterances without a speaker
      const { report } = await evaluateCheckpoint(new CpuBackend('f32'), {
        checkpoint: r.lastCheckpoint,
        features: lone,
        source: 'lone',
        split: 'dev',
        batchSize: 16,
        outDir: join(tmp(), 'eval'),
      });
      expect(report.accuracy).toBe(runs[mix]!.lone);
      if (mix !== 0) continue;
      // a --speaker-norm checkpoint from before the fallback (no speakerFallback): such utterances stay raw, as before
      const old = join(tmp(), 'old.safetensors');
      delete (meta.train as Record<string, unknown>).speakerFallback;
      await saveCheckpoint(model, old, meta);
      const before = await evaluateCheckpoint(new CpuBackend('f32'), {
        checkpoint: old,
        features: lone,
        source: 'lone',
        split: 'dev',
        batchSize: 16,
        outDir: join(tmp(), 'eval'),
      });
      expect(before.report.accuracy).toBe(runs[0]!.raw);
    }
    expect(runs[0]!.known).toBeGreaterThan(0.9);
    expect(runs[0]!.raw).toBeLessThan(0.4); // raw tokens 10-50 through statistics of ~N(0, 1): chance (0.25) or so
    expect(runs[0]!.lone).toBeGreaterThan(runs[0]!.raw + 0.2);
    expect(runs[0.5]!.known).toBeGreaterThan(0.9);
    expect(runs[0.5]!.lone).toBeGreaterThan(runs[0]!.lone + 0.15); // (0.56 -> 0.81 here)
  });

  it('a --speaker-norm-mix run stopped mid-way and resumed ends with exactly the parameters of an uninterrupted one', async () => {
    const opts = { ...base, epochs: 2, speakerNormMix: 0.5 }; // 6 steps per epoch: the stop at 8 falls mid-epoch 2
    const straight = await train(new CpuBackend('f32'), data, { ...opts, outDir: tmp() });
    const plain = await train(new CpuBackend('f32'), data, { ...opts, speakerNormMix: 0, outDir: tmp() });
    const dir = tmp();
    expect((await train(new CpuBackend('f32'), data, { ...opts, outDir: dir, stopAfterSteps: 8 })).steps).toBe(8);
    const resumed = await train(new CpuBackend('f32'), data, { ...opts, outDir: dir, resume: true });
    expect(resumed.steps).toBe(12);
    const [a, b, c] = [await straight.model.readState(), await resumed.model.readState(), await plain.model.readState()];
    let differsFromPlain = false;
    for (const [name, s] of a) {
      const i = s.value.findIndex((v, k) => !Object.is(v, b.get(name)!.value[k]));
      expect(i, `${name}[${i}]`).toBe(-1);
      if (s.value.some((v, k) => v !== c.get(name)!.value[k])) differsFromPlain = true;
    }
    expect(differsFromPlain).toBe(true); // the mix did change the run
  });

  it('refuses --speaker-norm-mix without --speaker-norm, and a resume with another p', async () => {
    await expect(train(new CpuBackend('f32'), data, { ...base, speakerNorm: false, speakerNormMix: 0.5, outDir: tmp() })).rejects.toThrow(
      /--speaker-norm-mix 0.5 needs --speaker-norm on/,
    );
    const dir = tmp();
    await train(new CpuBackend('f32'), data, { ...base, epochs: 1, speakerNormMix: 0.5, outDir: dir, stopAfterSteps: 2 });
    const err = await train(new CpuBackend('f32'), data, { ...base, epochs: 1, speakerNormMix: 0.2, outDir: dir, resume: true }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(DataError);
    expect((err as Error).message).toMatch(/--speaker-norm-mix/);
  });
});
