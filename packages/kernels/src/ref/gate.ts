// CPU reference for the gate fusion variant's mix: out = g x + (1 - g) y with g = sigmoid(s), float64.
// Backward: ds = dout (x - y) g (1 - g), dx = dout g, dy = dout (1 - g).

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

export function gateForward(s: ArrayLike<number>, x: ArrayLike<number>, y: ArrayLike<number>): Float64Array {
  const out = new Float64Array(s.length);
  for (let i = 0; i < out.length; i++) {
    const g = sigmoid(s[i]!);
    out[i] = g * x[i]! + (1 - g) * y[i]!;
  }
  return out;
}

export function gateBackward(
  s: ArrayLike<number>,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
  dout: ArrayLike<number>,
): { ds: Float64Array; dx: Float64Array; dy: Float64Array } {
  const n = dout.length;
  const [ds, dx, dy] = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  for (let i = 0; i < n; i++) {
    const g = sigmoid(s[i]!);
    ds[i] = dout[i]! * (x[i]! - y[i]!) * g * (1 - g);
    dx[i] = dout[i]! * g;
    dy[i] = dout[i]! * (1 - g);
  }
  return { ds, dx, dy };
}
