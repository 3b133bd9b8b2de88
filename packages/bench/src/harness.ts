// The benchmark harness every suite uses. One case = one op at one shape; each variant (our kernels, their
// peers, the CPU reference) is first run on input set 0 and compared with the float64 CPU reference on the
// same inputs (compareArrays + the op's TOL entry). A variant outside tolerance is FAILED and never timed.
// Validated variants are then warmed up and timed in interleaved rounds: in round r every variant that still
// needs samples runs once, in the case's order on even rounds and reversed on odd ones (so no variant always
// follows the same one), all on input set (1 + warmup + r) % sets. A 2-core VM drifts by 1.5x within minutes;
// timing variant after variant put that drift into their ratio, rounds put it into both sides of each pair.
// So besides each variant's median, `pairedRatio` is the median over rounds of (variant sample / baseline
// sample in the same round), and 'time / ours' shows it. Each sample is one tinybench run (iterations 1): the
// wall time from the call until the work is complete (GPU: gpu.finish() = queue.onSubmittedWorkDone; ORT:
// session.run resolved with its outputs; a child process: its answer line).
// A variant whose first warm-up run (warm: compilation and session creation happened in validation) takes
// over SLOW_RUN_MS gets at most 1 warm-up and 3 rounds; without warm-up its first sample decides.
// Variants timed by another process on their own (ExternalResult: the PyTorch kernel peers, whisper) keep
// their samples but are not in the rounds; their ratio is the ratio of medians.
//
// Why tinybench and not benchmark.js: benchmark.js (last release 2017) picks its sample count statistically
// (at least 5 cycles and ~5 s per test) and runs async work through a `deferred` callback; a software adapter
// takes up to seconds per call, so its time-based budget either runs a suite for tens of minutes or cuts samples
// below what we ask. tinybench (maintained, used by vitest bench) awaits async functions natively and with
// `time: 0` runs exactly the `iterations` calls asked (here 1 per round), and keeps every sample.

import { Bench } from 'tinybench';
import { compareArrays, type Tolerance } from '@emofuse/kernels';

export type VariantKind = 'ours' | 'peer' | 'reference';

/** A variant ready to run: `run(set)` computes on input set `set` and resolves when the work is complete. */
export interface Runner {
  run(set: number): Promise<void> | void;
  /** The outputs of the most recent run, in the order of the case's reference outputs. */
  outputs(): Promise<ArrayLike<number>[]> | ArrayLike<number>[];
  dispose?(): Promise<void> | void;
  /** What it ran on (a peer's library version) and a note, reported beside its row. */
  version?: string;
  note?: string;
}

/** A variant timed in another process (PyTorch): it reports its own samples and its outputs on set 0. */
export interface ExternalResult {
  external: true;
  samples: number[];
  outputs: ArrayLike<number>[];
  version?: string;
  note?: string;
}

export interface Skip {
  skip: string;
}

export interface Variant {
  name: string;
  kind: VariantKind;
  /** Where it runs, e.g. 'WebGPU llvmpipe', 'ORT CPU EP', 'CPU float64'. */
  device: string;
  prepare(opts: { warmup: number; iterations: number; sets: number }): Promise<Runner | ExternalResult | Skip>;
  /** Fewer timed runs for slow variants (the CPU reference). */
  iterations?: number;
  /** Fewer warm-up runs (a slow CPU variant: its validation run already warmed the JIT). */
  warmup?: number;
  note?: string;
}

export interface BenchCase {
  suite: string;
  op: string;
  /** 'fwd', 'fwd+bwd' */
  pass: string;
  shape: Record<string, number>;
  flops: number;
  flopsFormula: string;
  tol: Tolerance;
  /** Reference outputs on input set 0 (float64 CPU reference). */
  reference(): ArrayLike<number>[];
  /** Async work that `reference` needs first (a reference computed by another backend). */
  prepareReference?(): Promise<void>;
  /** Report a rate of items per second (e.g. utterances) instead of GFLOP/s. */
  itemsPerRun?: number;
  itemUnit?: string;
  /** Maps a variant's outputs to what `reference` returns (e.g. the sampled rows of a large matmul). */
  select?(outs: ArrayLike<number>[]): ArrayLike<number>[];
  variants: Variant[];
  /** Name of the variant the ratios are relative to (our best kernel). */
  baseline: string;
  /** Also report the fastest 'ours' variant against each peer, paired per round (the suite's goal is that ratio). */
  peerRatios?: boolean;
}

