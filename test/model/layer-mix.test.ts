// The audio stem's learned mix of layers (config.audioLayers La > 1, Whisper '@all' features: each audio token
// [La, Ca / La], layer axis outer): mixed = sum_l softmax(audio.layerMix)_l x[:, :, l] before the projection.
// What it computes (equal weights at init; one layer when its weight dominates, as a one-layer model reading that
// layer), its backward against central finite differences (cpu, float64), the three backends training alike, and the
// ONNX export of a mixed model agreeing with the forward; and the features it reads: 'whisper@all' gives every layer's
// tokens, each equal to that layer's own encoder's (sliced and full window).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WaveFile } from 'wavefile';
import { extractFeatures, openFeatureCache } from '../../packages/model/src/cache/index.ts';
import { createHashEncoder } from '../../packages/model/src/encoders/hash.ts';
import { createAudioEncoder, itemTokens } from '../../packages/model/src/encoders/index.ts';
import { parseWhisperSpec } from '../../packages/model/src/encoders/whisper.ts';
import {
  CpuBackend,
  FusionModel,
  OrtBackend,
  WgslBackend,
  checkOnnxAgainstModel,
  fusionToOnnx,
  randomFeatureBatches,
  type AdamwSettings,
  type CheckpointMeta,
  type FusionConfig,
  type StepInputs,
} from '@emofuse/model';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';
import { expectTrainsLikeCpu, tinyConfig, tinyInputs } from './helpers.ts';

describe("whisper '@all': every layer's tokens in one token of [L+1, C]", () => {
  const dir = join(import.meta.dirname, '../fixtures/models/tiny-random-whisper'); // 2 layers, width 16
  const clip = Float32Array.from({ length: 11000 }, (_, i) => 0.3 * Math.sin(2 * Math.PI * (200 + (i / 16000) * 400) * (i / 16000)));
  it('parses @all', () => {
    expect(parseWhisperSpec('Xenova/whisper-base@all')).toEqual({
      model: 'Xenova/whisper-base',
      layer: 'last',
      window: 'sliced',
      all: true,
    });
    expect(parseWhisperSpec('@all+full')).toMatchObject({ layer: 'last', window: 'full', all: true });
    expect(parseWhisperSpec('@2').all).toBeUndefined();
  });
  for (const window of ['sliced', 'full'] as const) {
    it(`${window} window: layers 0, 1, 2 as their own encoders give them`, async () => {
      const all = await createAudioEncoder(`whisper:${dir}@all+${window}`);
      expect(all.dim).toBe(3 * 16);
      expect(all.layers).toBe(3);
      expect(all.version).toMatch(window === 'full' ? /^whisper-v1:layers0-2:/ : /^whisper-v2:layers0-2:sliced8:/);
      const got = await all.encode([clip, clip.subarray(0, 4000)]);
      for (const l of [0, 1, 2]) {
        const one = await createAudioEncoder(`whisper:${dir}@${l}+${window}`);
        const want = await one.encode([clip, clip.subarray(0, 4000)]);
        expect(Array.from(got.lengths)).toEqual(Array.from(want.lengths));
        for (const b of [0, 1]) {
          const [g, w] = [itemTokens(got, b), itemTokens(want, b)]; // [T, 3, 16], [T, 16]
          let worst = 0;
          for (let t = 0; t < want.lengths[b]!; t++)
            for (let c = 0; c < 16; c++) worst = Math.max(worst, Math.abs(g[(t * 3 + l) * 16 + c]! - w[t * 16 + c]!));
          expect(worst, `layer ${l}, clip ${b}`).toBeLessThan(1e-5);
        }
        await one.dispose?.();
      }
      await all.dispose?.();
    });
  }
  it('the feature cache records the layers and the feature set carries them (what train gives the model)', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'emofuse-layers-'));
    try {
      const items = [0, 1].map((i) => {
        const wav = new WaveFile();
        wav.fromScratch(1, 16000, '32f', clip.subarray(0, 6000 + 4000 * i));
        const file = join(tmp, `c${i}.wav`);
        writeFileSync(file, wav.toBuffer());
        return { id: `c${i}`, text: 'x', audio: file, label: i, split: 'train' };
      });
      const audio = await createAudioEncoder(`whisper:${dir}@all`);
      const out = join(tmp, 'cache');
      await extractFeatures({
        dataset: { name: 'manifest', classNames: ['a', 'b'], items, source: 'test' },
        textEncoder: await createHashEncoder(8),
        audioEncoder: audio,
        out,
      });
      const fs = openFeatureCache(out);
      expect(fs.index.audio).toMatchObject({ dim: 48, layers: 3, window: 'sliced' });
      expect(fs.audioDim).toBe(48);
      expect(fs.audioLayers).toBe(3);
      await audio.dispose?.();
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

const LA = 3; // layers per audio token
const CL = 4; // width of one layer
const mixed = (fusion: FusionConfig['fusion'], over: Partial<FusionConfig> = {}) =>
  tinyConfig(fusion, { audioDim: LA * CL, audioLayers: LA, ...over });

/** Layer l of a [B, Ta, La * Cl] audio input, as a [B, Ta, Cl] input (or the La layers averaged with weights w). */
function layerOf(inp: StepInputs, w: number[]): StepInputs {
  const rows = inp.audio.length / (LA * CL);
  const audio = new Float32Array(rows * CL);
  for (let r = 0; r < rows; r++)
    for (let l = 0; l < LA; l++) for (let c = 0; c < CL; c++) audio[r * CL + c]! += w[l]! * inp.audio[(r * LA + l) * CL + c]!;
  return { ...inp, audio };
}

/** The La = 1 model with the mixed model's parameters (all but audio.layerMix). */
async function oneLayerTwin(model: FusionModel): Promise<FusionModel> {
  const twin = FusionModel.create(new CpuBackend('f64'), { ...model.config, audioDim: CL, audioLayers: 1 });
  twin.loadState(await model.readState(), 0);
  return twin;
}

describe('the layer mix computes a softmax-weighted sum of the layers', () => {
  for (const fusion of ['audio', 'cross-self'] as const) {
    it(`${fusion}: equal weights at init; one layer when its logit dominates`, async () => {
      const model = FusionModel.create(new CpuBackend('f64'), mixed(fusion));
      expect(model.params.find((p) => p.name === 'audio.layerMix')?.shape).toEqual([LA]);
      const twin = await oneLayerTwin(model);
      const inp = tinyInputs(model.config, 3, 5);
      // float64 model; the twin's input is the mix rounded to float32
      const close = (a: ArrayLike<number>, b: ArrayLike<number>) => {
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!), `logit ${i}`).toBeLessThan(1e-6);
      };
      close(await model.predict(inp), await twin.predict(layerOf(inp, [1 / 3, 1 / 3, 1 / 3])));
      const mix = model.params.find((p) => p.name === 'audio.layerMix')!;
      expect(await model.layerMixWeights()).toEqual([1 / 3, 1 / 3, 1 / 3]);
      model.backend.write(mix.value, [-40, 40, -40]); // softmax ~ (0, 1, 0)
      expect((await model.layerMixWeights())!.map((w) => Math.round(w * 1e6) / 1e6)).toEqual([0, 1, 0]);
      const l1 = await model.predict(inp);
      close(l1, await twin.predict(layerOf(inp, [0, 1, 0])));
      // and not the other layers: the check can fail
      const l0 = await twin.predict(layerOf(inp, [1, 0, 0]));
      expect(Math.max(...Array.from(l1, (v, i) => Math.abs(v - l0[i]!)))).toBeGreaterThan(1e-3);
    });
  }
});

