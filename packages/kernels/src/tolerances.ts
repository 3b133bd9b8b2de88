// One tolerance table for every op: |gpu - ref| <= atol + rtol * |ref|, ref accumulated in float64.
// Used by the tests (test/tolerances.ts re-exports it), `emofuse gpu --check` and the benchmarks' validation.
// GPU results are f32; reductions over K terms lose about sqrt(K) * 6e-8 relative, so matmul-like ops get
// more room than elementwise ones. Change a number here only with a reason in the commit message.

import type { Tolerance } from './compare.ts';

export const TOL = {
  add: { atol: 1e-6, rtol: 1e-6 },
  gelu: { atol: 1e-5, rtol: 1e-5 },
  matmul: { atol: 1e-4, rtol: 1e-4 },
  matmulBackward: { atol: 2e-4, rtol: 2e-4 },
  attentionForward: { atol: 1e-4, rtol: 1e-4 },
  attentionBackward: { atol: 3e-4, rtol: 1e-3 },
  softmax: { atol: 1e-6, rtol: 1e-5 },
  softmaxBackward: { atol: 1e-5, rtol: 1e-4 },
  layerNorm: { atol: 1e-5, rtol: 1e-5 },
  layerNormBackward: { atol: 1e-4, rtol: 1e-4 },
  dropout: { atol: 1e-6, rtol: 1e-6 },
  meanPool: { atol: 1e-5, rtol: 1e-5 },
  crossEntropy: { atol: 1e-5, rtol: 1e-5 },
  adamw: { atol: 1e-6, rtol: 1e-5 },
  gradNorm: { atol: 1e-5, rtol: 1e-5 },
  // The fusion model's glue: f32 arithmetic against float64 rounded to f32 (concat-time only copies).
  axpy: { atol: 1e-6, rtol: 1e-5 },
  concatTime: { atol: 1e-6, rtol: 1e-5 },
  gate: { atol: 1e-6, rtol: 1e-5 },
  // A gather copies; the scatter-add sums the rows of a repeated id in f32.
  embedding: { atol: 1e-6, rtol: 1e-5 },
} satisfies Record<string, Tolerance>;

/** Reference backward vs central finite differences (float64 both sides). */
export const FD_TOL: Tolerance = { atol: 1e-6, rtol: 1e-5 };
