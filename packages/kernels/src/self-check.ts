// `emofuse gpu --check`: compiles every kernel, then runs each op once on seeded inputs and compares with its
// CPU reference. A user's first proof that the adapter computes what the references compute.

import { compareArrays, type Tolerance } from './compare.ts';
import { allKernels } from './ops/index.ts';
import { randomF32 } from './random.ts';
import type { Gpu } from './runtime/gpu.ts';
import { SELF_CHECKS } from './self-checks.ts';

export interface CompileResult {
  kernel: string;
  ok: boolean;
  ms: number;
  error?: string;
}

export interface CheckResult {
  name: string;
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  ms: number;
  error?: string;
}

/** One numerical check: run on the GPU, return [actual, reference] pairs to compare under `tol`. */
export interface SelfCheck {
  name: string;
  tol: Tolerance;
  run(gpu: Gpu, input: (n: number, salt: number) => Float32Array): Promise<Array<[ArrayLike<number>, ArrayLike<number>]>>;
}

export async function compileAllKernels(gpu: Gpu, onResult?: (r: CompileResult) => void): Promise<CompileResult[]> {
  const out: CompileResult[] = [];
  for (const def of allKernels) {
    const t0 = performance.now();
    let r: CompileResult;
    try {
      await gpu.pipeline(def);
      r = { kernel: def.name, ok: true, ms: performance.now() - t0 };
    } catch (err) {
      r = { kernel: def.name, ok: false, ms: performance.now() - t0, error: (err as Error).message };
    }
    out.push(r);
    onResult?.(r);
  }
  return out;
}

export async function runSelfChecks(gpu: Gpu, onResult?: (r: CheckResult) => void, seed = 1234): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const check of SELF_CHECKS) {
    const t0 = performance.now();
    let r: CheckResult;
    try {
      const pairs = await check.run(gpu, (n, salt) => randomF32(n, seed + salt));
      let maxAbs = 0;
      let maxRel = 0;
      let bad = 0;
      for (const [actual, reference] of pairs) {
        const rep = compareArrays(actual, reference, check.tol);
        maxAbs = Math.max(maxAbs, rep.maxAbs);
        maxRel = Math.max(maxRel, rep.maxRel);
        bad += rep.mismatches;
      }
      r = { name: check.name, ok: bad === 0, maxAbs, maxRel, ms: performance.now() - t0, ...(bad ? { error: `${bad} elements outside atol=${check.tol.atol} rtol=${check.tol.rtol}` } : {}) };
    } catch (err) {
      r = { name: check.name, ok: false, maxAbs: NaN, maxRel: NaN, ms: performance.now() - t0, error: (err as Error).message };
    }
    out.push(r);
    onResult?.(r);
  }
  return out;
}
