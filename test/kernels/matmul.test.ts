import { afterAll, describe, expect, it } from 'vitest';
import { type GeluForm, geluBackward, matmulBackward, matmulForward, ref, type Tensor } from '@emofuse/kernels';
import { expectClose } from '../helpers/close.ts';
import { openGpu } from '../helpers/gpu.ts';
import { randomF32 } from '../helpers/rng.ts';
import { TOL } from '../tolerances.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

type Shape = readonly [M: number, N: number, K: number];
// Mixes of 1, 7, 63, 65, 129: none a multiple of the 4x4 register block nor of the 32x32 workgroup tile.
const SHAPES: readonly Shape[] = [
  [1, 1, 1],
  [7, 63, 65],
  [65, 7, 129],
  [129, 65, 7],
  [63, 129, 1],
  [1, 129, 63],
  [65, 65, 65],
  [129, 1, 7],
];
const TRANS = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
] as const;

interface Case {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  broadcastB: boolean;
  bias: boolean;
  /** true: the tanh form. */
  gelu: boolean | GeluForm;
}

const label = (c: Case) =>
  `M=${c.M} N=${c.N} K=${c.K} batch=${c.batch}${c.transA ? ' transA' : ''}${c.transB ? ' transB' : ''}` +
  `${c.broadcastB ? ' broadcastB' : ''}${c.bias ? ' bias' : ''}${c.gelu ? ' gelu' : ''}${c.gelu === 'erf' ? ' erf' : ''}`;

// Every transA x transB x bias x gelu combination once, each on a different shape, batch 1 or 3, broadcast B
// on some of the batch-3 ones; then every shape with batch 3 and every layout, all epilogues on.
const FORWARD_CASES: Case[] = [];
TRANS.forEach(([transA, transB], ti) => {
  for (let ei = 0; ei < 4; ei++) {
    const [M, N, K] = SHAPES[(ti * 4 + ei) % SHAPES.length]!;
    const batch = (ti + ei) % 2 ? 3 : 1;
    FORWARD_CASES.push({ M, N, K, batch, transA, transB, broadcastB: batch === 3 && ei < 2, bias: (ei & 1) === 1, gelu: (ei & 2) === 2 });
  }
});
SHAPES.forEach(([M, N, K], si) => {
  const [transA, transB] = TRANS[si % 4]!;
  FORWARD_CASES.push({ M, N, K, batch: 3, transA, transB, broadcastB: si % 3 === 0, bias: true, gelu: true });
});
// The exact (erf) GELU epilogue (BERT's): every layout once.
TRANS.forEach(([transA, transB], ti) => {
  const [M, N, K] = SHAPES[(ti * 3 + 1) % SHAPES.length]!;
  FORWARD_CASES.push({ M, N, K, batch: ti % 2 ? 3 : 1, transA, transB, broadcastB: ti === 3, bias: ti !== 2, gelu: 'erf' });
});

