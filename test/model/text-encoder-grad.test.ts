// The trainable text encoder (packages/model/src/fusion/text-encoder.ts) on a 2-block toy: its backward against
// central finite differences (cpu, float64), partial fine-tuning (only the top k blocks get gradients, equal to the
// full backward's), and the three backends agreeing on the states and gradients, at the toy's shape and at
// MiniLM's attention shape (width 384, 12 heads of 32) so the fused attention kernels run head size 32 with 12 heads.

import { afterAll, describe, expect, it } from 'vitest';
import { randomF32 } from '@emofuse/kernels';
import { type Backend, CpuBackend, OrtBackend, WgslBackend } from '@emofuse/model';
import { type TextEncoderConfig, TrainableTextEncoder } from '../../packages/model/src/fusion/text-encoder.ts';
import { openGpu } from '../helpers/gpu.ts';

const TOY: TextEncoderConfig = { vocab: 13, maxPositions: 10, typeVocab: 2, width: 8, heads: 2, layers: 2, ffn: 16, layerNormEps: 1e-12 };
const [B, T] = [3, 6];
const LENGTHS = [6, 3, 1]; // right padding, a one-token row
const MASK = Float32Array.from({ length: B * T }, (_, i) => (i % T < LENGTHS[Math.floor(i / T)]! ? 1 : 0));
const IDS = Float32Array.from({ length: B * T }, (_, i) => (MASK[i] ? (i * 5 + 3) % TOY.vocab : 0)); // repeats; padding id 0

/** The loss sum over real tokens of out * R, R fixed; its gradient dout = R * mask. */
function lossWeights(C: number): Float32Array {
  const r = randomF32(B * T * C, 99);
  for (let i = 0; i < r.length; i++) r[i]! *= MASK[Math.floor(i / C)]!;
  return r;
}

async function run(be: Backend, enc: TrainableTextEncoder, R: Float32Array, ids = IDS, mask = MASK, rows = B) {
  // one step: forward, the head's gradient, backward (activations are step scratch on ort); then the states alone
  const a = enc.setInputs(ids, mask, rows);
  await enc.forward(a);
  be.write(a.dout, R);
  await enc.backward(a);
  const grads = new Map<string, Float64Array>();
  for (const p of enc.trainable) grads.set(p.name, Float64Array.from(await be.read(p.grad!)));
  await enc.forward(enc.setInputs(ids, mask, rows));
  const out = await be.read(a.out);
  let loss = 0;
  for (let i = 0; i < R.length; i++) loss += out[i]! * R[i]!;
  return { out, grads, loss };
}

