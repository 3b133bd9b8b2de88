// Shape numbers as functions of a graph's symbolic sizes. A recorded graph is the same for every batch shape (the
// recorder feeds every shape-dependent number, Reshape targets and slice bounds, as an int64 input), so a graph
// traced at several shapes differs only in those numbers. Each is a product-sum of the sizes (B*Tt*C, Tt + Ta,
// Ta*C): a multilinear polynomial, which the values at the 2^n corners of a grid determine exactly. `fitSizes`
// finds the polynomial of every number from traces at the corners and checks it on one more trace;
// `SizeExprs` computes a fitted number inside a graph from int64 [1] values of the sizes (Shape of an input).
//
//   const corners = gridCorners({ B: [2, 3], Tt: [5, 6] });         // 4 points
//   const polys = fitSizes(['B', 'Tt'], corners, numbersAt, check);  // numbersAt(point): number[]
//   const e = new SizeExprs(g, { B: bValue, Tt: ttValue });
//   g.op('Reshape', [x, e.vector(polys.slice(0, 2))]);

import type { OnnxGraph } from './graph.ts';

/** Sizes by name at one point, e.g. { B: 2, Tt: 5 }. */
export type SizePoint = Record<string, number>;

/** A multilinear polynomial: integer coefficient by monomial ('' the constant, 'B', 'B*Tt', ...). */
export type SizePoly = Map<string, number>;

/** The monomials of `names`: every subset, as 'a*b' keys in the names' order ('' first). */
function monomials(names: readonly string[]): string[][] {
  return Array.from({ length: 1 << names.length }, (_, m) => names.filter((_, i) => m & (1 << i)));
}

/** The 2^n points whose coordinates are each name's two values. */
export function gridCorners(grid: Record<string, readonly [number, number]>): SizePoint[] {
  const names = Object.keys(grid);
  return monomials(names).map((hi) => Object.fromEntries(names.map((n) => [n, grid[n]![hi.includes(n) ? 1 : 0]])));
}

function evaluate(p: SizePoly, at: SizePoint): number {
  let v = 0;
  for (const [mono, coef] of p) v += coef * (mono ? mono.split('*').reduce((a, n) => a * at[n]!, 1) : 1);
  return v;
}

/**
 * The polynomial of each number: `numbers` gives the same-length list of numbers at a point; fitted at `corners`
 * (gridCorners) and checked at `check`. Throws naming the first number that is not multilinear in the sizes.
 */
export function fitSizes(
  names: readonly string[],
  corners: readonly SizePoint[],
  numbers: (p: SizePoint) => readonly number[],
  check: SizePoint,
  describe: (i: number) => string,
): SizePoly[] {
  const monos = monomials(names);
  const rows = corners.map((p) => monos.map((m) => m.reduce((a, n) => a * p[n]!, 1)));
  const values = corners.map(numbers);
  const n = values[0]!.length;
  if (values.some((v) => v.length !== n)) throw new Error('fitSizes: the traces feed different numbers of values');
  const atCheck = numbers(check);
  const polys: SizePoly[] = [];
  for (let i = 0; i < n; i++) {
    const coef = solve(
      rows,
      values.map((v) => v[i]!),
    ).map(Math.round);
    const p: SizePoly = new Map();
    for (const [j, c] of coef.entries()) if (c !== 0) p.set(monos[j]!.join('*'), c);
    const bad = [...corners, check].find((pt, k) => evaluate(p, pt) !== (k < corners.length ? values[k]![i] : atCheck[i]));
    if (bad) throw new Error(`${describe(i)} is not a product-sum of ${names.join(', ')} (at ${JSON.stringify(bad)})`);
    polys.push(p);
  }
  return polys;
}

/** x with A x = b (Gaussian elimination with partial pivoting; A square and regular). */
function solve(A: readonly number[][], b: readonly number[]): number[] {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]!]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / M[c]![c]!;
      for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((r, i) => r[n]! / r[i]!);
}

/** Fitted numbers computed in a graph from int64 [1] values of the sizes (each monomial built once). */
export class SizeExprs {
  private monos = new Map<string, string>();
  private vectors = new Map<string, string>();

  constructor(
    private readonly g: OnnxGraph,
    sizes: Record<string, string>,
  ) {
    for (const [name, v] of Object.entries(sizes)) this.monos.set(name, v);
  }

  /** The constant value of p, or null when it depends on a size. */
  static constant(p: SizePoly): number | null {
    return [...p.keys()].every((m) => m === '') ? (p.get('') ?? 0) : null;
  }

  /** p as an int64 [1] value. */
  scalar(p: SizePoly): string {
    return this.vector([p]);
  }

  private sum(p: SizePoly): string {
    const g = this.g;
    let sum = '';
    for (const [mono, coef] of p) {
      if (!mono) continue;
      const v = this.monomial(mono);
      const term = coef === 1 ? v : g.op('Mul', [v, g.i64([coef])]);
      sum = sum ? g.op('Add', [sum, term]) : term;
    }
    const c = p.get('') ?? 0;
    if (!sum) return g.i64([c]);
    return c ? g.op('Add', [sum, g.i64([c])]) : sum;
  }

  /** The polys as an int64 vector (a shape, slice bounds). */
  vector(ps: readonly SizePoly[]): string {
    const key = JSON.stringify(ps.map((p) => [...p]));
    let v = this.vectors.get(key);
    if (v) return v;
    const consts = ps.map(SizeExprs.constant);
    if (consts.every((c) => c !== null)) v = this.g.i64(consts as number[]);
    else
      v =
        ps.length === 1
          ? this.sum(ps[0]!)
          : this.g.op(
              'Concat',
              ps.map((p) => this.scalar(p)),
              { axis: 0 },
            );
    this.vectors.set(key, v);
    return v;
  }

  private monomial(mono: string): string {
    let v = this.monos.get(mono);
    if (v) return v;
    const names = mono.split('*');
    v = this.g.op('Mul', [this.monomial(names.slice(0, -1).join('*')), this.monomial(names.at(-1)!)]);
    this.monos.set(mono, v);
    return v;
  }
}

/** p + q. */
export function addPolys(p: SizePoly, q: SizePoly): SizePoly {
  const out = new Map(p);
  for (const [m, c] of q) out.set(m, (out.get(m) ?? 0) + c);
  for (const [m, c] of out) if (c === 0) out.delete(m);
  return out;
}
