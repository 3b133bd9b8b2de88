// llm.c's closeness rule, shared by the tests, `emofuse gpu --check` and the benchmarks' validation:
// |actual - ref| <= atol + rtol * |ref|; NaN or Inf where the reference is finite always fails.

export interface Tolerance {
  atol: number;
  rtol: number;
}

export interface CloseReport {
  maxAbs: number;
  /** Max relative error over elements whose reference exceeds 1e-6 in magnitude. */
  maxRel: number;
  /** Index of the element furthest outside its tolerance. */
  worst: number;
  mismatches: number;
}

export function isClose(a: number, r: number, tol: Tolerance): boolean {
  return Number.isFinite(a) === Number.isFinite(r) && (a === r || Math.abs(a - r) <= tol.atol + tol.rtol * Math.abs(r));
}

export function compareArrays(actual: ArrayLike<number>, ref: ArrayLike<number>, tol: Tolerance): CloseReport {
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  let worstExcess = -Infinity;
  let mismatches = 0;
  for (let i = 0; i < ref.length; i++) {
    const a = actual[i]!;
    const r = ref[i]!;
    const abs = a === r ? 0 : Number.isFinite(a - r) ? Math.abs(a - r) : Infinity;
    if (abs > maxAbs) maxAbs = abs;
    if (Math.abs(r) > 1e-6 && abs / Math.abs(r) > maxRel) maxRel = abs / Math.abs(r);
    const excess = abs - (tol.atol + tol.rtol * Math.abs(r));
    if (excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
    if (!isClose(a, r, tol)) mismatches++;
  }
  return { maxAbs, maxRel, worst, mismatches };
}
