// The fused cross-attention kernel's earlier versions (v1-v5, packages/bench/src/baselines), which
// `bench attention` times beside the product's (v6): on the same masked, off-tile cases as its test
// (test/kernels/cross-attention.test.ts), they compute what the float64 reference computes.

import { afterAll, describe, it } from 'vitest';
import { crossAttentionBackwardVersion, crossAttentionForwardVersion, type CrossAttentionVersion } from '@emofuse/bench';
import { runAttentionCase, type AttentionImpl } from '../helpers/cross-attention-case.ts';
import { openGpu } from '../helpers/gpu.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe.skipIf(!fx.gpu)(`cross-attention v1-v5 baselines on ${fx.label}`, () => {
  const gpu = fx.gpu!;
  const impl = (version: CrossAttentionVersion): AttentionImpl => ({
    forward: (g, q, k, v, mask, out, lse, o) => crossAttentionForwardVersion(g, q, k, v, mask, out, lse, { ...o, version }),
    backward: (g, q, k, v, mask, out, lse, dout, dq, dk, dv, o) =>
      crossAttentionBackwardVersion(g, q, k, v, mask, out, lse, dout, dq, dk, dv, { ...o, version }),
  });

  it.each([1, 2, 3, 4, 5] as const)('kernel version v%i: forward + backward on masked, off-tile shapes', async (version) => {
    const opts = { version, impl: impl(version) };
    await runAttentionCase(gpu, { B: 3, Tq: 65, Tk: 63, H: 2, D: 32, lengths: [63, 40, 0], seed: 2 }, opts);
    await runAttentionCase(gpu, { B: 3, Tq: 129, Tk: 7, H: 8, D: 16, lengths: [7, 0, 3], seed: 5 }, opts);
    await runAttentionCase(gpu, { B: 1, Tq: 7, Tk: 129, H: 1, D: 64, lengths: [100], seed: 6 }, opts);
  });
});
