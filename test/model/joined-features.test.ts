// Training on several feature sets at once (datasets/feature-sets.ts joinFeatureSets, train/data.ts): the join's
// refusals name both sets and the field, a text-only set joins a bimodal one (its rows have no audio tokens), labels
// are unified through a label map (one report per corpus, saved in the checkpoint and applied again by eval), eval
// scores each source corpus on its own, and modality dropout is seeded by (seed, step, row) so --resume stays exact.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CpuBackend,
  DataError,
  cacheSpeakers,
  dropModalities,
  evaluate,
  evaluateCheckpoint,
  formatSpeakerNorm,
  joinFeatureSets,
  loadCheckpoint,
  mapFeatureSet,
  memoryFeatureSplit,
  parseLabelMap,
  runAblation,
  speakerFallbackFromJson,
  standardizeSpeakers,
  train,
  validateFeatureSet,
  withJoinedSplits,
  type FeatureSet,
  type FeatureSplit,
  type TrainOptions,
  type UtteranceFeatures,
} from '@emofuse/model';
import { mulberry32 } from '@emofuse/kernels';

const dirs: string[] = [];
const tmp = () => {
  const d = mkdtempSync(join(tmpdir(), 'emofuse-joined-'));
  dirs.push(d);
  return d;
};
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * A small learnable set: the label is written into every text token (and audio frame) as a +3 on channel `label`.
 * `audio: false` makes it text-only as a text-only cache is (audio encoder 'none', width 1, no audio tokens).
 */
function makeSet(o: {
  classes: string[];
  audio: boolean;
  seed: number;
  n?: number;
  textEncoder?: string;
  textDim?: number;
  prefix: string;
}): FeatureSet {
  const r = mulberry32(o.seed);
  const Ct = o.textDim ?? 6;
  const Ca = o.audio ? 5 : 1;
  const make = (split: string, n: number): UtteranceFeatures[] =>
    Array.from({ length: n }, (_, i) => {
      const label = i % o.classes.length;
      const textLen = 2 + Math.floor(r() * 4);
      const audioLen = o.audio ? 3 + Math.floor(r() * 5) : 0;
      const text = Float32Array.from({ length: textLen * Ct }, (_, k) => (k % Ct === label % Ct ? 3 : 0) + r() - 0.5);
      const audio = Float32Array.from({ length: audioLen * Ca }, (_, k) => (k % Ca === label % Ca ? 3 : 0) + r() - 0.5);
      return { id: `${o.prefix}-${split}-${i}`, label, text, textLen, audio, audioLen };
    });
  return {
    classNames: o.classes,
    textDim: Ct,
    audioDim: Ca,
    textEncoder: o.textEncoder ?? 'hash',
    audioEncoder: o.audio ? 'logmel' : 'none',
    splits: { train: memoryFeatureSplit(make('train', o.n ?? 48), Ct, Ca), dev: memoryFeatureSplit(make('dev', 16), Ct, Ca) },
  };
}

const errorOf = (f: () => unknown): Error => {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
};

// MELD-like text-only set (MELD's labels) and a RAVDESS-like bimodal one (RAVDESS's names for 4 of them)
const meld = makeSet({ classes: ['neutral', 'joy', 'anger', 'sadness'], audio: false, seed: 1, prefix: 'm' });
const ravdess = makeSet({ classes: ['neutral', 'happy', 'angry', 'sad'], audio: true, seed: 2, prefix: 'r' });
const base: Omit<TrainOptions, 'outDir'> = {
  model: { fusion: 'cross-self', width: 8, heads: 2, layers: 1, ffnMult: 2, dropout: 0, seed: 3 },
  epochs: 2,
  batchSize: 16,
  lr: 5e-3,
  warmup: 2,
};

