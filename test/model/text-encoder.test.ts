// The trainable text encoder (packages/model/src/fusion/text-encoder.ts) loaded from the converted all-MiniLM-L6-v2
// gives the hidden states of the ONNX encoder that `extract --text-encoder bert:sentence-transformers/all-MiniLM-L6-v2`
// runs (transformers.js on onnxruntime), before any training, on real sentences of different lengths (padded in one
// batch), on the ort and cpu backends (and wgsl where a WebGPU adapter is). Skipped, with the reason, where the
// converted model is absent; CI converts it and sets EMOFUSE_REQUIRE_DEFAULT_MODEL=1, where absence fails.
//
// GELU is BERT's exact erf form (config.gelu 'erf', from readBertWeights) on every backend, so what is left is float32
// rounding. Asserted: max |ours - onnx| <= 2e-5 over every real token's state (largest |state| 5.77), about 6x the
// measured 3.0e-6 (ort), 2.7e-6 (cpu), 3.2e-6 (wgsl on llvmpipe) (2026-12-07). Before the erf form, the backends'
// tanh GELU gave 4.3e-3 on all three; the 'tanh' case below keeps that gap measured, so the bound can fail. The ort
// forward traced (as the ONNX export records it: Gelu with no 'approximate', the exact form) and run as an ONNX model
// is held to the same bound (measured 3.0e-6).

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { modelSettings } from '../../packages/model/src/encoders/index.ts';
import { createBertEncoder, locateModel, withLocation } from '../../packages/model/src/encoders/transformers.ts';
import { loadTransformers } from '../../packages/model/src/encoders/transformers-env.ts';
import { readBertWeights } from '../../packages/model/src/fusion/text-encoder-weights.ts';
import { TrainableTextEncoder } from '../../packages/model/src/fusion/text-encoder.ts';
import { type Backend, CpuBackend, type GeluForm, OrtBackend, WgslBackend } from '@emofuse/model';
import { openGpu } from '../helpers/gpu.ts';

const SPEC = 'sentence-transformers/all-MiniLM-L6-v2';
const folder = join(modelSettings.modelsDir, SPEC);
const have = existsSync(join(folder, 'onnx', 'model.onnx'));
const reason = `no converted all-MiniLM-L6-v2 at ${folder}: run 'python3 scripts/convert_minilm.py'`;
if (!have && process.env.EMOFUSE_REQUIRE_DEFAULT_MODEL === '1') throw new Error(`EMOFUSE_REQUIRE_DEFAULT_MODEL=1 but ${reason}`);

/** MELD-like utterances: short and long, punctuation, a word-piece split, casing. */
const SENTENCES = [
  "Oh my God, you're back!",
  'fine.',
  'Okay, so, I was thinking maybe we could go to the museum this weekend, if that is not too boring for you?',
  'Unbelievable. Absolutely unbelievable!!',
];

/** Token ids and mask [B, T] of `texts` from the model's own tokenizer (right padding). */
async function tokenize(texts: readonly string[], spec = SPEC): Promise<{ ids: Float32Array; mask: Float32Array; B: number; T: number }> {
  const { AutoTokenizer } = await loadTransformers();
  const tok = (await withLocation(locateModel(spec, 'bert'), (n) => AutoTokenizer.from_pretrained(n))) as unknown as (
    t: string[],
    o: object,
  ) => Promise<Record<string, { data: BigInt64Array; dims: number[] }>>;
  const enc = await tok([...texts], { padding: true, truncation: true, max_length: 512 });
  const [B, T] = enc.input_ids!.dims as [number, number];
  return { ids: Float32Array.from(enc.input_ids!.data, Number), mask: Float32Array.from(enc.attention_mask!.data, Number), B, T };
}

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

/** max |ours - onnx| over the real tokens of SENTENCES, and the largest |state|; `gelu` overrides the config's form. */
async function compare(spec: string, folder: string, be: Backend, gelu?: GeluForm): Promise<{ worst: number; scale: number }> {
  const onnx = await createBertEncoder(spec);
  const want = await onnx.encode(SENTENCES); // [B, T, C], padded positions zero
  await onnx.dispose?.();
  const { ids, mask, B, T } = await tokenize(SENTENCES, spec);
  expect([B, T]).toEqual([want.B, want.T]);
  const { config, weights } = readBertWeights(folder);
  expect(config.gelu).toBe('erf');
  const enc = TrainableTextEncoder.create(be, { ...config, gelu: gelu ?? config.gelu }, { weights, maxLen: T });
  const a = enc.setInputs(ids, mask, B);
  await enc.forward(a);
  const got = await be.read(a.out);
  const C = config.width;
  let [worst, scale] = [0, 0];
  for (let b = 0; b < B; b++)
    for (let t = 0; t < want.lengths[b]!; t++)
      for (let c = 0; c < C; c++) {
        const i = (b * T + t) * C + c;
        worst = Math.max(worst, Math.abs(got[i]! - want.tokens[i]!));
        scale = Math.max(scale, Math.abs(want.tokens[i]!));
      }
  return { worst, scale };
}