describe('text encoder backward vs finite differences (cpu, float64, 2-block toy)', () => {
  it('every parameter, embeddings included (trainTop = layers + 1)', async () => {
    const be = new CpuBackend('f64');
    const enc = TrainableTextEncoder.create(be, TOY, { trainTop: TOY.layers + 1, maxLen: T, seed: 3 });
    const R = lossWeights(TOY.width);
    const { grads } = await run(be, enc, R);
    const EPS = 1e-5;
    let worst = { name: '', i: 0, an: 0, fd: 0, bad: -Infinity };
    let total = 0;
    for (const p of enc.params) {
      const value = await be.read(p.value);
      const g = grads.get(p.name)!;
      const n = value.length;
      // spread picks; for the word table rows the ids use (others have no gradient, nor a difference)
      const picks = p.name.includes('word')
        ? [IDS[0]! * TOY.width, IDS[4]! * TOY.width + 5, IDS[7]! * TOY.width + 2]
        : [0, n - 1, n >> 1, Math.floor(n / 3)];
      for (const i of picks) {
        const orig = value[i]!;
        const at = async (x: number) => {
          value[i] = x;
          be.write(p.value, value);
          const a = enc.setInputs(IDS, MASK, B);
          const out = await be.read(await enc.forward(a));
          return Array.from(out).reduce((s, y, j) => s + y * R[j]!, 0);
        };
        const fd = ((await at(orig + EPS)) - (await at(orig - EPS))) / (2 * EPS);
        value[i] = orig;
        be.write(p.value, value);
        const bad = Math.abs(fd - g[i]!) - (1e-6 + 1e-4 * Math.abs(fd));
        if (bad > worst.bad) worst = { name: p.name, i, an: g[i]!, fd, bad };
        total += Math.abs(g[i]!);
      }
    }
    expect(worst.bad <= 0, `worst ${worst.name}[${worst.i}]: analytic ${worst.an} vs fd ${worst.fd}`).toBe(true);
    expect(total).toBeGreaterThan(1e-2); // not vacuous
  });

  it('trainTop 1: only the top block has gradients, equal to the full backward', async () => {
    const be = new CpuBackend('f64');
    const R = lossWeights(TOY.width);
    const full = await run(be, TrainableTextEncoder.create(be, TOY, { trainTop: TOY.layers + 1, maxLen: T, seed: 3 }), R);
    const top = TrainableTextEncoder.create(be, TOY, { trainTop: 1, maxLen: T, seed: 3 });
    const part = await run(be, top, R);
    expect([...part.grads.keys()].every((n) => n.startsWith('encoder.layer.1.'))).toBe(true);
    expect(part.grads.size).toBe(16);
    for (const [n, g] of part.grads) expect([...g]).toEqual([...full.grads.get(n)!]);
    expect(top.params.find((p) => p.name.startsWith('encoder.layer.0'))!.grad).toBeUndefined();
  });

  it('refuses a token id outside the vocabulary', () => {
    const enc = TrainableTextEncoder.create(new CpuBackend('f64'), TOY, { maxLen: T });
    expect(() => enc.setInputs([1, 13], [1, 1], 1)).toThrow(/token id 13 at \[0, 1\] is not in 0\.\.12/);
  });
});

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe('text encoder: backends agree (states and gradients vs cpu float64)', () => {
  const shapes: [string, TextEncoderConfig][] = [
    ['2-block toy', TOY],
    ["MiniLM's attention shape (width 384, 12 heads of 32, 1 block)", { ...TOY, width: 384, heads: 12, ffn: 1536, layers: 1 }],
  ];
  const backends: [string, () => Promise<Backend>][] = [['ort', async () => OrtBackend.create()]];
  if (fx.gpu) backends.push(['wgsl', () => WgslBackend.create(fx.gpu!)]);
  for (const [shape, cfg] of shapes)
    for (const [name, open] of backends)
      it(`${name}, ${shape}`, async () => {
        const R = lossWeights(cfg.width);
        const cpu = new CpuBackend('f64');
        const want = await run(cpu, TrainableTextEncoder.create(cpu, cfg, { trainTop: cfg.layers + 1, maxLen: T, seed: 5 }), R);
        const be = await open();
        const got = await run(be, TrainableTextEncoder.create(be, cfg, { trainTop: cfg.layers + 1, maxLen: T, seed: 5 }), R);
        const close = (x: ArrayLike<number>, y: ArrayLike<number>, what: string) => {
          let worst = 0;
          let scale = 0;
          for (let i = 0; i < y.length; i++) {
            worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
            scale = Math.max(scale, Math.abs(y[i]!));
          }
          expect(worst, `${what}: max |diff| ${worst} (largest ${scale})`).toBeLessThanOrEqual(1e-4 + 1e-3 * scale);
        };
        const C = cfg.width;
        close(
          Array.from(got.out).map((v, i) => v * MASK[Math.floor(i / C)]!),
          Array.from(want.out).map((v, i) => v * MASK[Math.floor(i / C)]!),
          'states',
        );
        for (const [n, g] of want.grads) close(got.grads.get(n)!, g, `d ${n}`);
        if (name === 'ort') await be.destroy();
      }, 120_000);
});