describe('joining feature sets', () => {
  it('refuses sets made with other encoders, naming both sets and the field', () => {
    const other = makeSet({ classes: ['neutral', 'joy'], audio: false, seed: 3, prefix: 'o', textEncoder: 'bert:x' });
    const e1 = errorOf(() =>
      joinFeatureSets([
        { corpus: 'meld', features: meld },
        { corpus: 'other', features: other },
      ]),
    );
    expect(e1).toBeInstanceOf(DataError);
    expect(e1.message).toMatch(/'meld' and 'other' differ in text encoder \(text\.id in index\.json\): 'hash' vs 'bert:x'.*--text-encoder/);
    const wide = makeSet({ classes: ['neutral', 'joy'], audio: false, seed: 3, prefix: 'w', textDim: 7 });
    expect(
      errorOf(() =>
        joinFeatureSets([
          { corpus: 'meld', features: meld },
          { corpus: 'wide', features: wide },
        ]),
      ).message,
    ).toMatch(/'meld' and 'wide' differ in text width \(text\.dim in index\.json\): '6' vs '7'/);
    expect(
      errorOf(() =>
        joinFeatureSets([
          { corpus: 'a', features: meld },
          { corpus: 'a', features: ravdess },
        ]),
      ).message,
    ).toMatch(/both named 'a'/);
  });

  it('a text-only set joins a bimodal one: its rows have no audio tokens, the other rows keep theirs, labels index the union', () => {
    const j = joinFeatureSets([
      { corpus: 'meld', features: meld },
      { corpus: 'ravdess', features: ravdess },
    ]);
    expect([j.textDim, j.audioDim, j.textEncoder, j.audioEncoder]).toEqual([6, 5, 'hash', 'logmel']);
    expect(j.classNames).toEqual(['neutral', 'joy', 'anger', 'sadness', 'happy', 'angry', 'sad']);
    const tr = j.splits.train!;
    expect(tr.size).toBe(96);
    expect(tr.corpora![0]).toBe('meld');
    expect(tr.corpora![95]).toBe('ravdess');
    expect(tr.labels[48 + 1]).toBe(4); // ravdess 'happy'
    const b = tr.batch([0, 49], { rows: 3, Tt: 8, Ta: 8 });
    expect(b.ids).toEqual(['m-train-0', 'r-train-1']);
    expect([...b.labels]).toEqual([0, 4, -1]);
    expect(b.audioMask.subarray(0, 8).every((m) => m === 0)).toBe(true); // the text-only row
    expect(b.audioMask[8]).toBe(1);
    const direct = ravdess.splits.train!.batch([1]);
    expect([...b.audio.subarray(8 * 5, 8 * 5 + direct.Ta * 5)]).toEqual([...direct.audio]);
    expect(b.textMask[0]).toBe(1);
  });

  it('training refuses differently labelled sets without a label map (naming --label-map), and rows of an audio set without audio', () => {
    const j = joinFeatureSets([
      { corpus: 'meld', features: meld },
      { corpus: 'ravdess', features: ravdess },
    ]);
    const e = errorOf(() => validateFeatureSet(j, ['train', 'dev'], 'features'));
    expect(e.message).toMatch(
      /labelled differently \(meld: neutral, joy, anger, sadness; ravdess: neutral, happy, angry, sad\).*--label-map meld7/,
    );
    const mapped = mapFeatureSet(j, parseLabelMap('meld7'));
    expect(mapped.classNames.length).toBe(7);
    expect(validateFeatureSet(mapped, ['train', 'dev'], 'features').audio).toBeGreaterThan(1); // text-only rows accepted
    // an utterance of the bimodal set without audio is still refused, and one with no tokens at all anywhere
    const broken = (textLen: number): FeatureSet => {
      const s = makeSet({ classes: ['neutral', 'joy'], audio: true, seed: 5, prefix: 'b' });
      const u: UtteranceFeatures = {
        id: 'b-empty',
        label: 0,
        text: new Float32Array(textLen * 6),
        textLen,
        audio: new Float32Array(0),
        audioLen: 0,
      };
      return { ...s, splits: { ...s.splits, train: memoryFeatureSplit([u], 6, 5) } };
    };
    const onlyText = joinFeatureSets([
      { corpus: 'meld', features: makeSet({ classes: ['neutral', 'joy'], audio: false, seed: 6, prefix: 'm' }) },
      { corpus: 'b', features: broken(2) },
    ]);
    expect(errorOf(() => validateFeatureSet(onlyText, ['train'], 'features')).message).toMatch(
      /utterance 'b-empty' \(from b\): no audio tokens/,
    );
    const nothing = joinFeatureSets([
      { corpus: 'meld', features: makeSet({ classes: ['neutral', 'joy'], audio: false, seed: 6, prefix: 'm' }) },
      { corpus: 'b', features: broken(0) },
    ]);
    expect(errorOf(() => validateFeatureSet(nothing, ['train'], 'features', { text: false, audio: false })).message).toMatch(
      /'b-empty' \(from b\): neither text nor audio/,
    );
    // a joined set of text-only sets cannot train a variant that reads audio
    const texts = joinFeatureSets([
      { corpus: 'a', features: meld },
      { corpus: 'b', features: makeSet({ classes: meld.classNames as string[], audio: false, seed: 7, prefix: 'x' }) },
    ]);
    expect(errorOf(() => validateFeatureSet(texts, ['train'], 'features')).message).toMatch(/none of the joined caches \(a, b\) has audio/);
  });

  it(
    'trains through --label-map meld7 (a report per corpus in the checkpoint), and eval reads the checkpoint map and scores ' +
      'each corpus',
    async () => {
      const j = joinFeatureSets([
        { corpus: 'meld', features: meld },
        { corpus: 'ravdess', features: ravdess },
      ]);
      const out = tmp();
      let reports: readonly { corpus: string }[] = [];
      const r = await train(new CpuBackend('f32'), j, { ...base, outDir: out, labelMap: 'meld7', onLabelMap: (x) => (reports = x) });
      expect(reports.map((x) => x.corpus)).toEqual(['meld', 'ravdess']);
      const { meta } = loadCheckpoint(new CpuBackend('f32'), r.lastCheckpoint);
      expect(meta.classNames).toEqual(['neutral', 'joy', 'surprise', 'anger', 'sadness', 'disgust', 'fear']);
      expect(meta.labelMaps!.map((m) => m.corpus)).toEqual(['meld', 'ravdess']);
      const happy = meta.labelMaps![1]!.labels.find((l) => l.from === 'happy')!;
      expect(happy).toMatchObject({ to: 'joy', counts: { train: 12, dev: 4 } });
      expect(meta.train.flags).toMatchObject({ labelMap: 'meld7', modalityDropout: 0 });
      // eval: the unmapped joined features, read through the checkpoint's map; per-corpus scores add up to the whole
      const evalDir = join(out, 'eval');
      const { report } = await evaluateCheckpoint(new CpuBackend('f32'), {
        checkpoint: r.lastCheckpoint,
        features: j,
        source: 'joined',
        split: 'dev',
        batchSize: 8,
        outDir: evalDir,
      });
      expect(report.perCorpus!.map((c) => [c.corpus, c.n])).toEqual([
        ['meld', 16],
        ['ravdess', 16],
      ]);
      const [m, v] = report.perCorpus!;
      expect(report.accuracy).toBeCloseTo((m!.accuracy * 16 + v!.accuracy * 16) / 32, 10);
      expect(JSON.parse(readFileSync(join(evalDir, 'metrics.json'), 'utf8')).perCorpus).toHaveLength(2);
      expect(readFileSync(join(evalDir, 'predictions.jsonl'), 'utf8')).toContain('"corpus":"ravdess"');
      // a resume with another map is refused by the settings check
      await expect(
        train(new CpuBackend('f32'), j, { ...base, epochs: 3, outDir: out, labelMap: 'meld7:calm=drop', resume: true }),
      ).rejects.toThrow(/--label-map: the run has meld7, given meld7:calm=drop/);
    },
  );

  it('ablate scores each corpus of a joined set beside all of it', async () => {
    const j = joinFeatureSets([
      { corpus: 'meld', features: meld },
      { corpus: 'ravdess', features: ravdess },
    ]);
    const res = await runAblation(j, {
      variants: ['concat'],
      seeds: [0],
      testSplit: 'dev',
      outDir: tmp(),
      backend: 'cpu',
      source: 'joined',
      train: { ...base, epochs: 1, labelMap: 'meld7' },
    });
    expect(res.rows.map((r) => r.perCorpus!.map((c) => [c.corpus, c.n]))).toEqual([
      [
        ['meld', 16],
        ['ravdess', 16],
      ],
      [
        ['meld', 16],
        ['ravdess', 16],
      ],
    ]);
  });
});