describe('text encoder = the ONNX tiny random BERT (the test fixture: the same export layout, every test run)', () => {
  const tiny = join(import.meta.dirname, '../fixtures/models/tiny-random-bert');
  it.each(['ort', 'cpu'] as const)(
    'on %s',
    async (name) => {
      const be = name === 'ort' ? OrtBackend.create() : new CpuBackend('f32');
      const { worst, scale } = await compare(tiny, tiny, be);
      console.log(`tiny random BERT on ${name}: max |ours - onnx| = ${worst.toExponential(2)} (largest |state| ${scale.toFixed(2)})`);
      expect(worst).toBeLessThan(1e-5);
      await be.destroy();
    },
    60_000,
  );
});

describe.skipIf(!have)(`text encoder = the ONNX all-MiniLM-L6-v2${have ? '' : ` (skipped: ${reason})`}`, () => {
  const backends: [string, () => Promise<Backend>][] = [
    ['ort', async () => OrtBackend.create()],
    ['cpu', async () => new CpuBackend('f32')],
  ];
  if (fx.gpu) backends.push(['wgsl', () => WgslBackend.create(fx.gpu!)]);

  it.each(backends)(
    'hidden states within float32 tolerance (max |diff| <= 2e-5) on %s',
    async (name, open) => {
      expect(readBertWeights(folder).config).toMatchObject({ width: 384, heads: 12, layers: 6, ffn: 1536, vocab: 30522 });
      const be = await open();
      const { worst, scale } = await compare(SPEC, folder, be);
      console.log(`text encoder on ${name}: max |ours - onnx| = ${worst.toExponential(2)} (largest |state| ${scale.toFixed(2)})`);
      expect(worst).toBeLessThanOrEqual(2e-5);
      if (name !== 'wgsl') await be.destroy();
    },
    120_000,
  );

  it('the traced ort forward (what the ONNX export records: Gelu with the default approximate none), run as ONNX', async () => {
    const onnx = await createBertEncoder(SPEC);
    const want = await onnx.encode(SENTENCES);
    await onnx.dispose?.();
    const { ids, mask, B, T } = await tokenize(SENTENCES);
    const be = OrtBackend.create({ threads: 1 });
    const { config, weights } = readBertWeights(folder);
    const enc = TrainableTextEncoder.create(be, config, { weights, maxLen: T });
    const a = enc.setInputs(ids, mask, B);
    await enc.forward(a);
    const { graph, feeds, values } = be.trace([a.out]);
    await be.destroy();
    graph.output('states', values[0]!, [B, T, config.width]);
    graph.prune();
    const bytes = graph.toBytes();
    const proto = (createRequire(import.meta.url)('onnx-proto') as typeof import('onnx-proto')).onnx;
    const gelus = (proto.ModelProto.decode(bytes).graph?.node ?? []).filter((n) => n.opType === 'Gelu');
    expect(gelus).toHaveLength(6); // one per block, no 'approximate' attribute: the exact form
    for (const n of gelus) expect(n.attribute ?? []).toEqual([]);
    const ort = createRequire(import.meta.url)('onnxruntime-node') as typeof import('onnxruntime-node');
    const session = await ort.InferenceSession.create(bytes);
    const input: Record<string, import('onnxruntime-node').Tensor> = {};
    for (const f of feeds) {
      if (!session.inputNames.includes(f.name)) continue;
      const n = f.dims.reduce((x, y) => x * y, 1);
      input[f.name] =
        f.data instanceof Float32Array
          ? new ort.Tensor('float32', f.data.slice(0, n), f.dims)
          : new ort.Tensor('int64', f.data.slice(0, n), f.dims);
    }
    const got = (await session.run(input)).states!.data as Float32Array;
    await session.release();
    let worst = 0;
    for (let b = 0; b < B; b++)
      for (let t = 0; t < want.lengths[b]!; t++)
        for (let c = 0; c < config.width; c++) {
          const i = (b * T + t) * config.width + c;
          worst = Math.max(worst, Math.abs(got[i]! - want.tokens[i]!));
        }
    console.log(`traced text encoder run as ONNX: max |ours - onnx| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThanOrEqual(2e-5);
  }, 120_000);

  it('the tanh form (what deltas fine-tuned before the erf form run) is off by about 4e-3: the bound above can fail', async () => {
    const be = OrtBackend.create();
    const { worst } = await compare(SPEC, folder, be, 'tanh');
    console.log(`text encoder on ort with the tanh GELU: max |ours - onnx| = ${worst.toExponential(2)}`);
    expect(worst).toBeGreaterThan(1e-3);
    await be.destroy();
  }, 120_000);
});
