// The benchmark harness's promise: a variant is timed only after it matches the CPU reference on the same
// inputs; a wrong-but-fast one is reported FAILED with no samples. Pure CPU, no adapter needed.

import { describe, expect, it } from 'vitest';
import { runCase, stats, type BenchCase, type Variant } from '@emofuse/bench';

function cpuVariant(name: string, f: (set: number) => number[], kind: Variant['kind'] = 'ours'): Variant & { calls: number[] } {
  const calls: number[] = [];
  let last: number[] = [];
  return {
    name,
    kind,
    device: 'CPU',
    calls,
    async prepare() {
      return {
        run(set: number) {
          calls.push(set);
          last = f(set);
        },
        outputs: () => [last],
      };
    },
  };
}

describe('bench harness', () => {
  const good = (set: number) => [1 + set * 0, 2, 3];
  const c = (variants: Variant[]): BenchCase => ({
    suite: 'test',
    op: 'toy',
    pass: 'fwd',
    shape: { N: 3 },
    flops: 3e6,
    flopsFormula: 'N',
    tol: { atol: 1e-6, rtol: 1e-6 },
    reference: () => [[1, 2, 3]],
    variants,
    baseline: 'right',
  });

  it('times a validated variant on rotating input sets and reports FAILED (untimed) for a wrong one', async () => {
    const right = cpuVariant('right', good);
    const wrong = cpuVariant('wrong', () => [1, 2, 3.01], 'peer');
    const skipped: Variant = { name: 'absent', kind: 'peer', device: '-', prepare: async () => ({ skip: 'not installed' }) };
    const r = await runCase(c([right, wrong, skipped]), { warmup: 1, iterations: 4, sets: 3 });
    const [a, b, s] = r.variants;
    expect(a!.status).toBe('ok');
    expect(a!.samples).toHaveLength(4);
    expect(a!.mismatches).toBe(0);
    expect(a!.speedVsBaseline).toBe(1);
    // validation on set 0, then 1 warm-up + 4 timed runs cycling through sets 1, 2, 0, ...
    expect(right.calls).toEqual([0, 1, 2, 0, 1, 2]);
    expect(b!.status).toBe('FAILED');
    expect(b!.samples).toBeUndefined();
    expect(b!.reason).toMatch(/worst \[2\] got 3.01 want 3/);
    expect(wrong.calls).toEqual([0]);
    expect(s!.status).toBe('skipped');
    expect(s!.reason).toBe('not installed');
  });

  it('a NaN output fails validation', async () => {
    const nan = cpuVariant('right', () => [1, NaN, 3]);
    const r = await runCase(c([nan]), { warmup: 0, iterations: 2, sets: 1 });
    expect(r.variants[0]!.status).toBe('FAILED');
  });

  it('stats: median of an even count is the mean of the middle two', () => {
    expect(stats([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4, mean: 2.5 });
    expect(stats([5, 1, 3]).median).toBe(3);
  });
});
