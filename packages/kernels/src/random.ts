// Seeded inputs for tests, `emofuse gpu --check` and benchmarks: uniform in [lo, hi] (default [-2, 2]), never zeros.

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [lo, hi], as f32 (what the GPU sees); the reference reads the same values. */
export function randomF32(n: number, seed: number, lo = -2, hi = 2): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** A [B, T] key-padding mask (1 keep, 0 pad): row b keeps its first lengths[b] positions. */
export function lengthMask(lengths: readonly number[], T: number): Float32Array {
  const m = new Float32Array(lengths.length * T);
  lengths.forEach((len, b) => {
    for (let t = 0; t < Math.min(len, T); t++) m[b * T + t] = 1;
  });
  return m;
}
