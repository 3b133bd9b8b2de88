// Speaker-level standardization where a trained --speaker-norm checkpoint is used (issue 19 item 5): `predict
// --manifest` reads a `speaker` column and standardizes each speaker's clips with that speaker's statistics over the
// manifest's clips (2 or more), exactly as training standardized its speakers; `analyze` standardizes each segment
// with the running statistics of its recording (one speaker assumed), and a resumed analyze continues them; a lone
// clip gets the train statistics only; every prediction / segment says which was used. The checkpoint is a tiny
// model trained with --speaker-norm on synthetic features of the encoders predict runs without networks (hash, logmel).

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '@emofuse/kernels';
import {
  CpuBackend,
  HASH_DIM,
  LOGMEL_BINS,
  Predictor,
  SPEAKER_MIN_CLIPS,
  SileroVad,
  SpeakerSums,
  analyzeRecording,
  createAudioEncoder,
  createTextEncoder,
  loadAudio,
  loadCheckpoint,
  memoryFeatureSplit,
  modelSettings,
  padBatch,
  pickClips,
  softmax,
  speakerStandardizedSplit,
  speakerTokenStats,
  train,
  writeAssembled,
  writeWavF32,
  type AnalyzedSegment,
  type FeatureSet,
  type UtteranceFeatures,
} from '@emofuse/model';
import { buildCli, emofuse } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-speaker-norm-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const assets = modelSettings.assetsDir;
const have = existsSync(join(assets, 'ravdess')) && existsSync(join(assets, 'emodb')) && existsSync(join(assets, 'meld-audio'));

const CLASSES = ['neutral', 'happy', 'sad', 'angry'];
const [Ct, Ca] = [HASH_DIM, 2 * LOGMEL_BINS];

/** hash / logmel-shaped features, each speaker with its own offset and scale, the label a +2 on one channel. */
function speakerSet(): FeatureSet {
  const r = mulberry32(7);
  const make = (split: string, n: number): { u: UtteranceFeatures[]; speakers: string[] } => {
    const speakers = Array.from({ length: n }, (_, i) => `s${i % 4}`);
    const u = Array.from({ length: n }, (_, i) => {
      const label = i % CLASSES.length;
      const k = i % 4;
      const textLen = 3 + Math.floor(r() * 5);
      const audioLen = 4 + Math.floor(r() * 8);
      const text = Float32Array.from({ length: textLen * Ct }, (_, j) => (j % Ct === label ? 2 : 0) + r() - 0.5);
      const audio = Float32Array.from({ length: audioLen * Ca }, (_, j) => ((j % Ca === label ? 2 : 0) + r() - 0.5) * (1 + k) + 3 * k);
      return { id: `${split}-${i}`, label, text, textLen, audio, audioLen };
    });
    return { u, speakers };
  };
  const splits = Object.fromEntries(
    (['train', 'dev'] as const).map((name) => {
      const { u, speakers } = make(name, name === 'train' ? 32 : 12);
      return [name, { ...memoryFeatureSplit(u, Ct, Ca), speakers }];
    }),
  );
  return { classNames: CLASSES, textDim: Ct, audioDim: Ca, textEncoder: 'hash', audioEncoder: 'logmel', splits };
}

/** A 1.2 s clip: a speaker's pitch and loudness, a clip's own wobble and noise. */
function clip(speaker: number, i: number): Float32Array {
  const r = mulberry32(100 * speaker + i + 1);
  const f = 120 + 60 * speaker + 15 * i;
  const amp = 0.1 + 0.15 * speaker;
  return Float32Array.from(
    { length: 19_200 },
    (_, t) => amp * Math.sin((2 * Math.PI * f * t) / 16_000) * (1 + 0.3 * Math.sin(t / 900 + i)) + 0.02 * (r() - 0.5),
  );
}

