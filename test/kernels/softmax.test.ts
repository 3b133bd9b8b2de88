import { afterAll, describe, expect, it } from 'vitest';
import { lengthMask, ref, softmaxBackward, softmaxForward, type SoftmaxVariant } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

const VARIANTS: SoftmaxVariant[] = ['row', 'workgroup'];

/** Logits in [-80, 80], with a -1e30 entry in every third row (a "masked by value" score). */
function logits(R: number, N: number, seed: number): Float32Array {
  const xs = randomF32(R * N, seed, -80, 80);
  for (let r = 0; r < R; r += 3) if (N > 1) xs[r * N + ((r * 7) % N)] = -1e30;
  return xs;
}

describe.skipIf(!fx.gpu)(`softmax on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  /** Runs forward then backward (from the reference y, as f32) and compares both with the reference. */
  async function check(
    xs: Float32Array,
    R: number,
    N: number,
    variant: SoftmaxVariant,
    opts: { mask?: Float32Array; rowsPerMaskRow?: number; scale?: number },
    label: string,
  ): Promise<{ y: Float32Array; dx: Float32Array }> {
    const x = gpu.upload(xs, [R, N]);
    const mask = opts.mask ? gpu.upload(opts.mask, [opts.mask.length / N, N]) : undefined;
    const y = gpu.empty([R, N]);
    gpu.poison(y);
    await softmaxForward(gpu, x, y, { mask, rowsPerMaskRow: opts.rowsPerMaskRow, scale: opts.scale, variant });
    const yRef = ref.softmaxForward(xs, R, N, opts);
    const yGpu = await gpu.read(y);
    expectClose(yGpu, yRef, TOL.softmax, { name: `softmax.fwd.${variant} y ${label}`, shape: [R, N] });

    const y32 = Float32Array.from(yRef);
    const dys = randomF32(R * N, R * 1000 + N);
    const dx = gpu.empty([R, N]);
    gpu.poison(dx);
    await softmaxBackward(gpu, gpu.upload(y32, [R, N]), gpu.upload(dys, [R, N]), dx, { scale: opts.scale, variant });
    const dxGpu = await gpu.read(dx);
    expectClose(dxGpu, ref.softmaxBackward(y32, dys, R, N, opts.scale ?? 1), TOL.softmaxBackward, {
      name: `softmax.bwd.${variant} dx ${label}`,
      shape: [R, N],
    });
    return { y: yGpu, dx: dxGpu };
  }

  // Rows and row lengths from {1, 7, 63, 65, 129, 768}: none a multiple of WG (64) rows or columns.
  const shapes: Array<[number, number]> = [
    [1, 1],
    [7, 1],
    [1, 7],
    [7, 7],
    [63, 65],
    [65, 63],
    [129, 129],
    [1, 768],
    [7, 768],
    [768, 7],
    [65, 768],
    [768, 129],
  ];
  it.each(VARIANTS.flatMap((v) => shapes.map(([R, N]) => [v, R, N] as const)))(
    'forward and backward, logits of +-80 and -1e30, %s, R=%i N=%i',
    async (variant, R, N) => {
      const xs = logits(R, N, R * 31 + N);
      const { y } = await check(xs, R, N, variant, {}, `R=${R} N=${N}`);
      // Rows sum to 1 (no overflow to Inf/NaN from the large logits).
      for (let r = 0; r < R; r++) {
        let s = 0;
        for (let j = 0; j < N; j++) s += y[r * N + j]!;
        expect(Math.abs(s - 1)).toBeLessThan(1e-5);
      }
    },
  );

  // Attention-shaped scores [B, H, Tq, Tk] -> rows [B*H*Tq, Tk] with a [B, Tk] key mask: batch 0 keeps
  // a prefix, batch 1 is fully masked, batch 2 keeps everything; scale != 1.
  it.each(VARIANTS.flatMap((v) => [7, 65, 129].map((Tk) => [v, Tk] as const)))(
    'key mask with rowsPerMaskRow = H*Tq, fully masked rows, scale, %s, Tk=%i',
    async (variant, Tk) => {
      const B = 3;
      const H = 2;
      const Tq = 5;
      const R = B * H * Tq;
      const mask = lengthMask([Math.ceil(Tk / 2), 0, Tk], Tk);
      const xs = randomF32(R * Tk, Tk, -80, 80);
      const scale = 1 / Math.sqrt(16);
      const { y, dx } = await check(xs, R, Tk, variant, { mask, rowsPerMaskRow: H * Tq, scale }, `Tk=${Tk}`);
      // Fully masked rows (batch 1): exactly zero output and zero gradient; masked columns exactly zero.
      for (let r = H * Tq; r < 2 * H * Tq; r++) {
        for (let j = 0; j < Tk; j++) {
          expect(y[r * Tk + j]).toBe(0);
          expect(Math.abs(dx[r * Tk + j]!)).toBe(0);
        }
      }
      for (let r = 0; r < H * Tq; r++) for (let j = Math.ceil(Tk / 2); j < Tk; j++) expect(y[r * Tk + j]).toBe(0);
    },
  );

  it.each(VARIANTS)('per-row mask (rowsPerMaskRow = 1) with a scattered pattern, %s', async (variant) => {
    const R = 65;
    const N = 63;
    const mask = new Float32Array(R * N).map((_, i) => (((i * 2654435761) >>> 0) % 3 === 0 ? 0 : 1));
    for (let j = 0; j < N; j++) mask[10 * N + j] = 0; // row 10 fully masked
    await check(randomF32(R * N, 5), R, N, variant, { mask, scale: 2.5 }, 'per-row mask');
  });

  it('picks the workgroup entry point for long rows by default (N=1500)', async () => {
    const R = 3;
    const N = 1500;
    const xs = logits(R, N, 9);
    const x = gpu.upload(xs, [R, N]);
    const y = gpu.empty([R, N]);
    gpu.poison(y);
    await softmaxForward(gpu, x, y);
    expectClose(await gpu.read(y), ref.softmaxForward(xs, R, N), TOL.softmax, { name: 'softmax.fwd default N=1500', shape: [R, N] });
  });

  it('rejects mismatched shapes before dispatch', async () => {
    const x = gpu.empty([6, 4]);
    await expect(softmaxForward(gpu, x, gpu.empty([6, 5]))).rejects.toThrow(/softmax\.fwd.*y must have 24 elements/);
    await expect(softmaxForward(gpu, x, gpu.empty([6, 4]), { mask: gpu.empty([2, 4]), rowsPerMaskRow: 2 })).rejects.toThrow(
      /mask rows \(2\) \* rowsPerMaskRow \(2\) must equal the rows of x \(6\)/,
    );
    await expect(softmaxForward(gpu, x, gpu.empty([6, 4]), { mask: gpu.empty([6, 3]) })).rejects.toThrow(/mask must have last axis N=4/);
    await expect(softmaxBackward(gpu, x, gpu.empty([6, 4]), gpu.empty([4, 4]))).rejects.toThrow(/dx must have 24 elements/);
  });
});
