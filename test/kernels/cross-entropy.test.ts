import { afterAll, describe, expect, it } from 'vitest';
import { crossEntropyForwardBackward, crossEntropyLabels, mulberry32, ref, type Gpu } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

function randomLabels(B: number, K: number, seed: number, ignoreEvery = 0): number[] {
  const r = mulberry32(seed);
  return Array.from({ length: B }, (_, b) => (ignoreEvery && b % ignoreEvery === ignoreEvery - 1 ? -1 : Math.floor(r() * K)));
}

async function run(gpu: Gpu, zs: Float32Array, ys: number[], ws: Float32Array, B: number, K: number, eps = 0) {
  const loss = gpu.empty([1]);
  const dlogits = gpu.empty([B, K]);
  const losses = gpu.empty([B]);
  gpu.poison(loss);
  gpu.poison(dlogits);
  gpu.poison(losses);
  await crossEntropyForwardBackward(gpu, gpu.upload(zs, [B, K]), ys, gpu.upload(ws, [K]), loss, dlogits, losses, eps);
  return { loss: await gpu.read(loss), dlogits: await gpu.read(dlogits), losses: await gpu.read(losses) };
}

function check(
  got: Awaited<ReturnType<typeof run>>,
  zs: Float32Array,
  ys: number[],
  ws: Float32Array,
  B: number,
  K: number,
  tag: string,
  eps = 0,
) {
  const r = ref.crossEntropyForward(zs, ys, ws, B, K, eps);
  expectClose(got.loss, [r.loss], TOL.crossEntropy, { name: `cross-entropy loss ${tag}` });
  expectClose(got.losses, r.losses, TOL.crossEntropy, { name: `cross-entropy losses ${tag}` });
  expectClose(got.dlogits, ref.crossEntropyBackward(zs, ys, ws, B, K, eps), TOL.crossEntropy, {
    name: `cross-entropy dlogits ${tag}`,
    shape: [B, K],
  });
}

describe.skipIf(!fx.gpu)(`cross-entropy on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  // B around and above the workgroup (256) so rows wrap; every 5th row ignored; class weights in [0.25, 2].
  it.each([
    [1, 1],
    [7, 7],
    [63, 3],
    [65, 7],
    [129, 5],
    [300, 7],
    [2049, 65],
  ])('loss, losses and dlogits, B=%i K_cls=%i', async (B, K) => {
    const zs = randomF32(B * K, B + K);
    const ys = randomLabels(B, K, B * K, B > 1 ? 5 : 0);
    const ws = randomF32(K, K, 0.25, 2);
    check(await run(gpu, zs, ys, ws, B, K), zs, ys, ws, B, K, `B=${B} K=${K}`);
  });

  it.each([
    [65, 7, 0.1],
    [300, 3, 0.3],
  ])('label smoothing: loss, losses and dlogits, B=%i K_cls=%i eps=%f', async (B, K, eps) => {
    const zs = randomF32(B * K, B + 2 * K);
    const ys = randomLabels(B, K, B * K + 1, 5);
    const ws = randomF32(K, K + 1, 0.25, 2);
    check(await run(gpu, zs, ys, ws, B, K, eps), zs, ys, ws, B, K, `B=${B} K=${K} eps=${eps}`, eps);
  });

  it('stays finite and accurate for logits of +-80', async () => {
    const [B, K] = [9, 7];
    const zs = randomF32(B * K, 3).map((v, i) => (i % 3 === 0 ? 80 : i % 3 === 1 ? -80 : v * 40));
    const ys = randomLabels(B, K, 4);
    const ws = randomF32(K, 5, 0.5, 1.5);
    const got = await run(gpu, zs, ys, ws, B, K);
    expect(got.dlogits.every(Number.isFinite) && got.losses.every(Number.isFinite) && Number.isFinite(got.loss[0])).toBe(true);
    expect(Math.max(...got.losses)).toBeGreaterThan(100); // a row whose label sits at -80 under a logit of 80
    check(got, zs, ys, ws, B, K, '+-80');
  });

  it('every row ignored gives loss 0 and zero gradient; unit weights give the plain mean', async () => {
    const [B, K] = [5, 3];
    const zs = randomF32(B * K, 6);
    const ws = new Float32Array(K).fill(1);
    const none = await run(gpu, zs, [-1, -1, -1, -1, -1], ws, B, K);
    expect(none.loss[0]).toBe(0);
    expect(none.dlogits.every((v) => v === 0)).toBe(true);
    expect(none.losses.every((v) => v === 0)).toBe(true);
    const ys = [0, 1, 2, 1, 0];
    const got = await run(gpu, zs, ys, ws, B, K);
    const mean = ref.crossEntropyForward(zs, ys, ws, B, K).losses.reduce((a, b) => a + b, 0) / B;
    expectClose(got.loss, [mean], TOL.crossEntropy, { name: 'cross-entropy unit weights' });
  });

  it('labels on the GPU outside [0, K_cls) give NaN outputs; CPU labels are rejected before dispatch', async () => {
    const [B, K] = [4, 3];
    const zs = gpu.upload(randomF32(B * K, 7), [B, K]);
    const ws = gpu.upload([1, 1, 1], [K]);
    const loss = gpu.empty([1]);
    const dlogits = gpu.empty([B, K]);
    const losses = gpu.empty([B]);
    for (const badLabel of [3, 1.5, -2]) {
      gpu.fill(loss, 0);
      await crossEntropyForwardBackward(gpu, zs, gpu.upload([0, badLabel, 2, 1], [B]), ws, loss, dlogits, losses);
      expect(Number.isNaN((await gpu.read(loss))[0])).toBe(true);
      expect((await gpu.read(dlogits)).every(Number.isNaN)).toBe(true);
    }
    await expect(crossEntropyForwardBackward(gpu, zs, [0, 3, 2, 1], ws, loss, dlogits, losses)).rejects.toThrow(
      /cross-entropy\.fwd.*labels\[1\] = 3/,
    );
    expect(() => crossEntropyLabels(gpu, [0, 0.5], K)).toThrow(/labels\[1\] = 0\.5/);
    await expect(crossEntropyForwardBackward(gpu, zs, [0, 1, 2], ws, loss, dlogits, losses)).rejects.toThrow(/labels must have 4 values/);
    await expect(crossEntropyForwardBackward(gpu, zs, [0, 1, 2, 1], gpu.empty([4]), loss, dlogits, losses)).rejects.toThrow(
      /weights must have shape \[3\]/,
    );
  });
});