describe.skipIf(!fx.gpu)(`matmul on ${fx.label}`, () => {
  const gpu = fx.gpu!;

  function inputs(c: Case, seed: number) {
    const batchB = c.broadcastB ? 1 : c.batch;
    const as = randomF32(c.batch * c.M * c.K, seed);
    const bs = randomF32(batchB * c.K * c.N, seed + 1);
    const biasV = randomF32(c.N, seed + 2);
    return { as, bs, biasV };
  }

  async function runForward(c: Case, seed: number, overrides?: Record<string, number>) {
    const { as, bs, biasV } = inputs(c, seed);
    const dims = { batch: c.batch, M: c.M, N: c.N, K: c.K };
    const out = gpu.empty([c.batch, c.M, c.N]);
    const pre = c.gelu ? gpu.empty([c.batch, c.M, c.N]) : undefined;
    gpu.poison(out);
    if (pre) gpu.poison(pre);
    await matmulForward(gpu, gpu.upload(as), gpu.upload(bs), out, dims, {
      transA: c.transA,
      transB: c.transB,
      broadcastB: c.broadcastB,
      bias: c.bias ? gpu.upload(biasV) : undefined,
      gelu: c.gelu,
      pre,
      overrides,
    });
    const r = ref.matmulForward(as, bs, dims, {
      transA: c.transA,
      transB: c.transB,
      broadcastB: c.broadcastB,
      bias: c.bias ? biasV : undefined,
      gelu: c.gelu,
    });
    const shape = [c.batch, c.M, c.N];
    expectClose(await gpu.read(out), r.out, TOL.matmul, { name: `matmul.fwd c ${label(c)}`, shape });
    if (pre) expectClose(await gpu.read(pre), r.pre, TOL.matmul, { name: `matmul.fwd pre ${label(c)}`, shape });
  }

  it.each(FORWARD_CASES.map((c, i) => [label(c), c, i] as const))('forward %s', async (_l, c, i) => {
    await runForward(c, 100 + 10 * i);
  });

  it.each<Record<string, number>>([{ TM: 1 }, { TM: 3 }, { TM: 8, WG_X: 4, WG_Y: 2 }, { WG_X: 1, WG_Y: 1, KC: 5 }])(
    'forward with tile overrides %o stays exact on tails',
    async (ov) => {
      await runForward({ M: 65, N: 63, K: 7, batch: 3, transA: true, transB: false, broadcastB: true, bias: true, gelu: true }, 7, ov);
      await runForward({ M: 7, N: 129, K: 65, batch: 1, transA: false, transB: true, broadcastB: false, bias: false, gelu: false }, 8, ov);
    },
  );

  async function runBackward(c: Case, seed: number, opts: { accumulate?: boolean; geluChain?: boolean | GeluForm } = {}) {
    const { as, bs } = inputs(c, seed);
    const batchB = c.broadcastB ? 1 : c.batch;
    const dims = { batch: c.batch, M: c.M, N: c.N, K: c.K };
    const layout = { transA: c.transA, transB: c.transB, broadcastB: c.broadcastB };
    const douts = randomF32(c.batch * c.M * c.N, seed + 3);
    // Prior contents: NaN (must be overwritten) or random values (accumulate must add to them).
    const priorA = randomF32(c.batch * c.M * c.K, seed + 4);
    const priorB = randomF32(batchB * c.K * c.N, seed + 5);
    const priorBias = randomF32(c.N, seed + 6);
    const dA = gpu.upload(priorA);
    const dB = gpu.upload(priorB);
    const dBias = gpu.upload(priorBias);
    if (!opts.accumulate) for (const t of [dA, dB, dBias]) gpu.poison(t);

    let dcRef: ArrayLike<number> = douts;
    let dc: Tensor = gpu.upload(douts);
    const a = gpu.upload(as);
    const b = gpu.upload(bs);
    if (opts.geluChain) {
      // Forward with GELU saving the pre-activation, then geluBackward(pre) -> dC -> matmulBackward.
      const pre = gpu.empty([c.batch, c.M, c.N]);
      const form = opts.geluChain === 'erf' ? 'erf' : 'tanh';
      await matmulForward(gpu, a, b, gpu.empty([c.batch, c.M, c.N]), dims, { ...layout, gelu: form, pre });
      const dcPre = gpu.empty([c.batch, c.M, c.N]);
      await geluBackward(gpu, pre, dc, dcPre, false, form);
      dc = dcPre;
      dcRef = ref.geluBackward(ref.matmulForward(as, bs, dims, layout).pre, douts, form);
    }
    await matmulBackward(gpu, { dc, a, b, dA, dB, dBias }, dims, { ...layout, accumulate: opts.accumulate, accumulateA: opts.accumulate });
    const r = ref.matmulBackward(dcRef, as, bs, dims, layout);
    const add = (x: Float64Array, prior: Float32Array) => (opts.accumulate ? x.map((v, i) => v + prior[i]!) : x);
    const name = `${label(c)}${opts.accumulate ? ' accumulate' : ''}${opts.geluChain ? ` gelu chain ${opts.geluChain}` : ''}`;
    expectClose(await gpu.read(dA), add(r.dA, priorA), TOL.matmulBackward, {
      name: `matmul.bwd dA ${name}`,
      shape: [c.batch, ...(c.transA ? [c.K, c.M] : [c.M, c.K])],
    });
    expectClose(await gpu.read(dB), add(r.dB, priorB), TOL.matmulBackward, {
      name: `matmul.bwd dB ${name}`,
      shape: [batchB, ...(c.transB ? [c.N, c.K] : [c.K, c.N])],
    });
    expectClose(await gpu.read(dBias), add(r.dBias, priorBias), TOL.matmulBackward, { name: `matmul.bwd.dbias ${name}`, shape: [c.N] });
  }

  // Every layout, with and without broadcast B, batch 3 (and batch 1 for a few).
  const BACKWARD_CASES: Case[] = [];
  TRANS.forEach(([transA, transB], ti) => {
    for (const broadcastB of [false, true]) {
      const [M, N, K] = SHAPES[(ti * 2 + (broadcastB ? 1 : 0) + 1) % SHAPES.length]!;
      BACKWARD_CASES.push({ M, N, K, batch: ti === 0 && !broadcastB ? 1 : 3, transA, transB, broadcastB, bias: true, gelu: false });
    }
  });
  BACKWARD_CASES.push({ M: 1, N: 1, K: 1, batch: 3, transA: true, transB: true, broadcastB: true, bias: true, gelu: false });

  it.each(BACKWARD_CASES.map((c, i) => [label(c), c, i] as const))('backward dA, dB, dbias %s', async (_l, c, i) => {
    await runBackward(c, 500 + 10 * i);
  });

  it.each(TRANS.map(([transA, transB]) => [transA, transB] as const))(
    'backward accumulates into dA, dB, dbias (transA=%s transB=%s)',
    async (transA, transB) => {
      await runBackward({ M: 63, N: 7, K: 65, batch: 3, transA, transB, broadcastB: transA, bias: true, gelu: false }, 900, {
        accumulate: true,
      });
    },
  );

  it('forward accumulates into C', async () => {
    const dims = { batch: 3, M: 7, N: 65, K: 63 };
    const as = randomF32(3 * 7 * 63, 1);
    const bs = randomF32(63 * 65, 2);
    const prior = randomF32(3 * 7 * 65, 3);
    const c = gpu.upload(prior);
    await matmulForward(gpu, gpu.upload(as), gpu.upload(bs), c, dims, { broadcastB: true, accumulate: true });
    const expected = ref.matmulForward(as, bs, dims, { broadcastB: true }).out.map((v, i) => v + prior[i]!);
    expectClose(await gpu.read(c), expected, TOL.matmul, { name: 'matmul.fwd accumulate', shape: [3, 7, 65] });
  });

  it('GELU epilogue backward: geluBackward(pre) then matmulBackward', async () => {
    await runBackward({ M: 65, N: 63, K: 7, batch: 3, transA: false, transB: true, broadcastB: true, bias: true, gelu: true }, 950, {
      geluChain: true,
    });
  });

  it('GELU epilogue backward, erf form: geluBackward(pre, erf) then matmulBackward', async () => {
    await runBackward({ M: 65, N: 63, K: 7, batch: 3, transA: false, transB: true, broadcastB: true, bias: true, gelu: 'erf' }, 960, {
      geluChain: 'erf',
    });
  });

  // The fusion model: x[B*T, C] @ W[C, C_out] with bias and GELU (B = 32, T = 64, C = 768, C_out = 256), and
  // its backward; and attention-style batched products Q @ K^T and P @ V (B*H = 6, Tq = 65, Tk = 63, D = 64).
  it('model linear layer [32*64, 768] @ [768, 256] + bias, GELU, forward and backward', async () => {
    const c: Case = { M: 32 * 64, N: 256, K: 768, batch: 1, transA: false, transB: false, broadcastB: true, bias: true, gelu: true };
    await runForward(c, 42);
    await runBackward({ ...c, gelu: false }, 43);
  });

  it('attention-style batched products Q @ K^T and P @ V', async () => {
    await runForward({ M: 65, N: 63, K: 64, batch: 6, transA: false, transB: true, broadcastB: false, bias: false, gelu: false }, 60);
    await runForward({ M: 65, N: 64, K: 63, batch: 6, transA: false, transB: false, broadcastB: false, bias: false, gelu: false }, 61);
  });

  it('rejects a grid above maxComputeWorkgroupsPerDimension with a clear error', async () => {
    const batch = gpu.limits.maxComputeWorkgroupsPerDimension + 1;
    const t = () => gpu.empty([batch]);
    await expect(matmulForward(gpu, t(), t(), t(), { batch, M: 1, N: 1, K: 1 })).rejects.toThrow(
      /matmul\.fwd.*grid \[1, 1, \d+\].*maxComputeWorkgroupsPerDimension/,
    );
  });

  it('rejects mismatched sizes and aliasing before dispatch', async () => {
    const dims = { batch: 2, M: 3, N: 4, K: 5 };
    const a = gpu.empty([2, 3, 5]);
    const b = gpu.empty([5, 4]);
    await expect(matmulForward(gpu, a, b, gpu.empty([2, 3, 4]), dims)).rejects.toThrow(/matmul\.fwd.*b must have 40 elements/);
    await expect(matmulForward(gpu, a, b, gpu.empty([2, 3, 3]), dims, { broadcastB: true })).rejects.toThrow(/c must have 24 elements/);
    await expect(matmulForward(gpu, a, b, gpu.empty([2, 3, 4]), dims, { broadcastB: true, bias: gpu.empty([5]) })).rejects.toThrow(
      /bias must have 4/,
    );
    await expect(matmulForward(gpu, a, b, gpu.empty([2, 3, 4]), dims, { broadcastB: true, overrides: { TM: 9 } })).rejects.toThrow(
      /TM must be an integer in 1\.\.8/,
    );
    await expect(matmulBackward(gpu, { dc: gpu.empty([24]), a, b, dB: b }, dims, { broadcastB: true })).rejects.toThrow(/same buffer/);
  });
});
