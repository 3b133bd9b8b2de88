// The shape of one op's record (ops/<op>.ts exports one): its KernelDefs, its wrappers and its self-check
// cases. ops/index.ts lists every record in one table (OPS); `allKernels` and `emofuse gpu --check` derive
// from it (onnxruntime-web's op-resolve-rules habit: one table, one place to add an op).

import type { Tolerance } from './compare.ts';
import type { Gpu } from './runtime/gpu.ts';
import type { KernelDef } from './runtime/kernel.ts';

/** Seeded f32 inputs: n values for a given salt (uniform in [-2, 2]). */
export type InputFn = (n: number, salt: number) => Float32Array;

/** One numerical check: run on the GPU, return [actual, reference] pairs to compare under `tol`. */
export interface SelfCheck {
  name: string;
  tol: Tolerance;
  run(gpu: Gpu, input: InputFn): Promise<Array<[ArrayLike<number>, ArrayLike<number>]>>;
}

export interface Op {
  /** The op's file name under ops/ (and shaders/<name>.*.wgsl, ref/<name>.ts, test/kernels/<name>.test.ts). */
  name: string;
  /** Every pipeline the wrappers dispatch: compiled by `emofuse gpu --check`, Params order checked by test/runtime. */
  kernels: readonly KernelDef[];
  /** The public wrappers, by name (also exported directly from the package). */
  wrappers: Record<string, (...args: never[]) => unknown>;
  /** Cases `emofuse gpu --check` runs at a small model-like shape (none for ops checked inside another op's case). */
  checks: readonly SelfCheck[];
}