let ckpt: string;
let plain: string;
// speaker a: 3 clips, b: 2, c: 1 (lone), and one clip without a speaker
const rows = [
  { id: 'a1', spk: 'a', k: 0, i: 1, text: 'I cannot believe it' },
  { id: 'b1', spk: 'b', k: 1, i: 1, text: 'leave me alone' },
  { id: 'a2', spk: 'a', k: 0, i: 2, text: 'that is wonderful news' },
  { id: 'c1', spk: 'c', k: 2, i: 1, text: 'where were you' },
  { id: 'a3', spk: 'a', k: 0, i: 3, text: 'fine' },
  { id: 'n1', spk: '', k: 3, i: 1, text: 'nobody knows me' },
  { id: 'b2', spk: 'b', k: 1, i: 2, text: 'please stop' },
];
let manifest: string;

beforeAll(async () => {
  await buildCli();
  const a = await train(new CpuBackend('f32'), speakerSet(), {
    model: { fusion: 'cross-self', width: 8, heads: 2, layers: 1, ffnMult: 2, dropout: 0, seed: 1 },
    epochs: 2,
    batchSize: 8,
    lr: 5e-3,
    warmup: 1,
    speakerNorm: true,
    outDir: join(tmp, 'run'),
  });
  ckpt = a.lastCheckpoint;
  const b = await train(new CpuBackend('f32'), speakerSet(), {
    model: { fusion: 'cross-self', width: 8, heads: 2, layers: 1, ffnMult: 2, dropout: 0, seed: 1 },
    epochs: 1,
    batchSize: 8,
    lr: 5e-3,
    warmup: 1,
    outDir: join(tmp, 'run-plain'),
  });
  plain = b.lastCheckpoint;
  for (const r of rows) writeWavF32(join(tmp, `${r.id}.wav`), clip(r.k, r.i), 16_000);
  manifest = join(tmp, 'clips.csv');
  writeFileSync(manifest, `id,audio,text,speaker\n${rows.map((r) => `${r.id},${r.id}.wav,${r.text},${r.spk}`).join('\n')}\n`);
}, 180_000);

describe('SpeakerSums', () => {
  it("gives the statistics training's speakerTokenStats gives over the same clips, bit for bit, and survives JSON", () => {
    const fs = speakerSet();
    const split = fs.splits.train!;
    const want = speakerTokenStats([{ split, speakers: split.speakers! }], Ct, Ca).get('s1')!;
    const sums = new SpeakerSums(Ct, Ca);
    const idx = split.speakers!.flatMap((s, i) => (s === 's1' ? [i] : []));
    const b = split.batch(idx);
    for (let r = 0; r < idx.length; r++) sums.add(b, r);
    expect(sums.clips).toBe(want.utterances);
    for (const m of ['text', 'audio'] as const) {
      expect([...sums.stats(m).mean]).toEqual([...want[m].mean]);
      expect([...sums.stats(m).std]).toEqual([...want[m].std]);
    }
    const back = SpeakerSums.fromJSON(JSON.parse(JSON.stringify(sums.toJSON())));
    expect([...back.stats('audio').std]).toEqual([...sums.stats('audio').std]);
    expect(SPEAKER_MIN_CLIPS).toBe(2);
  });
});

