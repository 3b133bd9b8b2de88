// One tolerance table for every op: |gpu - ref| <= atol + rtol * |ref|, ref accumulated in float64.
// Used by the tests (test/tolerances.ts re-exports it), `emofuse gpu --check` and the benchmarks' validation.
// GPU results are f32; reductions over K terms lose about sqrt(K) * 6e-8 relative, so matmul-like ops get
// more room than elementwise ones. Change a number here only with a reason in the commit message.

import type { Tolerance } from './compare.ts';

export const TOL = {
  add: { atol: 1e-6, rtol: 1e-6 },
  gelu: { atol: 1e-5, rtol: 1e-5 },
} satisfies Record<string, Tolerance>;
