// `emofuse export`: every fusion variant, briefly trained on cached features (EmoDB through hash + logmel when the
// assets are there, else the generated bimodal task), exported to ONNX and run by onnxruntime-node (CPU) on the
// same features as our forward on both backends; the command itself as a user runs it; its bad inputs.
// Stated tolerance: |logit_onnx - logit_ours| <= 1e-3 (float32 sums in another order; measured ~1e-6 on cpu).

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CpuBackend,
  FUSION_VARIANTS,
  FusionModel,
  WgslBackend,
  checkOnnxAgainstModel,
  exportCheckpointToOnnx,
  openFeatureCache,
  padBatch,
  syntheticBimodal,
  writeSafetensors,
  type CheckpointMeta,
  type FeatureBatch,
  type FeatureSet,
  type FusionConfig,
  type FusionVariant,
} from '@emofuse/model';
import { modelSettings } from '../../packages/model/src/encoders/settings.ts';
import { INPUT_NORM_NAMES, computeInputNorm } from '../../packages/model/src/fusion/input-norm.ts';
import { buildCli, emofuse } from '../helpers/cli.ts';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';

const require = createRequire(import.meta.url);
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-export-'));
const emodb = join(modelSettings.assetsDir, 'emodb');
const TOL = 1e-3;

let features: FeatureSet;
let source: string;
let fixture: GpuFixture;
const checkpoints = new Map<string, string>(); // variant (+ ', linear skip') -> checkpoint
/** Variants also exported with the linear skip into the classifier (both modalities; one). */
const SKIPPED: readonly FusionVariant[] = ['cross-self', 'audio'];
let batches: FeatureBatch[];

/** Variants exported without input standardization (the rest standardize, as train does by default). */
const UNSTANDARDIZED: readonly string[] = ['self', 'audio'];

/**
 * A variant trained 3 AdamW steps on the cpu backend (so biases, gains and positions are not at their init), with
 * the train split's input standardization unless it is in UNSTANDARDIZED, saved as a checkpoint.
 */
