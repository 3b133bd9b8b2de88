// CPU reference for axpy, float64: returns y + alpha * x (the kernel updates y in place).

export function axpy(x: ArrayLike<number>, y: ArrayLike<number>, alpha = 1): Float64Array {
  const out = new Float64Array(y.length);
  for (let i = 0; i < y.length; i++) out[i] = y[i]! + alpha * x[i]!;
  return out;
}