/** Median, min and max over rounds of (a's sample / b's sample in the same round). */
export interface PairedRatio {
  median: number;
  min: number;
  max: number;
  rounds: number;
}

export interface Stats {
  median: number;
  min: number;
  max: number;
  mean: number;
}

export interface VariantResult {
  name: string;
  kind: VariantKind;
  device: string;
  status: 'ok' | 'FAILED' | 'skipped' | 'error';
  reason?: string;
  maxAbs?: number;
  maxRel?: number;
  mismatches?: number;
  /** In the order taken; with `rounds`, sample i was taken in round rounds[i]. */
  samples?: number[];
  rounds?: number[];
  /** Warm-up runs done before the rounds (after the validation run). */
  warmup?: number;
  /** The first warm run's ms (the first warm-up, else the first sample): over SLOW_RUN_MS it got 3 rounds at most. */
  firstWarmMs?: number;
  stats?: Stats;
  gflops?: number;
  /** itemsPerRun / median seconds, when the case counts items (utterances) instead of FLOPs. */
  rate?: number;
  /** baseline median / this median: > 1 means this variant is faster than our baseline. */
  speedVsBaseline?: number;
  /** This variant's time / the baseline's, per round, over the rounds both ran in ('time / ours' when present). */
  pairedRatio?: PairedRatio;
  version?: string;
  note?: string;
}

export interface CaseResult {
  suite: string;
  op: string;
  pass: string;
  shape: Record<string, number>;
  flops: number;
  flopsFormula: string;
  itemUnit?: string;
  tol: Tolerance;
  referenceMs: number;
  baseline: string;
  variants: VariantResult[];
  /** The variants that ran in each round, in the order they ran. */
  order?: string[][];
  /** BenchCase.peerRatios: the fastest 'ours' variant (by median) / each peer, paired per round. */
  peerRatios?: Array<{ ours: string; peer: string } & PairedRatio>;
}

export interface RunOptions {
  warmup: number;
  iterations: number;
  sets: number;
  onProgress?: (msg: string) => void;
  /** The clock for samples and the slow-variant rule (tests inject one); default performance.now. */
  now?: () => number;
}

/**
 * A variant whose first warm run is slower than this gets 1 warm-up + 3 timed runs at most. 2 s, not 1 s: the ort
 * train step's run medians were 0.67-1.08 s within one hour on this 2-core VM, and at 1 s it fell into the slow
 * rule in 3 of 7 `bench train` runs (2026-11-30 18:44-19:19 UTC); wgsl (about 10 s a step) and the f32 CPU
 * backend (30-60 s) stay slow.
 */
export const SLOW_RUN_MS = 2000;

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return { median, min: s[0]!, max: s[n - 1]!, mean: s.reduce((a, b) => a + b, 0) / n };
}

function isSkip(p: Runner | ExternalResult | Skip): p is Skip {
  return 'skip' in p;
}
function isExternal(p: Runner | ExternalResult | Skip): p is ExternalResult {
  return 'external' in p;
}

/** Validates against the reference, then (only if within tolerance) times. */
export function validate(
  outs: ArrayLike<number>[],
  ref: ArrayLike<number>[],
  tol: Tolerance,
): Pick<VariantResult, 'maxAbs' | 'maxRel' | 'mismatches'> & { ok: boolean; detail: string } {
  let maxAbs = 0;
  let maxRel = 0;
  let mismatches = 0;
  let detail = '';
  if (outs.length !== ref.length)
    return { ok: false, maxAbs: NaN, maxRel: NaN, mismatches: NaN, detail: `${outs.length} outputs, expected ${ref.length}` };
  ref.forEach((r, i) => {
    const o = outs[i]!;
    if (o.length !== r.length) {
      mismatches += r.length;
      detail ||= `output ${i} has ${o.length} elements, expected ${r.length}`;
      return;
    }
    const rep = compareArrays(o, r, tol);
    maxAbs = Math.max(maxAbs, rep.maxAbs);
    maxRel = Math.max(maxRel, rep.maxRel);
    mismatches += rep.mismatches;
    if (rep.mismatches && !detail)
      detail =
        `output ${i}: ${rep.mismatches} elements outside atol=${tol.atol} rtol=${tol.rtol}; worst [${rep.worst}] got ` +
        `${o[rep.worst]} want ${r[rep.worst]}`;
  });
  return { ok: mismatches === 0, maxAbs, maxRel, mismatches, detail };
}

