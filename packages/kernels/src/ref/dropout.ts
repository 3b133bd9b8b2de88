// CPU reference for dropout with the stateless counter-based generator of shaders/dropout.*.wgsl:
// keep_i = pcg(pcg(seed) ^ pcg(offset + i)) >= threshold(p), y = keep ? x / (1 - p) : 0. The hash is pure u32
// arithmetic (Math.imul, >>> 0), so the mask is bit-identical to the GPU's for the same (seed, offset).

/** PCG hash (Jarzynski & Olano 2020), u32 -> u32, the same as `pcg` in the shaders. */
export function dropoutHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> (((state >>> 28) + 4) >>> 0)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** The u32 an element's hash must reach to be kept: min(round(p * 2^32), 2^32 - 1). p must lie in [0, 1). */
export function dropoutThreshold(p: number): number {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must lie in [0, 1), got ${p}`);
  return Math.min(Math.round(p * 4294967296), 4294967295);
}

/** The keep mask (1 keep, 0 drop) for elements offset .. offset + n - 1 under `seed`. */
export function dropoutMask(n: number, p: number, seed: number, offset = 0): Uint8Array {
  const threshold = dropoutThreshold(p);
  const key = dropoutHash(seed >>> 0);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) mask[i] = dropoutHash((key ^ dropoutHash((offset + i) >>> 0)) >>> 0) >= threshold ? 1 : 0;
  return mask;
}

/** y = mask * x / (1 - p). */
export function dropoutForward(x: ArrayLike<number>, p: number, seed: number, offset = 0): Float64Array {
  const mask = dropoutMask(x.length, p, seed, offset);
  const scale = 1 / (1 - p);
  const y = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) y[i] = mask[i] ? x[i]! * scale : 0;
  return y;
}

/** dx = mask * dy / (1 - p), the same mask as the forward with the same (p, seed, offset). */
export function dropoutBackward(dy: ArrayLike<number>, p: number, seed: number, offset = 0): Float64Array {
  return dropoutForward(dy, p, seed, offset);
}
