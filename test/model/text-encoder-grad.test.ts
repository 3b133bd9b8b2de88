// The trainable text encoder (packages/model/src/fusion/text-encoder.ts) on a 2-block toy: its backward against
// central finite differences (cpu, float64), partial fine-tuning (only the top k blocks get gradients, equal to the
// full backward's), and the three backends agreeing on the states and gradients, at the toy's shape and at
// MiniLM's attention shape (width 384, 12 heads of 32) so the fused attention kernels run head size 32 with 12 heads.
// GELU is the erf form (BERT's, what a converted MiniLM runs), with inputs spread wide enough to tell it from tanh.

import { afterAll, describe, expect, it } from 'vitest';
import { randomF32, ref } from '@emofuse/kernels';
import { type Backend, CpuBackend, OrtBackend, WgslBackend } from '@emofuse/model';
import { type TextEncoderConfig, TrainableTextEncoder } from '../../packages/model/src/fusion/text-encoder.ts';
import { openGpu } from '../helpers/gpu.ts';

const TOY: TextEncoderConfig = {
  vocab: 13,
  maxPositions: 10,
  typeVocab: 2,
  width: 8,
  heads: 2,
  layers: 2,
  ffn: 16,
  layerNormEps: 1e-12,
  gelu: 'erf',
};
const [B, T] = [3, 6];
const LENGTHS = [6, 3, 1]; // right padding, a one-token row
const MASK = Float32Array.from({ length: B * T }, (_, i) => (i % T < LENGTHS[Math.floor(i / T)]! ? 1 : 0));
const IDS = Float32Array.from({ length: B * T }, (_, i) => (MASK[i] ? (i * 5 + 3) % TOY.vocab : 0)); // repeats; padding id 0

/**
 * The toy with its feed-forward's first linear scaled up (x40 at width 8, x40 sqrt(8 / C) wider) so the GELU inputs
 * spread with a standard deviation of about 2: at the
 * toy initialisation's scale (|fpre| < 0.1) GELU is nearly linear and its two forms (erf, tanh) agree to 1e-6, so
 * the checks below could not tell a backward of the wrong form.
 */
async function toy(be: Backend, cfg: TextEncoderConfig, o: { trainTop: number; seed: number }): Promise<TrainableTextEncoder> {
  const enc = TrainableTextEncoder.create(be, cfg, { ...o, maxLen: T });
  const k = 40 * Math.sqrt(8 / cfg.width);
  for (const p of enc.params)
    if (p.name.includes('intermediate.dense'))
      be.write(
        p.value,
        Array.from(await be.read(p.value), (v) => k * v),
      );
  return enc;
}

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
    const enc = await toy(be, TOY, { trainTop: TOY.layers + 1, seed: 3 });
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
    const full = await run(be, await toy(be, TOY, { trainTop: TOY.layers + 1, seed: 3 }), R);
    const top = await toy(be, TOY, { trainTop: 1, seed: 3 });
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
        const want = await run(cpu, await toy(cpu, cfg, { trainTop: cfg.layers + 1, seed: 5 }), R);
        const be = await open();
        const got = await run(be, await toy(be, cfg, { trainTop: cfg.layers + 1, seed: 5 }), R);
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

describe("GELU's two forms through every backend's matmul epilogue and geluBackward (vs the float64 references)", () => {
  // x [M, K] @ w [K, N] + bias, spread so that pre covers about [-6, 6]: the forms differ by up to 4.7e-4 (at x = -2.7)
  const [M, N, K] = [9, 33, 5];
  const xs = Float32Array.from(randomF32(M * K, 11), (v) => 3 * v);
  const ws = randomF32(K * N, 12);
  const bias = randomF32(N, 13);
  const dys = randomF32(M * N, 14);
  const backends: [string, () => Promise<Backend>][] = [
    ['cpu', async () => new CpuBackend('f32')],
    ['ort', async () => OrtBackend.create()],
  ];
  if (fx.gpu) backends.push(['wgsl', () => WgslBackend.create(fx.gpu!)]);
  for (const [name, open] of backends)
    for (const form of ['erf', 'tanh'] as const)
      it(`${name}, ${form}`, async () => {
        const be = await open();
        const dims = { batch: 1, M, N, K };
        const [c, pre, dx] = [be.zeros([M, N]), be.zeros([M, N]), be.zeros([M, N])];
        await be.matmul(be.upload(xs, [M, K]), be.upload(ws, [K, N]), c, dims, { bias: be.upload(bias, [N]), gelu: form, pre });
        await be.geluBackward(pre, be.upload(dys, [M, N]), dx, false, form);
        const want = ref.matmulForward(xs, ws, dims, { bias, gelu: form });
        const [gotY, gotPre, gotDx] = [await be.read(c), await be.read(pre), await be.read(dx)];
        const wantDx = ref.geluBackward(gotPre, dys, form);
        const other = ref.geluForward(want.pre, form === 'erf' ? 'tanh' : 'erf');
        let [worstY, worstDx, formGap] = [0, 0, 0];
        for (let i = 0; i < M * N; i++) {
          worstY = Math.max(worstY, Math.abs(gotY[i]! - want.out[i]!));
          worstDx = Math.max(worstDx, Math.abs(gotDx[i]! - wantDx[i]!));
          formGap = Math.max(formGap, Math.abs(other[i]! - want.out[i]!));
        }
        expect(formGap).toBeGreaterThan(1e-4); // the inputs tell the forms apart
        expect(worstY, `gelu ${form} forward`).toBeLessThan(1e-5);
        expect(worstDx, `gelu ${form} backward`).toBeLessThan(1e-5);
        if (name !== 'wgsl') await be.destroy();
      });
});
