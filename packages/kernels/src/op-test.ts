// The one op-test helper (tinygrad's helper_test_op habit), used by test/kernels, test/bench and
// `emofuse gpu --check`: upload the inputs, NaN-poison the outputs, run the op, read back, compare each
// output with its float64 reference under one tolerance, and report the worst element.
//
//   await expectOp(gpu, { name: 'gelu n=7', tol: TOL.gelu, in: { x: xs, dy: dys }, out: { y: [7], dx: [7] },
//     run: (t) => geluForward(gpu, t.x, t.y).then(() => geluBackward(gpu, t.x, t.dy, t.dx)),
//     want: () => ({ y: ref.geluForward(xs), dx: ref.geluBackward(xs, dys) }) });

import { compareArrays, isClose, type Tolerance } from './compare.ts';
import type { SelfCheck } from './op.ts';
import type { Gpu, Tensor } from './runtime/gpu.ts';

/** Host data, uploaded with shape [length] or the given shape. */
export type HostInput = ArrayLike<number> | readonly [ArrayLike<number>, readonly number[]];

export interface OpCase {
  name: string;
  tol: Tolerance;
  /** Inputs by name, uploaded before `run`. */
  in: Record<string, HostInput>;
  /** Outputs by name: a shape (the tensor is NaN-poisoned) or initial contents (e.g. to test accumulation). */
  out: Record<string, readonly number[] | Float32Array | readonly [Float32Array, readonly number[]]>;
  /** Dispatch the op on the uploaded tensors (inputs and outputs share one namespace). */
  run(t: Record<string, Tensor>): Promise<unknown>;
  /** The float64 reference of each output to compare (a subset of `out` is fine). */
  want: () => Record<string, ArrayLike<number>>;
}

export interface OutputReport {
  output: string;
  shape: readonly number[];
  maxAbs: number;
  maxRel: number;
  mismatches: number;
  /** Worst element (furthest outside its tolerance): its index in the output's shape, value and reference. */
  worst: { at: number[]; got: number; want: number };
  /** Up to 8 mismatching elements, formatted. */
  first: string[];
}

export interface OpReport {
  name: string;
  tol: Tolerance;
  ok: boolean;
  maxAbs: number;
  maxRel: number;
  outputs: OutputReport[];
  /** '' when ok, else a multi-line account of every failing output. */
  message: string;
}

export function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = [];
  for (let d = shape.length - 1; d >= 0; d--) {
    idx.unshift(i % shape[d]!);
    i = Math.floor(i / shape[d]!);
  }
  return idx;
}

/** Compare one output with its reference; the report names the worst element and the first mismatches. */
export function compareOutput(
  output: string,
  actual: ArrayLike<number>,
  want: ArrayLike<number>,
  tol: Tolerance,
  shape: readonly number[] = [want.length],
): OutputReport {
  if (actual.length !== want.length) throw new Error(`${output}: ${actual.length} values, reference has ${want.length}`);
  const rep = compareArrays(actual, want, tol);
  const first: string[] = [];
  for (let i = 0; rep.mismatches && i < want.length && first.length < 8; i++) {
    const a = actual[i]!;
    const r = want[i]!;
    if (!isClose(a, r, tol))
      first.push(`at [${unravel(i, shape).join(', ')}]: got ${a}, expected ${r} (diff ${Math.abs(a - r).toExponential(3)})`);
  }
  const w = Math.max(rep.worst, 0);
  return {
    output,
    shape,
    maxAbs: rep.maxAbs,
    maxRel: rep.maxRel,
    mismatches: rep.mismatches,
    worst: { at: unravel(w, shape), got: actual[w]!, want: want[w]! },
    first,
  };
}

/** Combine per-output reports into one (the message says, for each failing output, what `expectClose` always said). */
export function opReport(name: string, tol: Tolerance, outputs: OutputReport[]): OpReport {
  const bad = outputs.filter((o) => o.mismatches);
  const message = bad
    .map(
      (o) =>
        `${name} ${o.output} [${o.shape.join(', ')}]: ${o.mismatches} of ${o.shape.reduce((a, b) => a * b, 1)} elements outside ` +
        `atol=${tol.atol} rtol=${tol.rtol}\n` +
        `  max abs err ${o.maxAbs.toExponential(3)}, max rel err ${o.maxRel.toExponential(3)}, worst at ` +
        `[${o.worst.at.join(', ')}]: got ${o.worst.got}, expected ${o.worst.want}\n` +
        `first mismatches:\n${o.first.map((l) => '  ' + l).join('\n')}`,
    )
    .join('\n');
  return {
    name,
    tol,
    ok: bad.length === 0,
    maxAbs: Math.max(0, ...outputs.map((o) => o.maxAbs)),
    maxRel: Math.max(0, ...outputs.map((o) => o.maxRel)),
    outputs,
    message,
  };
}

const isShape = (v: unknown): v is readonly number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/** Upload, poison, run, read back, compare. Tensors it made are destroyed afterwards. */
export async function runOpCase(gpu: Gpu, c: OpCase): Promise<OpReport> {
  const t: Record<string, Tensor> = {};
  try {
    for (const [k, v] of Object.entries(c.in)) {
      const [data, shape] =
        Array.isArray(v) && v.length === 2 && isShape(v[1])
          ? (v as unknown as readonly [ArrayLike<number>, readonly number[]])
          : [v as ArrayLike<number>, undefined];
      t[k] = gpu.upload(data instanceof Float32Array ? data : Float32Array.from(data), shape ?? [data.length], k);
    }
    for (const [k, v] of Object.entries(c.out)) {
      if (isShape(v)) {
        t[k] = gpu.empty(v, k);
        gpu.poison(t[k]);
      } else {
        const [data, shape] = v instanceof Float32Array ? [v, [v.length]] : v;
        t[k] = gpu.upload(data as Float32Array, shape as readonly number[], k);
      }
    }
    await c.run(t);
    const want = c.want();
    const outputs: OutputReport[] = [];
    for (const [k, ref] of Object.entries(want)) {
      if (!t[k]) throw new Error(`${c.name}: want.${k} names no input or output`);
      outputs.push(compareOutput(k, await gpu.read(t[k]), ref, c.tol, t[k].shape));
    }
    return opReport(c.name, c.tol, outputs);
  } finally {
    for (const x of Object.values(t)) x.destroy();
  }
}

/** A self-check (`emofuse gpu --check`) made of one OpCase built from the seeded inputs. */
export function caseCheck(
  name: string,
  tol: Tolerance,
  build: (gpu: Gpu, input: (n: number, salt: number) => Float32Array) => Omit<OpCase, 'name' | 'tol'>,
): SelfCheck {
  return {
    name,
    tol,
    async run(gpu, input) {
      const c = build(gpu, input);
      const want = c.want();
      const pairs: Array<[ArrayLike<number>, ArrayLike<number>]> = [];
      await runOpCase(gpu, {
        ...c,
        name,
        tol,
        run: async (t) => {
          await c.run(t);
          for (const [k, ref] of Object.entries(want)) pairs.push([await gpu.read(t[k]!), ref]);
        },
        want: () => ({}),
      });
      return pairs;
    },
  };
}