describe('layer mix backward vs finite differences (cpu, float64)', () => {
  const EPS = 1e-5;
  const ATOL = 1e-6;
  const RTOL = 1e-4;
  const cases = [
    { name: 'audio', config: mixed('audio', { linearSkip: true }) },
    { name: 'cross-self, linear skip, block dropout 0.2', config: mixed('cross-self', { linearSkip: true, blockDropout: 0.2 }) },
    { name: 'gate', config: mixed('gate') },
  ];
  for (const { name, config } of cases) {
    it(name, async () => {
      const be = new CpuBackend('f64');
      const model = FusionModel.create(be, config);
      const mix = model.params.find((p) => p.name === 'audio.layerMix')!;
      be.write(mix.value, [0.3, -0.2, 0.5]); // away from the symmetric init
      const acts = model.setInputs(tinyInputs(model.config, 3, 11), [1, 2, 0.5]);
      const loss = async () => {
        await model.forward(acts, true, true);
        return model.readLoss(acts);
      };
      await model.forward(acts, true, true);
      await model.backward(acts, true);
      const grads = await model.readGrads();
      // every element of the mix, and a few of the audio projection it feeds
      for (const [p, picks] of [
        [mix, [0, 1, 2]],
        [model.params.find((q) => q.name === 'audio.proj.w')!, [0, 5, CL * 8 - 1]],
      ] as const) {
        const value = await be.read(p.value);
        const g = grads.get(p.name)!;
        for (const i of picks) {
          const orig = value[i]!;
          value[i] = orig + EPS;
          be.write(p.value, value);
          const lp = await loss();
          value[i] = orig - EPS;
          be.write(p.value, value);
          const lm = await loss();
          value[i] = orig;
          be.write(p.value, value);
          const fd = (lp - lm) / (2 * EPS);
          expect(Math.abs(fd - g[i]!), `${p.name}[${i}] analytic ${g[i]} vs fd ${fd}`).toBeLessThanOrEqual(ATOL + RTOL * Math.abs(fd));
        }
      }
      // not vacuous: the mix's gradient is not zero, and sums to 0 (softmax ignores a constant added to every logit)
      const gm = grads.get('audio.layerMix')!;
      expect(Math.max(...Array.from(gm, Math.abs))).toBeGreaterThan(1e-6);
      expect(Math.abs(gm[0]! + gm[1]! + gm[2]!)).toBeLessThan(1e-12);
    });
  }
});