describe("joined splits ('train+dev')", () => {
  it('one split of the named ones in order; train reads it as its train split, eval scores it; an unknown part is named', async () => {
    const j = withJoinedSplits(ravdess, ['train+dev', 'dev']);
    const both = j.splits['train+dev']!;
    expect([both.size, both.ids[0], both.ids[48], both.labels[49]]).toEqual([64, 'r-train-0', 'r-dev-0', ravdess.splits.dev!.labels[1]]);
    expect(j.splits.dev).toBe(ravdess.splits.dev);
    expect(errorOf(() => withJoinedSplits(ravdess, ['train+test'], 'rav')).message).toMatch(
      /rav has no split 'test' \(in 'train\+test'; it has: train, dev\)/,
    );
    const outDir = tmp();
    const r = await train(new CpuBackend(), ravdess, { ...base, epochs: 1, outDir, trainSplit: 'train+dev', patience: 0 });
    expect(r.steps).toBe(4); // one epoch of 64 utterances in batches of 16, not train's 48 (3 steps)
    const { report } = await evaluateCheckpoint(new CpuBackend(), {
      checkpoint: join(outDir, 'last.safetensors'),
      features: ravdess,
      source: 'rav',
      split: 'train+dev',
      batchSize: 16,
      outDir: tmp(),
    });
    expect(report.n).toBe(64);
  });
});

