// The benchmark harness's promise: a variant is timed only after it matches the CPU reference on the same
// inputs; a wrong-but-fast one is reported FAILED with no samples. Validated variants are timed in interleaved
// rounds (order reversed every other round) and compared per round. Pure CPU, no adapter needed; the timing
// tests run on an injected clock that each fake run advances by a known cost, so every sample is exact.

import { describe, expect, it } from 'vitest';
import { caseNotes, caseRows, pairedRatio, runCase, stats, SLOW_RUN_MS, type BenchCase, type Variant } from '@emofuse/bench';

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
    expect(a!.rounds).toEqual([0, 1, 2, 3]);
    expect(a!.warmup).toBe(1);
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

describe('bench harness rounds (injected clock: a run costs what its variant says)', () => {
  let t = 0;
  const now = () => t;
  const log: string[] = [];
  /** A variant whose run on input set `set` costs cost(set, call) ms of the injected clock; call 0 is validation. */
  const timed = (name: string, cost: (set: number, call: number) => number, extra: Partial<Variant> = {}): Variant => ({
    name,
    kind: 'ours',
    device: 'CPU',
    ...extra,
    async prepare() {
      let call = 0;
      return {
        run(set: number) {
          t += cost(set, call++);
          log.push(name);
        },
        outputs: () => [[1, 2, 3]],
      };
    },
  });
  const c = (variants: Variant[], baseline = variants[0]!.name, more: Partial<BenchCase> = {}): BenchCase => ({
    suite: 'test',
    op: 'toy',
    pass: 'fwd',
    shape: { N: 3 },
    flops: 3e6,
    flopsFormula: 'N',
    tol: { atol: 1e-6, rtol: 1e-6 },
    reference: () => [[1, 2, 3]],
    variants,
    baseline,
    ...more,
  });
  const run = (variants: Variant[], o: { warmup?: number; iterations?: number; sets?: number } = {}, more: Partial<BenchCase> = {}) => {
    log.length = 0;
    return runCase(c(variants, variants[0]!.name, more), {
      warmup: o.warmup ?? 0,
      iterations: o.iterations ?? 4,
      sets: o.sets ?? 100,
      now,
    });
  };

  it(
    'every variant runs once per round, the order reversed every other round; a variant with fewer iterations stays in the ' +
      'first rounds only',
    async () => {
      const r = await run([timed('A', () => 1), timed('B', () => 1), timed('C', () => 1, { iterations: 2 })]);
      expect(r.order).toEqual([
        ['A', 'B', 'C'],
        ['C', 'B', 'A'],
        ['A', 'B'],
        ['B', 'A'],
      ]);
      expect(log).toEqual(['A', 'B', 'C', /* validation */ 'A', 'B', 'C', 'C', 'B', 'A', 'A', 'B', 'B', 'A']);
      expect(r.variants.map((v) => v.rounds)).toEqual([
        [0, 1, 2, 3],
        [0, 1, 2, 3],
        [0, 1],
      ]);
    },
  );

  it('every variant of a round runs on the same input set, the next one each round (after the warm-ups)', async () => {
    const sets: Record<string, number[]> = { A: [], B: [] };
    const rec = (n: string) => timed(n, (set) => (sets[n]!.push(set), 1), n === 'B' ? { warmup: 0 } : {});
    await run([rec('A'), rec('B')], { warmup: 2, iterations: 3, sets: 4 });
    expect(sets).toEqual({ A: [0, 1, 2, 3, 0, 1], B: [0, 3, 0, 1] });
  });

  it("samples are the runs' costs; ratios are medians of per-round pairs, not ratios of medians", async () => {
    const base = [10, 20, 10, 40];
    const peer = [30, 40, 20, 40]; // per round 3, 2, 2, 1: median 2; medians 35 / 15 = 2.33
    const r = await run(
      [timed('ours', (s) => (s ? base[s - 1]! : 0)), timed('peer', (s) => (s ? peer[s - 1]! : 0), { kind: 'peer' })],
      {},
      { peerRatios: true },
    );
    const [o, p] = r.variants;
    expect(o!.samples).toEqual(base);
    expect(p!.samples).toEqual(peer);
    expect(p!.pairedRatio).toEqual({ median: 2, min: 1, max: 3, rounds: 4 });
    expect(1 / p!.speedVsBaseline!).toBeCloseTo(35 / 15, 12);
    expect(caseRows(r)[1]![5]).toBe('2.00x');
    expect(r.peerRatios).toEqual([{ ours: 'ours', peer: 'peer', median: 0.5, min: 1 / 3, max: 1, rounds: 4 }]);
    expect(caseNotes(r)).toContain('  ours / peer, paired per round: median 0.50x [0.33 .. 1.00] over 4 rounds');
  });

  it('pairedRatio pairs only the rounds both variants ran in', () => {
    expect(pairedRatio({ samples: [4, 9, 8], rounds: [0, 2, 3] }, { samples: [2, 1, 3], rounds: [0, 1, 2] })).toEqual({
      median: 2.5,
      min: 2,
      max: 3,
      rounds: 2,
    });
    expect(pairedRatio({ samples: [4], rounds: [5] }, { samples: [2], rounds: [0] })).toBeNull();
    expect(pairedRatio({ samples: [4] }, { samples: [2], rounds: [0] })).toBeNull();
  });

  it('the slow rule is decided on the first warm-up run, not on validation (which compiles)', async () => {
    const compiles = timed('compiles', (_, call) => (call === 0 ? 40 * SLOW_RUN_MS : 10));
    const slow = timed('slow', () => 1.5 * SLOW_RUN_MS);
    const r = await run([compiles, slow], { warmup: 2, iterations: 7 });
    expect(r.variants.map((v) => [v.warmup, v.firstWarmMs, v.samples!.length])).toEqual([
      [2, 10, 7],
      [1, 1.5 * SLOW_RUN_MS, 3],
    ]);
    expect(r.variants[1]!.rounds).toEqual([0, 1, 2]);
  });

  it('without warm-up the first timed run decides', async () => {
    const r = await run([timed('fast', () => 1), timed('slow', () => 2 * SLOW_RUN_MS)], { warmup: 0, iterations: 5 });
    expect(r.variants.map((v) => v.samples!.length)).toEqual([5, 3]);
  });

  it('a variant that throws in a round is reported as an error; the others finish their rounds', async () => {
    const r = await run(
      [
        timed('A', () => 1),
        timed('B', (s) => {
          if (s === 2) throw new Error('device lost');
          return 1;
        }),
      ],
      { iterations: 3 },
    );
    expect(r.variants.map((v) => [v.status, v.samples?.length])).toEqual([
      ['ok', 3],
      ['error', undefined],
    ]);
    expect(r.variants[1]!.reason).toBe('device lost');
    expect(r.order).toEqual([['A', 'B'], ['B', 'A'], ['A']]);
  });

  it('an external result (timed in its own process) keeps its samples, stays out of the rounds, and its ratio is marked *', async () => {
    const ext: Variant = {
      name: 'ext',
      kind: 'peer',
      device: 'py',
      prepare: async () => ({ external: true, samples: [30, 10, 20], outputs: [[1, 2, 3]] }),
    };
    const r = await run([timed('ours', () => 10), ext], { iterations: 3 });
    expect(r.order).toEqual([['ours'], ['ours'], ['ours']]);
    expect(r.variants[1]!.pairedRatio).toBeUndefined();
    expect(caseRows(r)[1]![5]).toBe('2.00x*');
  });
});
