// extract --augment (packages/model/src/audio/augment.ts, cache/extract.ts): speed perturbation and noise at an SNR
// on generated clips, the augmented copies' ids / labels / speakers, dev and test untouched, determinism, resume and
// its refusal, the speakers a cache gives them, and ablate --folds keeping copies with their original speaker.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import wavefilePkg from 'wavefile';
import { foldEvaluations } from '../../packages/model/src/ablation.ts';
import {
  activePower,
  addNoise,
  augmentClip,
  parseAugmentList,
  speedPerturb,
  type Augmentation,
} from '../../packages/model/src/audio/augment.ts';
import { augmentedItems, extractFeatures, refuseAugmentWith } from '../../packages/model/src/cache/extract.ts';
import { cacheSpeakers, openFeatureCache, readCacheIndex } from '../../packages/model/src/cache/feature-cache.ts';
import type { Dataset } from '../../packages/model/src/datasets/types.ts';
import { padSequences, type AudioEncoder, type TextEncoder } from '../../packages/model/src/encoders/types.ts';
import { memoryFeatureSplit, type FeatureSet } from '../../packages/model/src/features.ts';

const { WaveFile } = wavefilePkg as unknown as typeof import('wavefile');
const RATE = 16000;

/** A tone of `hz` for `seconds` at amplitude `amp`, optionally with `silence` seconds of silence after it. */
function tone(hz: number, seconds: number, amp = 0.5, silence = 0): Float32Array {
  const n = Math.round(RATE * seconds);
  const x = new Float32Array(n + Math.round(RATE * silence));
  for (let i = 0; i < n; i++) x[i] = amp * Math.sin((2 * Math.PI * hz * i) / RATE);
  return x;
}

/** Upward zero crossings per second over the middle of a clip (away from the filter's edges): a tone's frequency. */
function frequency(x: Float32Array): number {
  const [a, b] = [Math.floor(x.length * 0.2), Math.floor(x.length * 0.8)];
  let n = 0;
  for (let i = a + 1; i < b; i++) if (x[i - 1]! < 0 && x[i]! >= 0) n++;
  return (n * RATE) / (b - a);
}

const snrDb = (clean: Float32Array, noisy: Float32Array) => {
  let p = 0;
  for (let i = 0; i < clean.length; i++) p += (noisy[i]! - clean[i]!) ** 2;
  return 10 * Math.log10(activePower(clean) / (p / clean.length));
};

