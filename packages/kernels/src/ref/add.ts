// CPU reference for the residual add, float64.

export function addForward(a: ArrayLike<number>, b: ArrayLike<number>, alpha = 1): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + alpha * b[i]!;
  return out;
}

export function addBackward(dout: ArrayLike<number>, alpha = 1): { da: Float64Array; db: Float64Array } {
  const da = Float64Array.from(dout);
  const db = new Float64Array(dout.length);
  for (let i = 0; i < dout.length; i++) db[i] = alpha * dout[i]!;
  return { da, db };
}