describe('predict with a --speaker-norm checkpoint', () => {
  it("each speaker's clips by that speaker's statistics, as training standardizes them; a lone clip by the train statistics", async () => {
    const backend = new CpuBackend('f32');
    const predictor = await Predictor.open(backend, ckpt);
    expect(predictor.speakerNorm).toBe(true);
    expect(predictor.speakerFallback).not.toBeNull(); // the pooled raw train statistics: what a clip without its own gets
    const inputs = rows.map((r) => ({ id: r.id, audio: join(tmp, `${r.id}.wav`), text: r.text, ...(r.spk ? { speaker: r.spk } : {}) }));
    const got = await predictor.predict(inputs);
    expect(got.map((p) => p.standardization)).toEqual(['speaker', 'speaker', 'speaker', 'train', 'speaker', 'train', 'speaker']);
    await predictor.dispose();

    // the same clips encoded here, standardized as training does (speakers with SPEAKER_MIN_CLIPS or more clips)
    const te = await createTextEncoder('hash');
    const ae = await createAudioEncoder('logmel');
    const t = await te.encode(rows.map((r) => r.text));
    const a = await ae.encode(rows.map((r) => loadAudio(join(tmp, `${r.id}.wav`))));
    const utts: UtteranceFeatures[] = rows.map((r, i) => ({
      id: r.id,
      label: 0,
      text: t.tokens.slice(i * t.T * Ct, (i * t.T + t.lengths[i]!) * Ct),
      textLen: t.lengths[i]!,
      audio: a.tokens.slice(i * a.T * Ca, (i * a.T + a.lengths[i]!) * Ca),
      audioLen: a.lengths[i]!,
    }));
    const split = memoryFeatureSplit(utts, Ct, Ca);
    const speakers = rows.map((r) => r.spk);
    const stats = speakerTokenStats([{ split, speakers }], Ct, Ca);
    for (const [s, st] of stats) if (st.utterances < SPEAKER_MIN_CLIPS) stats.delete(s);
    expect([...stats.keys()].sort()).toEqual(['a', 'b']);
    const std = speakerStandardizedSplit(split, speakers, stats, { fallback: predictor.speakerFallback });
    const { model, meta } = loadCheckpoint(new CpuBackend('f32'), ckpt);
    const c = model.config;
    const fb = std.batch(rows.map((_, i) => i));
    const logits = await model.predict(padBatch(fb, rows.length, c.maxTextLen, c.maxAudioLen, Ct, Ca));
    got.forEach((p, r) => {
      const q = softmax(logits, r * CLASSES.length, CLASSES.length);
      for (const [k, name] of meta.classNames.entries()) expect(p.probabilities[name], `${p.id} ${name}`).toBeCloseTo(q[k]!, 6);
    });
    // without the speaker column, every clip gets the train statistics: another answer for the standardized ones
    const p2 = await Predictor.open(new CpuBackend('f32'), ckpt);
    const none = await p2.predict(inputs.map(({ speaker: _, ...u }) => u));
    await p2.dispose();
    expect(none.every((p) => p.standardization === 'train')).toBe(true);
    expect(none[3]!.probabilities).toEqual(got[3]!.probabilities); // the lone clip: the same either way
    expect(none[0]!.probabilities).not.toEqual(got[0]!.probabilities);
  });

  it('emofuse predict --manifest: the speaker column, a field per row (--json, --out), a column and a note in the table', async () => {
    const out = join(tmp, 'pred.jsonl');
    const j = await emofuse(['predict', '--checkpoint', ckpt, '--manifest', manifest, '--backend', 'cpu', '--json', '--out', out]);
    expect(j.code, j.stderr).toBe(0);
    const preds = JSON.parse(j.stdout) as { id: string; standardization: string }[];
    expect(preds.map((p) => [p.id, p.standardization])).toEqual(rows.map((r) => [r.id, ['c', ''].includes(r.spk) ? 'train' : 'speaker']));
    const lines = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.standardization)).toEqual(preds.map((p) => p.standardization));
    const t = await emofuse(['predict', '--checkpoint', ckpt, '--manifest', manifest, '--backend', 'cpu']);
    expect(t.code, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/standardized by/);
    expect(t.stdout).toMatch(/a1\s+\S+\s+[\d.]+%\s+speaker/);
    expect(t.stdout).toMatch(/c1\s+\S+\s+[\d.]+%\s+train/);
    expect(t.stdout).toMatch(
      /trained with --speaker-norm: 5 clip\(s\) standardized with their speaker's own statistics, 2 with the train statistics only/,
    );
    // a lone --audio clip: the train statistics, said so
    const one = await emofuse(['predict', '--checkpoint', ckpt, '--audio', join(tmp, 'a1.wav'), '--text', 'fine', '--backend', 'cpu']);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/0 clip\(s\) standardized with their speaker's own statistics, 1 with the train statistics only/);
    // a checkpoint trained without --speaker-norm: no field, no column, no note (output as before)
    const p = await emofuse(['predict', '--checkpoint', plain, '--manifest', manifest, '--backend', 'cpu', '--json']);
    expect(p.code, p.stderr).toBe(0);
    expect((JSON.parse(p.stdout) as object[]).every((x) => !('standardization' in x))).toBe(true);
    const pt = await emofuse(['predict', '--checkpoint', plain, '--manifest', manifest, '--backend', 'cpu']);
    expect(pt.stdout).not.toMatch(/standardized|speaker-norm/);
  });
});