describe('augmentations', () => {
  it('parses a list and refuses a bad item, naming it and the accepted forms', () => {
    expect(parseAugmentList('speed:0.9, speed:1.1,noise:20')).toEqual([
      { kind: 'speed', factor: 0.9 },
      { kind: 'speed', factor: 1.1 },
      { kind: 'noise', snrDb: 20 },
    ]);
    for (const bad of ['speed:0', 'noise:abc', 'pitch:2', 'speed:1', 'speed:3', 'noise:', '']) {
      expect(() => parseAugmentList(`speed:0.9,${bad}`)).toThrow(`'${bad}' is not an augmentation; accepted: speed:F`);
    }
    expect(() => parseAugmentList('noise:20,noise:20')).toThrow("'noise:20' is given twice");
  });

  it('speed:1.1 shortens a clip by 1/1.1 within a frame and raises its pitch by 1.1; speed:0.9 the other way', () => {
    const x = tone(200, 2);
    for (const f of [1.1, 0.9]) {
      const y = speedPerturb(x, f);
      expect(Math.abs(y.length - x.length / f)).toBeLessThan(320); // one 20 ms frame
      expect(frequency(y) / frequency(x)).toBeCloseTo(f, 2);
    }
  });

  it('adds white noise at the asked SNR over the active signal (silence does not count), deterministically', () => {
    const x = tone(300, 1, 0.3, 1); // 1 s of tone, then 1 s of silence
    for (const snr of [20, 5]) {
      const y = addNoise(x, snr, 'u1~noise20');
      expect(snrDb(x, y)).toBeCloseTo(snr, 1);
    }
    const a = augmentClip(x, { kind: 'noise', snrDb: 20 }, 'u1');
    expect(Buffer.from(a.buffer).equals(Buffer.from(augmentClip(x, { kind: 'noise', snrDb: 20 }, 'u1').buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(augmentClip(x, { kind: 'noise', snrDb: 20 }, 'u2').buffer))).toBe(false);
  });
});

const AUG: Augmentation[] = parseAugmentList('speed:0.9,speed:1.1,noise:20');

function dataset(dir: string): Dataset {
  const items = ['train', 'train', 'train', 'dev', 'test'].map((split, i) => {
    const wav = new WaveFile();
    const x = tone(150 + 40 * i, 0.5 + 0.1 * i, 0.4, 0.2);
    wav.fromScratch(
      1,
      RATE,
      '16',
      Array.from(x, (v) => Math.round(v * 32767)),
    );
    const file = join(dir, `u${i}.wav`);
    writeFileSync(file, wav.toBuffer());
    return { id: `u${i}`, text: `utterance ${i}`, audio: file, label: i % 2, split, speaker: `s${i % 2}` };
  });
  return { name: 'generated', classNames: ['a', 'b'], items, source: dir };
}

/** One token per 20 ms frame: [mean, rms] (the token count is the clip's length in frames). */
const frameEncoder: AudioEncoder = {
  modality: 'audio',
  id: 'frames',
  version: 'frames-v1',
  dim: 2,
  sampleRate: RATE,
  async encode(clips) {
    return padSequences(
      clips.map((c) => {
        const T = Math.floor(c.length / 320);
        const data = new Float32Array(T * 2);
        for (let t = 0; t < T; t++) {
          let [s, q] = [0, 0];
          for (let i = t * 320; i < (t + 1) * 320; i++) [s, q] = [s + c[i]!, q + c[i]! * c[i]!];
          data.set([s / 320, Math.sqrt(q / 320)], t * 2);
        }
        return { data, length: T };
      }),
      2,
    );
  },
};
const textEncoder: TextEncoder = {
  modality: 'text',
  id: 'len',
  version: 'len-v1',
  dim: 1,
  async encode(texts) {
    return padSequences(
      texts.map((t) => ({ data: Float32Array.of(t.length), length: 1 })),
      1,
    );
  },
};

/** Every file's sha256 (index.json without its timings, the one thing that differs from run to run). */
const bytesOf = (dir: string) =>
  readdirSync(dir)
    .sort()
    .map((f) => {
      let bytes = readFileSync(join(dir, f));
      if (f === 'index.json') bytes = Buffer.from(JSON.stringify({ ...JSON.parse(bytes.toString()), throughput: 0, seconds: 0 }));
      return `${f} ${createHash('sha256').update(bytes).digest('hex')}`;
    })
    .join('\n');

describe('extract --augment', () => {
  let dir: string;
  let ds: Dataset;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'emofuse-augment-'));
    ds = dataset(dir);
  });
  const extract = (out: string, augment: Augmentation[] | undefined, more: { shardSize?: number; signal?: AbortSignal } = {}) =>
    extractFeatures({ dataset: ds, textEncoder, audioEncoder: frameEncoder, out: join(dir, out), augment, batchSize: 2, ...more });

  it('adds one copy per augmentation to each train utterance: id, label, text and its own pseudo-speaker', () => {
    const items = augmentedItems(ds, AUG);
    expect(items.map((it) => it.id)).toEqual([
      ...['u0', 'u1', 'u2'].flatMap((u) => [u, `${u}~speed0.9`, `${u}~speed1.1`, `${u}~noise20`]),
      'u3',
      'u4',
    ]);
    const copy = items.find((it) => it.id === 'u1~speed1.1')!;
    expect([copy.label, copy.text, copy.split, copy.speaker, copy.audio]).toEqual([
      1,
      'utterance 1',
      'train',
      's1~speed1.1',
      ds.items[1]!.audio,
    ]);
    const bad = { ...ds, items: [{ ...ds.items[0]!, id: 'a~b' }] };
    expect(() => augmentedItems(bad, AUG)).toThrow("utterance 'a~b' has '~' in its id");
    expect(augmentedItems(bad, [])).toEqual(bad.items);
  });

  it('writes the copies into the train split only, records the list, and leaves dev and test as a plain extraction has them', async () => {
    const plain = openFeatureCache((await extract('plain', undefined)).cacheDir);
    const r = await extract('aug', AUG);
    expect(r.index.augment).toEqual({ version: 1, list: ['speed:0.9', 'speed:1.1', 'noise:20'] });
    expect(r.index.dataset.fingerprint).toBe(plain.index.dataset.fingerprint);
    const aug = openFeatureCache(r.cacheDir);
    expect(aug.splits.train!.ids).toHaveLength(12);
    expect(aug.splits.train!.speakers!.slice(0, 4)).toEqual(['s0', 's0~speed0.9', 's0~speed1.1', 's0~noise20']);
    for (const split of ['dev', 'test']) {
      expect(aug.splits[split]!.ids).toEqual(plain.splits[split]!.ids);
      expect(aug.splits[split]!.batch([0]).audio).toEqual(plain.splits[split]!.batch([0]).audio);
    }
    const train = aug.splits.train!;
    const len = (id: string) => train.audioLens[train.ids.indexOf(id)]!;
    for (const u of ['u0', 'u1', 'u2']) {
      expect(Math.abs(len(`${u}~speed1.1`) - len(u) / 1.1)).toBeLessThanOrEqual(1); // within a frame
      expect(Math.abs(len(`${u}~speed0.9`) - len(u) / 0.9)).toBeLessThanOrEqual(1);
      expect(len(`${u}~noise20`)).toBe(len(u));
    }
    // the noisy copy's frames are louder than the original's (rms, token column 1) where the original is silent
    const last = (id: string) => train.batch([train.ids.indexOf(id)]).audio[(len(id) - 1) * 2 + 1]!;
    expect(last('u0')).toBe(0);
    expect(last('u0~noise20')).toBeGreaterThan(0);
  });

  it('refuses --augment with a shard or without an audio encoder, naming the fix (the CLI asks before loading encoders)', () => {
    const aug = parseAugmentList('speed:0.9');
    expect(() => refuseAugmentWith(aug, { part: { index: 0, count: 2 }, audio: true })).toThrow('--augment and --shard do not go together');
    expect(() => refuseAugmentWith(aug, { audio: false })).toThrow('it needs an audio encoder (drop --text-only)');
    expect(() => refuseAugmentWith([], { part: { index: 0, count: 2 }, audio: false })).not.toThrow();
  });

  it('is deterministic, resumes an interrupted extraction to the same bytes, and refuses another --augment', async () => {
    const whole = (await extract('det-a', AUG, { shardSize: 4 })).cacheDir;
    expect(bytesOf((await extract('det-b', AUG, { shardSize: 4 })).cacheDir)).toBe(bytesOf(whole));
    const stop = new AbortController();
    let shards = 0;
    const first = await extractFeatures({
      dataset: ds,
      textEncoder,
      audioEncoder: frameEncoder,
      out: join(dir, 'det-c'),
      augment: AUG,
      batchSize: 2,
      shardSize: 4,
      signal: stop.signal,
      onProgress: (p) => {
        if (p.done % 4 === 0 && ++shards === 2) stop.abort();
      },
    });
    expect(first.stopped).toBe(true);
    expect(first.index.complete).toBe(false);
    await expect(extract('det-c', parseAugmentList('speed:0.9'), { shardSize: 4 })).rejects.toThrow(
      'was extracted with --augment speed:0.9,speed:1.1,noise:20 (augmentation version 1), this run asks for --augment ' +
        'speed:0.9 (augmentation version 1)',
    );
    await expect(extract('det-c', undefined, { shardSize: 4 })).rejects.toThrow('this run asks for --augment none');
    const resumed = await extract('det-c', AUG, { shardSize: 4 });
    expect(resumed.resumedFrom).toBeGreaterThan(0);
    expect(bytesOf(resumed.cacheDir)).toBe(bytesOf(whole));
    expect(readCacheIndex(resumed.cacheDir).complete).toBe(true);
  });
});