describe('modality dropout', () => {
  it('drops one modality of a row that has both, with probability p, the same for the same (seed, step)', () => {
    const j = joinFeatureSets([
      { corpus: 'meld', features: meld },
      { corpus: 'ravdess', features: ravdess },
    ]);
    const idx = Array.from({ length: 96 }, (_, i) => i);
    const shape = { rows: 96, Tt: 8, Ta: 8 };
    const run = (p: number, seed: number, step: number) => {
      const b = j.splits.train!.batch(idx, shape);
      const d = dropModalities(b, p, seed, step);
      return { b, d };
    };
    expect(run(0, 1, 1).d).toEqual({ text: 0, audio: 0 });
    const all = run(0.9999, 1, 1);
    expect(all.d.text + all.d.audio).toBe(48); // every ravdess row, none of the text-only ones
    expect(all.d.text).toBeGreaterThan(10);
    expect(all.d.audio).toBeGreaterThan(10);
    for (let r = 0; r < 96; r++) {
      const t = all.b.textMask.subarray(r * 8, r * 8 + 8).some((m) => m > 0);
      const a = all.b.audioMask.subarray(r * 8, r * 8 + 8).some((m) => m > 0);
      expect(t || a, `row ${r} kept a modality`).toBe(true);
      if (!a) expect(all.b.audio.subarray(r * 40, r * 40 + 40).every((x) => x === 0)).toBe(true);
    }
    const [x, y] = [run(0.5, 1, 7), run(0.5, 1, 7)];
    expect(x.d).toEqual(y.d);
    expect([...x.b.textMask]).toEqual([...y.b.textMask]);
    expect([...x.b.audioMask]).toEqual([...y.b.audioMask]);
    expect([...run(0.5, 1, 8).b.audioMask]).not.toEqual([...x.b.audioMask]);
    const half = x.d.text + x.d.audio;
    expect(half).toBeGreaterThan(12);
    expect(half).toBeLessThan(36);
  });

  it('a run with --modality-dropout stopped mid-way and resumed ends with exactly the parameters of an uninterrupted one', async () => {
    const data = mapFeatureSet(
      joinFeatureSets([
        { corpus: 'meld', features: meld },
        { corpus: 'ravdess', features: ravdess },
      ]),
      parseLabelMap('meld7'),
    );
    const opts = { ...base, epochs: 2, modalityDropout: 0.5 }; // 6 steps per epoch: the stop at 8 falls mid-epoch 2
    const straight = await train(new CpuBackend('f32'), data, { ...opts, outDir: tmp() });
    const plain = await train(new CpuBackend('f32'), data, { ...opts, modalityDropout: 0, outDir: tmp() });
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
    expect(differsFromPlain).toBe(true); // the dropout did change the run
  });
});

