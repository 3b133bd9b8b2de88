// `emofuse gpu --check`: compiles every kernel, then runs each op once on seeded inputs and compares with its
// CPU reference. A user's first proof that the adapter computes what the references compute.

import { compareArrays } from './compare.ts';
import type { SelfCheck } from './op.ts';
import { SELF_CHECKS, allKernels } from './ops/index.ts';
import { randomF32 } from './random.ts';
import type { Gpu } from './runtime/gpu.ts';
import type { KernelDef } from './runtime/kernel.ts';

export type { SelfCheck } from './op.ts';

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

/** Compile every kernel of the op table (or `kernels`, e.g. the bench's baselines). */
export async function compileAllKernels(
  gpu: Gpu,
  onResult?: (r: CompileResult) => void,
  kernels: readonly KernelDef[] = allKernels,
): Promise<CompileResult[]> {
  const out: CompileResult[] = [];
  for (const def of kernels) {
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

/** Run every op's self-check cases (or `checks`, e.g. the bench's baselines) on inputs seeded from `seed`. */
export async function runSelfChecks(
  gpu: Gpu,
  onResult?: (r: CheckResult) => void,
  seed = 1234,
  checks: readonly SelfCheck[] = SELF_CHECKS,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const check of checks) {
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
      r = {
        name: check.name,
        ok: bad === 0,
        maxAbs,
        maxRel,
        ms: performance.now() - t0,
        ...(bad ? { error: `${bad} elements outside atol=${check.tol.atol} rtol=${check.tol.rtol}` } : {}),
      };
    } catch (err) {
      r = { name: check.name, ok: false, maxAbs: NaN, maxRel: NaN, ms: performance.now() - t0, error: (err as Error).message };
    }
    out.push(r);
    onResult?.(r);
  }
  return out;
}