describe('export of a --speaker-norm checkpoint', () => {
  it('folds the lone-utterance statistics into the graph: ONNX on raw features equals our forward on standardized ones', async () => {
    // export's own check feeds the graph raw (seeded random) features and our forward the same features standardized
    // by the checkpoint's pooled train statistics first (predict's lone clip); without the fold it refuses (exit 2)
    const onnx = join(tmp, 'sn.onnx');
    const r = await emofuse(['export', '--checkpoint', ckpt, '--onnx', onnx, '--backend', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { check } = JSON.parse(r.stdout) as { check: { maxAbsLogits: number; utterances: number } };
    expect(check.utterances).toBeGreaterThan(0);
    expect(check.maxAbsLogits).toBeLessThan(1e-4);
    expect(existsSync(onnx)).toBe(true);
  });
});

describe.skipIf(!have)(`analyze with a --speaker-norm checkpoint${have ? '' : ` (skipped: no assets at ${assets})`}`, () => {
  // per recording: the first segment by the train statistics, the rest by the running recording statistics
  it('per recording: first segment by train statistics, the rest by running recording statistics; resume continues', async () => {
    const rec = await writeAssembled(join(tmp, 'rec'), 'talk', { clips: pickClips(assets, { count: 8, seed: 5 }), seed: 5 }, ['wav']);
    const predictor = await Predictor.open(new CpuBackend('f32'), ckpt);
    const vad = await SileroVad.open();
    try {
      const warnings: string[] = [];
      const o = { predictor, checkpoint: ckpt, vad, settings: { textFrom: rec.srt }, onWarning: (w: string) => warnings.push(w) };
      const straight = await analyzeRecording(rec.audio.wav!, join(tmp, 'an-straight'), o);
      const ok = straight.segments.filter((s) => s.status === 'ok');
      expect(ok.length).toBeGreaterThan(3);
      expect(ok.map((s) => s.standardization)).toEqual(ok.map((_, i) => (i === 0 ? 'train' : 'recording')));
      expect(warnings.join('\n')).toMatch(/assumes one speaker in the recording/);
      // stopped after 3 segments, then the same call resumes: the same segments as the straight run
      const stop = new AbortController();
      let n = 0;
      const dir = join(tmp, 'an-resumed');
      const first = await analyzeRecording(rec.audio.wav!, dir, { ...o, signal: stop.signal, onSegment: () => ++n === 3 && stop.abort() });
      expect(first.stopped).toBe(true);
      const resumed = await analyzeRecording(rec.audio.wav!, dir, o);
      expect(resumed.resumed).toBeGreaterThan(0);
      const strip = (s: AnalyzedSegment[]) =>
        s.map(({ index, emotion, probabilities, standardization }) => ({ index, emotion, probabilities, standardization }));
      expect(strip(resumed.segments)).toEqual(strip(straight.segments));
      const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
      expect(state.recording.clips).toBe(ok.length);
    } finally {
      await vad.dispose();
      await predictor.dispose();
    }
  }, 300_000);
});
