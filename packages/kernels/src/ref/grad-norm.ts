// CPU reference for the global L2 norm over a list of gradient tensors, float64: sqrt(sum_t sum_i t[i]^2).
// No backward: the norm only feeds gradient clipping (adamw's clip coefficient).

export function gradNormForward(tensors: readonly ArrayLike<number>[]): number {
  let s = 0;
  for (const t of tensors) for (let i = 0; i < t.length; i++) s += t[i]! * t[i]!;
  return Math.sqrt(s);
}
