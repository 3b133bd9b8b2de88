// The list of numerical self-checks, one per op, at a small model-like shape. Tolerances come from the same
// table as the tests (tolerances.ts).

import { addForward } from './ops/add.ts';
import { geluBackward, geluForward } from './ops/gelu.ts';
import * as ref from './ref/index.ts';
import type { SelfCheck } from './self-check.ts';
import { TOL } from './tolerances.ts';

export const SELF_CHECKS: SelfCheck[] = [
  {
    name: 'gelu fwd+bwd [64, 256]',
    tol: TOL.gelu,
    async run(gpu, input) {
      const n = 64 * 256;
      const xs = input(n, 1);
      const dys = input(n, 2);
      const x = gpu.upload(xs);
      const y = gpu.empty([n]);
      const dx = gpu.empty([n]);
      gpu.poison(y);
      gpu.poison(dx);
      await geluForward(gpu, x, y);
      await geluBackward(gpu, x, gpu.upload(dys), dx);
      return [
        [await gpu.read(y), ref.geluForward(xs)],
        [await gpu.read(dx), ref.geluBackward(xs, dys)],
      ];
    },
  },
  {
    name: 'add [64, 257]',
    tol: TOL.add,
    async run(gpu, input) {
      const n = 64 * 257;
      const as = input(n, 3);
      const bs = input(n, 4);
      const out = gpu.empty([n]);
      gpu.poison(out);
      await addForward(gpu, gpu.upload(as), gpu.upload(bs), out);
      return [[await gpu.read(out), ref.addForward(as, bs)]];
    },
  },
];
