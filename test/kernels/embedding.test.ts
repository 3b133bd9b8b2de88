import { afterAll, describe, expect, it } from 'vitest';
import { embeddingBackward, embeddingForward, ref } from '@emofuse/kernels';
import { expectClose, expectOp } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { FD_TOL, TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

/** n ids in [0, V) with repeats. */
const idsOf = (n: number, V: number, seed: number) => Float32Array.from(randomF32(n, seed, 0, V), (x) => Math.min(V - 1, Math.floor(x)));

describe('embedding reference', () => {
  it('backward is the finite-difference gradient of sum(dout * gather(table))', () => {
    const [N, V, C] = [11, 5, 3];
    const ids = idsOf(N, V, 1);
    const table = Float64Array.from(randomF32(V * C, 2));
    const dout = randomF32(N * C, 3);
    const f = (t: ArrayLike<number>) => ref.embeddingForward(ids, t, V, C).reduce((s, y, i) => s + y * dout[i]!, 0);
    const want = ref.embeddingBackward(ids, dout, V, C);
    const fd = Float64Array.from(table, (_, i) => {
      const h = 1e-6;
      const [p, m] = [table.slice(), table.slice()];
      p[i] += h;
      m[i] -= h;
      return (f(p) - f(m)) / (2 * h);
    });
    expectClose(want, fd, FD_TOL, { name: 'embedding fd' });
  });

  it('refuses an id outside the table', () => {
    expect(() => ref.embeddingForward([0, 5], new Float64Array(10), 5, 2)).toThrow(/ids\[1\] = 5 is not a row of a table of 5/);
  });
});

describe.skipIf(!fx.gpu)(`embedding on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  // C 384 (MiniLM's width), odd C, a vocabulary larger than N (rows no id points at are zeros).
  it.each([
    [1, 1, 1],
    [37, 11, 7],
    [200, 1000, 384],
  ])('gather and scatter-add, N=%i V=%i C=%i', async (N, V, C) => {
    const ids = idsOf(N, V, N);
    const [table, dout] = [randomF32(V * C, 1), randomF32(N * C, 2)];
    await expectOp(gpu, {
      name: 'embedding',
      tol: TOL.embedding,
      in: { ids: [ids, [N]], table: [table, [V, C]], dout: [dout, [N, C]] },
      out: { out: [N, C], dtable: [V, C] },
      run: async (t) => {
        await embeddingForward(gpu, t.ids!, t.table!, t.out!);
        await embeddingBackward(gpu, t.ids!, t.dout!, t.dtable!);
      },
      want: () => ({ out: ref.embeddingForward(ids, table, V, C), dtable: ref.embeddingBackward(ids, dout, V, C) }),
    });
  });

  it('scatter-add accumulates into dtable when asked', async () => {
    const [N, V, C] = [23, 6, 5];
    const ids = idsOf(N, V, 9);
    const [dout, prior] = [randomF32(N * C, 4), randomF32(V * C, 5)];
    await expectOp(gpu, {
      name: 'embedding.bwd accumulate',
      tol: TOL.embedding,
      in: { ids: [ids, [N]], dout: [dout, [N, C]] },
      out: { dtable: [prior, [V, C]] },
      run: (t) => embeddingBackward(gpu, t.ids!, t.dout!, t.dtable!, true),
      want: () => ({ dtable: ref.embeddingBackward(ids, dout, V, C).map((v, i) => v + prior[i]!) }),
    });
  });

  it('rejects mismatched sizes before dispatch', async () => {
    await expect(embeddingForward(gpu, gpu.empty([4]), gpu.empty([5, 3]), gpu.empty([13]))).rejects.toThrow(
      /embedding\.fwd.*out must have 12 elements/,
    );
  });
});