/** Median, min and max of a[i] / b[j] over the rounds where both have a sample; null without a common round. */
export function pairedRatio(
  a: Pick<VariantResult, 'samples' | 'rounds'>,
  b: Pick<VariantResult, 'samples' | 'rounds'>,
): PairedRatio | null {
  if (!a.samples || !a.rounds || !b.samples || !b.rounds) return null;
  const bAt = new Map(b.rounds.map((r, j) => [r, b.samples![j]!]));
  const ratios = a.rounds.flatMap((r, i) => (bAt.has(r) ? [a.samples![i]! / bAt.get(r)!] : []));
  if (!ratios.length) return null;
  const s = stats(ratios);
  return { median: s.median, min: s.min, max: s.max, rounds: ratios.length };
}

/** Records a variant's first warm run; over SLOW_RUN_MS it gets 3 timed runs at most (returns whether slow). */
function firstWarm(l: Live, ms: number): boolean {
  l.result.firstWarmMs = ms;
  if (ms <= SLOW_RUN_MS) return false;
  l.n = Math.min(l.n, 3);
  return true;
}

/** A validated variant during warm-up and rounds. */
interface Live {
  v: Variant;
  runner: Runner;
  result: VariantResult;
  /** Timed runs still wanted in total (cut to 3 for a slow variant). */
  n: number;
  samples: number[];
  rounds: number[];
}