describe('speaker-level standardization (--speaker-norm)', () => {
  /**
   * `makeSet` with speakers: utterance i of a split spoken by 'spk<i % 3>', with a per-speaker offset and scale; the last one has no
   * speaker.
   */
  const withSpeakers = (): FeatureSet => {
    const s = makeSet({ classes: ['neutral', 'happy', 'angry', 'sad'], audio: true, seed: 9, prefix: 's' });
    const splits: Record<string, FeatureSplit> = {};
    for (const [name, split] of Object.entries(s.splits)) {
      const speakers = split.ids.map((_, i) => (i === split.size - 1 ? '' : `spk${i % 3}`));
      splits[name] = {
        ...split,
        speakers,
        batch(indices, shape) {
          const b = split.batch(indices, shape);
          indices.forEach((u, r) => {
            const k = speakers[u] ? Number(speakers[u]!.slice(3)) : 0;
            for (let t = 0; t < b.Ta; t++)
              for (let c = 0; c < 5; c++)
                if (b.audioMask[r * b.Ta + t]) b.audio[(r * b.Ta + t) * 5 + c] = b.audio[(r * b.Ta + t) * 5 + c]! * (1 + k) + 10 * k;
          });
          return b;
        },
      };
    }
    return { ...s, splits };
  };

  it("each speaker's kept tokens get mean 0 and std 1; an utterance without a speaker keeps its tokens; padding stays 0", () => {
    const fs = withSpeakers();
    const sn = standardizeSpeakers(fs);
    expect(sn.speakerNorm).toEqual({ speakers: 3, bySpeaker: { train: 47, dev: 15 }, globalOnly: { train: 1, dev: 1 } });
    expect(formatSpeakerNorm(sn.speakerNorm)).toMatch(
      /^3 speakers; train 47 of 48 by their speaker's statistics, 1 by the train statistics only \(no speaker\)/,
    );
    const sums = new Map<string, { n: number; s: number; ss: number }>();
    for (const name of ['train', 'dev']) {
      const split = sn.splits[name]!;
      const idx = Array.from({ length: split.size }, (_, i) => i);
      const b = split.batch(idx, { rows: split.size, Tt: 8, Ta: 8 });
      const raw = fs.splits[name]!.batch(idx, { rows: split.size, Tt: 8, Ta: 8 });
      idx.forEach((u, r) => {
        const spk = split.speakers![u]!;
        for (let t = 0; t < 8; t++) {
          const off = (r * 8 + t) * 5;
          if (!b.audioMask[r * 8 + t]) {
            expect(b.audio.subarray(off, off + 5).every((x) => x === 0)).toBe(true);
            continue;
          }
          if (!spk) expect([...b.audio.subarray(off, off + 5)]).toEqual([...raw.audio.subarray(off, off + 5)]);
          else {
            const m = sums.get(spk) ?? { n: 0, s: 0, ss: 0 };
            const x = b.audio[off + 2]!; // channel 2
            sums.set(spk, { n: m.n + 1, s: m.s + x, ss: m.ss + x * x });
          }
        }
      });
    }
    for (const [spk, { n, s, ss }] of sums) {
      expect(Math.abs(s / n), spk).toBeLessThan(1e-4);
      expect(Math.sqrt(ss / n - (s / n) ** 2), spk).toBeCloseTo(1, 4);
    }
    expect(standardizeSpeakers(sn)).toBe(sn); // once only
  });

  it('joined sets name speakers by corpus; train records the setting and eval applies it as trained', async () => {
    const j = joinFeatureSets([
      { corpus: 'meld', features: meld },
      { corpus: 'acted', features: withSpeakers() },
    ]);
    expect(j.splits.train!.speakers![0]).toBe(''); // meld knows no speakers here
    expect(j.splits.train!.speakers![48]).toBe('acted:spk0');
    const out = tmp();
    let seen: unknown;
    const r = await train(new CpuBackend('f32'), j, {
      ...base,
      outDir: out,
      labelMap: 'meld7',
      speakerNorm: true,
      onSpeakerNorm: (x) => (seen = x),
    });
    expect(seen).toEqual({ speakers: 3, bySpeaker: { train: 47, dev: 15 }, globalOnly: { train: 49, dev: 17 } });
    const { meta, model } = loadCheckpoint(new CpuBackend('f32'), r.lastCheckpoint);
    expect(meta.train.flags).toMatchObject({ speakerNorm: true });
    const { report } = await evaluateCheckpoint(new CpuBackend('f32'), {
      checkpoint: r.lastCheckpoint,
      features: j,
      source: 'joined',
      split: 'dev',
      batchSize: 8,
      outDir: join(out, 'eval'),
    });
    expect(report.speakerNorm).toEqual(seen);
    // as trained: the MELD rows (no speaker) by the run's pooled raw train statistics (speaker-norm-fallback.test.ts)
    const fallback = speakerFallbackFromJson(meta.train.speakerFallback, { text: j.textDim, audio: j.audioDim }, r.lastCheckpoint);
    expect(fallback).not.toBeNull();
    const asTrained = standardizeSpeakers(mapFeatureSet(j, parseLabelMap('meld7')), fallback);
    const raw = mapFeatureSet(j, parseLabelMap('meld7'));
    const want = await evaluate(model, asTrained.splits.dev!, meta.classNames, 8);
    const without = await evaluate(model, raw.splits.dev!, meta.classNames, 8);
    expect(report.accuracy).toBe(want.accuracy);
    expect(want.probabilities).not.toEqual(without.probabilities); // the transform matters to this model
  });

  it("a cache's speakers come from its ids where the corpus names them there", () => {
    const ids = (name: string, xs: string[]) =>
      cacheSpeakers({ dataset: { name, source: '', classNames: [], items: 0, fingerprint: '' } }, { ids: xs });
    expect(ids('ravdess', ['03-01-05-01-02-01-16', '03-01-01-01-01-01-07'])).toEqual(['actor16', 'actor07']);
    expect(ids('emodb', ['03a01Fa', '16b10Wb'])).toEqual(['03', '16']);
    expect(ids('crema-d', ['1001_DFA_ANG_XX'])).toEqual(['1001']);
    expect(ids('meld', ['train/dia0_utt0'])).toBeUndefined();
    expect(ids('ravdess', ['renamed'])).toBeUndefined();
  });
});