async function trainedCheckpoint(fusion: FusionVariant, linearSkip = false): Promise<string> {
  const split = features.splits.train!;
  const idx = Array.from({ length: Math.min(8, split.size) }, (_, i) => i);
  const probe = split.batch(idx);
  const config: FusionConfig = {
    fusion,
    textDim: features.textDim,
    audioDim: features.audioDim,
    maxTextLen: Math.max(...batches.map((b) => b.Tt), probe.Tt),
    maxAudioLen: Math.max(...batches.map((b) => b.Ta), probe.Ta),
    width: 16,
    heads: 2,
    layers: 2,
    ffnMult: 2,
    dropout: 0.2,
    numClasses: features.classNames.length,
    seed: 3,
    linearSkip,
  };
  const be = new CpuBackend('f32');
  const model = FusionModel.create(be, config);
  if (!UNSTANDARDIZED.includes(fusion)) {
    const s = model.spec;
    model.setInputNorm(
      computeInputNorm(split, {
        Tt: config.maxTextLen,
        Ta: config.maxAudioLen,
        Ct: config.textDim,
        Ca: config.audioDim,
        text: s.text,
        audio: s.audio,
        pooled: s.head === 'linear' || (model.hasSkip && { text: s.text, audio: s.audio }),
      }),
    );
  }
  const adamw = { lr: 3e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
  for (let s = 0; s < 3; s++) {
    await model.trainStep(
      padBatch(probe, idx.length, config.maxTextLen, config.maxAudioLen, config.textDim, config.audioDim),
      new Array(config.numClasses).fill(1),
      adamw,
    );
  }
  const state = await model.readState();
  const meta: CheckpointMeta = {
    format: 1,
    config,
    classNames: [...features.classNames],
    step: model.step,
    textEncoder: features.textEncoder,
    audioEncoder: features.audioEncoder,
    metrics: {},
    train: {},
  };
  const file = join(tmp, `${fusion}${linearSkip ? '-skip' : ''}.safetensors`);
  const tensors = new Map([...state].map(([n, t]) => [`param.${n}`, { shape: t.shape, data: t.value }]));
  for (const name of INPUT_NORM_NAMES) {
    const n = model.inputNorm?.[name];
    if (n) {
      tensors.set(`norm.${name}.mean`, { shape: [n.mean.length], data: n.mean });
      tensors.set(`norm.${name}.std`, { shape: [n.std.length], data: n.std });
    }
  }
  writeSafetensors(file, tensors, { emofuse: JSON.stringify(meta) });
  return file;
}

/** The model of a checkpoint on a backend (loaded the way predict and eval load it). */
async function modelOn(be: CpuBackend | WgslBackend, file: string): Promise<FusionModel> {
  const { loadCheckpoint } = await import('@emofuse/model');
  return loadCheckpoint(be, file).model;
}

beforeAll(async () => {
  await buildCli();
  if (existsSync(join(emodb, 'wav'))) {
    const out = join(tmp, 'cache');
    const r = await emofuse(['extract', '--dataset', 'emodb', '--data', emodb, '--limit', '24', '--out', out, '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    features = openFeatureCache(out);
    source = `EmoDB feature cache (hash + logmel), ${out}`;
  } else {
    features = syntheticBimodal({ seed: 2 });
    source = 'generated bimodal task (no EmoDB in the assets)';
  }
  // The check set: every split's utterances, in batches of 5 (lengths differ within a batch: masks matter).
  batches = [];
  for (const split of Object.values(features.splits)) {
    for (let i = 0; i < Math.min(split.size, 15); i += 5)
      batches.push(split.batch(Array.from({ length: Math.min(5, split.size - i) }, (_, j) => i + j)));
  }
  for (const v of FUSION_VARIANTS) checkpoints.set(v, await trainedCheckpoint(v));
  for (const v of SKIPPED) checkpoints.set(`${v}, linear skip`, await trainedCheckpoint(v, true));
  fixture = await openGpu();
}, 300_000);

afterAll(async () => {
  await fixture?.gpu?.destroy();
});

describe('ONNX export of every fusion variant', () => {
  it.each([...FUSION_VARIANTS, ...SKIPPED.map((v) => `${v}, linear skip`)])(
    '%s: onnxruntime CPU agrees with our forward (cpu and wgsl backends) on cached features',
    async (v) => {
      const file = checkpoints.get(v)!;
      const { onnx, meta } = await exportCheckpointToOnnx(file);
      expect(meta.config.fusion).toBe(v.split(',')[0]);
      if (v.endsWith('linear skip'))
        expect((await modelOn(new CpuBackend('f32'), file)).params.some((p) => p.name === 'skip.w')).toBe(true);
      const cpu = await checkOnnxAgainstModel(onnx, await modelOn(new CpuBackend('f32'), file), batches);
      const norm = UNSTANDARDIZED.includes(v.split(',')[0]!) ? 'inputs as they are' : 'standardized inputs';
      const lines = [
        `${v} (${norm}): ${cpu.utterances} utterances of ${source}; max |logit diff| cpu ${cpu.maxAbsLogits.toExponential(2)}`,
      ];
      expect(cpu.utterances).toBeGreaterThan(5);
      expect(cpu.maxAbsLogits).toBeLessThanOrEqual(TOL);
      expect(cpu.argmaxDisagreements).toBe(0);
      if (fixture.gpu) {
        const be = await WgslBackend.create(fixture.gpu);
        const wgsl = await checkOnnxAgainstModel(onnx, await modelOn(be, file), batches);
        lines.push(`wgsl ${wgsl.maxAbsLogits.toExponential(2)} (probabilities ${wgsl.maxAbsProbabilities.toExponential(2)})`);
        expect(wgsl.maxAbsLogits).toBeLessThanOrEqual(TOL);
      }
      console.log(lines.join(', '));
    },
  );

  it('an utterance with no audio and one with no text (mixed corpora): onnxruntime agrees with our forward', async () => {
    // each check batch with row 0's audio and row 1's text removed (zero tokens: a text-only or audio-only utterance)
    const missing = batches
      .filter((fb) => fb.ids.length >= 2)
      .map((fb) => {
        const n = fb.ids.length;
        const [Ct, Ca] = [fb.text.length / (n * fb.Tt), fb.audio.length / (n * fb.Ta)];
        const out = {
          ...fb,
          text: fb.text.slice(),
          textMask: fb.textMask.slice(),
          audio: fb.audio.slice(),
          audioMask: fb.audioMask.slice(),
        };
        out.audio.fill(0, 0, fb.Ta * Ca);
        out.audioMask.fill(0, 0, fb.Ta);
        out.text.fill(0, fb.Tt * Ct, 2 * fb.Tt * Ct);
        out.textMask.fill(0, fb.Tt, 2 * fb.Tt);
        return out;
      });
    for (const v of ['cross-self, linear skip', 'linear']) {
      const file = checkpoints.get(v)!;
      const { onnx } = await exportCheckpointToOnnx(file);
      const cpu = await checkOnnxAgainstModel(onnx, await modelOn(new CpuBackend('f32'), file), missing);
      console.log(`${v}, modalities missing: ${cpu.utterances} utterances, max |logit diff| ${cpu.maxAbsLogits.toExponential(2)}`);
      expect(cpu.utterances).toBeGreaterThan(5);
      expect(cpu.maxAbsLogits).toBeLessThanOrEqual(TOL);
      expect(cpu.argmaxDisagreements).toBe(0);
    }
  });

  it('a wrong export is caught: a perturbed weight moves the logits past the tolerance', async () => {
    const file = checkpoints.get('cross-self')!;
    const { meta, params, norm } = (await import('@emofuse/model')).readCheckpointForExport(file);
    const { fusionToOnnx } = await import('@emofuse/model');
    const model = await modelOn(new CpuBackend('f32'), file);
    const w = params.get('self.1.ln2.g')!;
    const bad = new Map(params);
    bad.set('self.1.ln2.g', { shape: w.shape, data: w.data.map((x) => x * 1.5) });
    expect((await checkOnnxAgainstModel(await fusionToOnnx(meta, bad, { norm }), model, batches)).maxAbsLogits).toBeGreaterThan(TOL);
    // ... and so does leaving the input standardization out.
    expect(norm).not.toBeNull();
    expect((await checkOnnxAgainstModel(await fusionToOnnx(meta, params, { norm: null }), model, batches)).maxAbsLogits).toBeGreaterThan(
      TOL,
    );
  });

  it('carries dynamic dimensions, the masks as inputs, and class names and encoders in its metadata (decoded by onnx-proto)', async () => {
    const { onnx } = await exportCheckpointToOnnx(checkpoints.get('cross-self')!);
    const { onnx: proto } = require('onnx-proto') as typeof import('onnx-proto');
    const m = proto.ModelProto.decode(onnx);
    type Dim = { dimParam?: string | null; dimValue?: unknown };
    const dims = (vi: NonNullable<NonNullable<NonNullable<typeof m.graph>['input']>[number]>) =>
      (vi.type!.tensorType!.shape!.dim as Dim[]).map((d) => d.dimParam || Number(d.dimValue));
    expect(m.graph!.input!.map((i) => i.name)).toEqual(['text', 'text_mask', 'audio', 'audio_mask']);
    expect(dims(m.graph!.input![0]!)).toEqual(['batch', 'text_len', features.textDim]);
    expect(dims(m.graph!.input![3]!)).toEqual(['batch', 'audio_len']);
    expect(m.graph!.output!.map((o) => o.name)).toEqual(['logits', 'probabilities']);
    const meta = Object.fromEntries(m.metadataProps!.map((p) => [p.key, p.value]));
    expect(JSON.parse(meta.class_names!)).toEqual([...features.classNames]);
    expect(meta.text_encoder).toBe(features.textEncoder);
    expect(meta.audio_encoder).toBe(features.audioEncoder);
    expect(JSON.parse(meta.emofuse!).config.fusion).toBe('cross-self');
    expect(m.graph!.node!.some((n) => n.opType === 'Dropout')).toBe(false);
    expect(meta.standardized_inputs).toBe('text,audio');
    expect(m.graph!.initializer!.map((t) => t.name)).toContain('norm.text.mean');
  });
});

describe('emofuse export (the command)', () => {
  it('writes the ONNX file after checking it against our forward on the feature cache', async () => {
    const out = join(tmp, 'gate.onnx');
    const args = ['export', '--checkpoint', checkpoints.get('gate')!, '--onnx', out, '--json'];
    if (existsSync(join(tmp, 'cache'))) args.push('--features', join(tmp, 'cache'), '--split', 'train');
    const r = await emofuse(args);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout);
    expect(res.check.ok).toBe(true);
    expect(res.check.utterances).toBeGreaterThan(0);
    expect(res.check.maxAbsLogits).toBeLessThanOrEqual(TOL);
    expect(readFileSync(out).length).toBe(res.bytes);
  });

  it('prints the check and the file in words, on seeded random features without --features', async () => {
    const r = await emofuse(['export', '--checkpoint', checkpoints.get('text')!, '--onnx', join(tmp, 'text.onnx')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/max \|logit diff\| \d\.\d\de-\d+/);
    expect(r.stdout).toMatch(/wrote .*text\.onnx/);
  });

  it('refuses a missing checkpoint, a file that is not one, and a checkpoint of another format, naming the file (exit 2)', async () => {
    const missing = await emofuse(['export', '--checkpoint', join(tmp, 'nope.safetensors'), '--onnx', join(tmp, 'x.onnx')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/nope\.safetensors does not exist/);
    const junk = join(tmp, 'junk.safetensors');
    writeFileSync(junk, 'this is not a checkpoint');
    const bad = await emofuse(['export', '--checkpoint', junk, '--onnx', join(tmp, 'x.onnx')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/junk\.safetensors is not a safetensors checkpoint/);
    expect(bad.stderr).not.toMatch(/\s+at /);
    const other = join(tmp, 'other-format.safetensors');
    writeSafetensors(other, new Map([['param.x', { shape: [1], data: new Float32Array(1) }]]), {
      emofuse: JSON.stringify({ format: 2, config: {} }),
    });
    const fmt = await emofuse(['export', '--checkpoint', other, '--onnx', join(tmp, 'x.onnx')]);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toMatch(/other-format\.safetensors: .*this emofuse reads/); // the checkpoint reader's words or the exporter's
    expect(fmt.stderr).not.toMatch(/\s+at /);
    expect(existsSync(join(tmp, 'x.onnx'))).toBe(false);
  });
});
