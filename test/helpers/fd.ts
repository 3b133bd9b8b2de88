// Central finite differences in float64, for checking every CPU reference backward.
// Pattern: loss(x) = sum(forward(x) * w) for a fixed random w; then dx_analytic = backward(dy = w).

export function numericGrad(loss: (x: Float64Array) => number, x: Float64Array, eps = 1e-6): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const keep = x[i]!;
    x[i] = keep + eps;
    const up = loss(x);
    x[i] = keep - eps;
    const down = loss(x);
    x[i] = keep;
    g[i] = (up - down) / (2 * eps);
  }
  return g;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function toF64(a: ArrayLike<number>): Float64Array {
  return Float64Array.from(a as ArrayLike<number>);
}