const STEPS = 3;
const LR = 1e-3;
const adamw: AdamwSettings = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
const agree = { steps: STEPS, lossRtol: 1e-4, paramAtol: STEPS * LR, meanAtol: 1e-5 };
const trainCases = [
  { fusion: 'audio' as const, linearSkip: true },
  { fusion: 'cross-self' as const, linearSkip: true },
];

describe('ort and cpu train a mixed model alike', () => {
  const be = OrtBackend.create();
  afterAll(() => be.destroy());
  for (const o of trainCases) {
    it(`${o.fusion}: ${STEPS} steps, losses and parameters agree (audio.layerMix moved)`, async () => {
      const config = mixed(o.fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2, linearSkip: o.linearSkip });
      const model = FusionModel.create(be, config);
      const cpu = FusionModel.create(new CpuBackend('f32'), config);
      await expectTrainsLikeCpu('ort', model, cpu, adamw, agree);
      const mix = (await cpu.readState()).get('audio.layerMix')!.value;
      expect(Math.max(...Array.from(mix, Math.abs))).toBeGreaterThan(1e-4);
    });
  }
});

describe('wgsl and cpu train a mixed model alike', () => {
  let fx: GpuFixture;
  beforeAll(async () => {
    fx = await openGpu();
  });
  afterAll(async () => {
    await fx.gpu?.destroy();
  });
  for (const o of trainCases) {
    it(`${o.fusion}: ${STEPS} steps, losses and parameters agree`, async (ctx) => {
      if (!fx.gpu) return ctx.skip(fx.skipReason);
      const config = mixed(o.fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2, linearSkip: o.linearSkip });
      const model = FusionModel.create(await WgslBackend.create(fx.gpu), config);
      const cpu = FusionModel.create(new CpuBackend('f32'), config);
      await expectTrainsLikeCpu('wgsl', model, cpu, adamw, agree);
    });
  }
});

describe('export carries the mix', () => {
  it('the ONNX graph of a mixed cross-self model (standardized, linear skip) agrees with the forward', async () => {
    const config = mixed('cross-self', { width: 8, heads: 2, maxTextLen: 4, maxAudioLen: 7, linearSkip: true });
    const model = FusionModel.create(new CpuBackend('f32'), config);
    const state = await model.readState();
    model.loadState(new Map([...state].map(([n, s]) => [n, { value: s.value.map((x, i) => x + 0.3 * Math.sin(i + n.length)) }])), 0);
    const st = (n: number, k: number) => ({
      mean: Float32Array.from({ length: n }, (_, i) => Math.sin(i + k) / 2),
      std: Float32Array.from({ length: n }, (_, i) => 1 + Math.cos(3 * i + k) / 2),
    });
    model.setInputNorm({ text: st(config.textDim, 1), audio: st(config.audioDim, 2), pooled: st(model.pooledNormWidth, 3) });
    const params = new Map([...(await model.readState())].map(([n, s]) => [n, { shape: s.shape, data: s.value }]));
    expect(params.has('audio.layerMix')).toBe(true);
    const meta: CheckpointMeta = {
      format: 1,
      config,
      classNames: ['a', 'b', 'c'],
      step: 0,
      textEncoder: 't',
      audioEncoder: 'whisper@all',
      metrics: {},
      train: {},
    };
    const onnx = await fusionToOnnx(meta, params, { norm: model.inputNorm });
    // the graph reads audio [batch, audio_len, La, Ca / La]
    const { onnx: proto } = (await import('node:module')).createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto');
    const audioIn = proto.ModelProto.decode(onnx).graph!.input!.find((i) => i.name === 'audio')!;
    const dims = audioIn.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(dims).toEqual(['batch', 'audio_len', LA, CL]);
    const check = await checkOnnxAgainstModel(onnx, model, randomFeatureBatches(config, 3, 4, 5));
    expect(check.utterances).toBe(12);
    expect(check.maxAbsLogits).toBeLessThanOrEqual(1e-3);
    expect(check.argmaxDisagreements).toBe(0);
  });
});