describe('speakers and folds of augmented copies', () => {
  it("gives an augmented RAVDESS / EmoDB id its original speaker's name plus the augmentation", () => {
    const ids = ['03-01-05-01-02-01-07', '03-01-05-01-02-01-07~speed0.9', '03-01-05-01-02-01-07~noise20'];
    expect(cacheSpeakers({ dataset: { name: 'ravdess' } as never }, { ids })).toEqual(['actor07', 'actor07~speed0.9', 'actor07~noise20']);
    expect(cacheSpeakers({ dataset: { name: 'emodb' } as never }, { ids: ['03a01Fa', '03a01Fa~speed1.1'] })).toEqual(['03', '03~speed1.1']);
  });

  it('deals an augmented copy into its original speaker’s fold and never scores one', () => {
    const utt = (id: string, split: string) => ({
      id,
      label: 0,
      text: new Float32Array(1),
      textLen: 1,
      audio: new Float32Array(1),
      audioLen: 1,
      split,
    });
    const speakers = ['a', 'b', 'c', 'd'];
    const train = speakers.flatMap((s) => [0, 1].flatMap((k) => [utt(`${s}${k}`, 'train'), utt(`${s}${k}~speed0.9`, 'train')]));
    const dev = [utt('e0', 'dev'), utt('e1', 'dev')];
    const split = (us: typeof train) => ({
      ...memoryFeatureSplit(us, 1, 1),
      speakers: us.map((u) => u.id[0]! + (u.id.includes('~') ? '~speed0.9' : '')),
    });
    const fs: FeatureSet = {
      classNames: ['x'],
      textDim: 1,
      audioDim: 1,
      textEncoder: 't',
      audioEncoder: 'a',
      splits: { train: split(train), dev: split(dev) },
    };
    const evals = foldEvaluations(fs, { folds: 5, train: { lr: 1e-3, epochs: 1, batchSize: 4 }, source: 'test' });
    for (const ev of evals) {
      const held = new Set(ev.speakers);
      expect(ev.speakers!.every((s) => !s.includes('~'))).toBe(true);
      expect(ev.test.ids.every((id) => !id.includes('~') && held.has(id[0]!))).toBe(true);
      expect(ev.features.splits['fold-train']!.ids.some((id) => held.has(id[0]!))).toBe(false);
    }
    expect(evals.reduce((n, ev) => n + ev.test.size, 0)).toBe(10);
  });
});