export async function runCase(c: BenchCase, opts: RunOptions): Promise<CaseResult> {
  const say = opts.onProgress ?? (() => {});
  const now = opts.now ?? (() => performance.now());
  const t0 = performance.now();
  await c.prepareReference?.();
  const ref = c.reference();
  const referenceMs = performance.now() - t0;
  const results: VariantResult[] = [];
  const live: Live[] = [];
  const drop = async (l: Live, err: unknown) => {
    Object.assign(l.result, { status: 'error', reason: firstLine(err) });
    live.splice(live.indexOf(l), 1);
    await Promise.resolve(l.runner.dispose?.()).catch(() => {});
  };

  // 1. Prepare and validate every variant; the validated ones stay alive (all at once) until after the rounds.
  for (const v of c.variants) {
    const base: VariantResult = { name: v.name, kind: v.kind, device: v.device, status: 'ok', ...(v.note ? { note: v.note } : {}) };
    results.push(base);
    const iterations = Math.min(opts.iterations, v.iterations ?? opts.iterations);
    say(`${v.name}: preparing`);
    let prepared: Runner | ExternalResult | Skip;
    try {
      prepared = await v.prepare({ warmup: opts.warmup, iterations, sets: opts.sets });
    } catch (err) {
      Object.assign(base, { status: 'error', reason: firstLine(err) });
      continue;
    }
    if (isSkip(prepared)) {
      Object.assign(base, { status: 'skipped', reason: prepared.skip });
      continue;
    }
    try {
      let outs: ArrayLike<number>[];
      if (prepared.version) base.version = prepared.version;
      if (prepared.note) base.note = [base.note, prepared.note].filter(Boolean).join('; ');
      if (isExternal(prepared)) {
        outs = prepared.outputs;
      } else {
        say(`${v.name}: validating`);
        await prepared.run(0);
        outs = await prepared.outputs();
      }
      const check = validate(c.select ? c.select(outs) : outs, ref, c.tol);
      Object.assign(base, { maxAbs: check.maxAbs, maxRel: check.maxRel, mismatches: check.mismatches });
      if (!check.ok) {
        Object.assign(base, { status: 'FAILED', reason: check.detail });
        if (!isExternal(prepared)) await prepared.dispose?.();
      } else if (isExternal(prepared)) {
        Object.assign(base, { samples: prepared.samples });
      } else {
        live.push({ v, runner: prepared, result: base, n: iterations, samples: [], rounds: [] });
      }
    } catch (err) {
      Object.assign(base, { status: 'error', reason: firstLine(err) });
      if (!isExternal(prepared)) await Promise.resolve(prepared.dispose?.()).catch(() => {});
    }
  }

  // 2. Warm-up, variant by variant (untimed). The first warm-up run is warm (validation compiled everything),
  // so it decides the slow rule: over SLOW_RUN_MS, no more warm-up and at most 3 rounds (the suite stays
  // within minutes on 2 cores); the JSON keeps the counts actually run.
  for (const l of [...live]) {
    const warmup = Math.min(opts.warmup, l.v.warmup ?? opts.warmup);
    l.result.warmup = 0;
    say(`${l.v.name}: ${warmup} warm-up runs`);
    try {
      for (let w = 0; w < warmup; w++) {
        const tw = now();
        await l.runner.run((1 + w) % opts.sets);
        l.result.warmup++;
        if (w === 0 && firstWarm(l, now() - tw)) break;
      }
    } catch (err) {
      await drop(l, err);
    }
  }

  // 3. Rounds: every variant that still needs samples runs once, alternating the order.
  const order: string[][] = [];
  for (let r = 0; live.some((l) => l.samples.length < l.n); r++) {
    const due = live.filter((l) => l.samples.length < l.n);
    const seq = r % 2 ? due.reverse() : due;
    order.push(seq.map((l) => l.v.name));
    say(`round ${r + 1}: ${seq.map((l) => l.v.name).join(', ')}`);
    for (const l of seq) {
      try {
        const ms = await sampleOnce(l.runner, (1 + opts.warmup + r) % opts.sets, now);
        l.samples.push(ms);
        l.rounds.push(r);
        if (l.result.warmup === 0 && l.samples.length === 1) firstWarm(l, ms);
      } catch (err) {
        await drop(l, err);
      }
    }
  }
  for (const l of live) {
    Object.assign(l.result, { samples: l.samples, rounds: l.rounds });
    await Promise.resolve(l.runner.dispose?.()).catch(() => {});
  }

  for (const r of results) {
    if (r.status !== 'ok' || !r.samples) continue;
    r.stats = stats(r.samples);
    if (c.itemsPerRun) r.rate = c.itemsPerRun / (r.stats.median / 1000);
    else r.gflops = c.flops / (r.stats.median * 1e6);
  }
  const baseline = results.find((r) => r.name === c.baseline && r.stats);
  for (const r of results) {
    if (!r.stats || !baseline) continue;
    r.speedVsBaseline = baseline.stats!.median / r.stats.median;
    const p = r === baseline ? null : pairedRatio(r, baseline);
    if (p) r.pairedRatio = p;
  }
  let peerRatios: CaseResult['peerRatios'];
  if (c.peerRatios) {
    const ours = results.filter((r) => r.kind === 'ours' && r.stats && r.rounds).sort((a, b) => a.stats!.median - b.stats!.median)[0];
    peerRatios = [];
    for (const p of results) {
      const pr = ours && p.kind === 'peer' ? pairedRatio(ours, p) : null;
      if (pr) peerRatios.push({ ours: ours!.name, peer: p.name, ...pr });
    }
  }
  return {
    suite: c.suite,
    op: c.op,
    pass: c.pass,
    shape: c.shape,
    flops: c.flops,
    flopsFormula: c.flopsFormula,
    ...(c.itemUnit ? { itemUnit: c.itemUnit } : {}),
    tol: c.tol,
    referenceMs,
    baseline: c.baseline,
    variants: results,
    order,
    ...(peerRatios ? { peerRatios } : {}),
  };
}

/** One tinybench sample (time 0, iterations 1, no warm-up): the wall time of one awaited run on input set `set`. */
async function sampleOnce(r: Runner, set: number, now: () => number): Promise<number> {
  const bench = new Bench({ time: 0, iterations: 1, warmupTime: 0, warmupIterations: 0, throws: true, now });
  bench.add('variant', async () => {
    await r.run(set);
  });
  await bench.run();
  const res = bench.tasks[0]!.result;
  if (!res || res.error || res.samples.length !== 1) throw res?.error ?? new Error('tinybench returned no sample');
  return res.samples[0]!;
}

export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}
