// The benchmark harness every suite uses. One case = one op at one shape; each variant (our kernels, their
// peers, the CPU reference) is first run on input set 0 and compared with the float64 CPU reference on the
// same inputs (compareArrays + the op's TOL entry). A variant outside tolerance is FAILED and never timed.
// Validated variants are then timed with tinybench: warm-up runs, then `iterations` runs, each on the next of
// several input sets (so caches do not flatter), each sample the wall time from the call until the work is
// complete (GPU: gpu.finish() = queue.onSubmittedWorkDone; ORT: session.run resolved with its outputs).
//
// Why tinybench and not benchmark.js: benchmark.js (last release 2017) picks its sample count statistically
// (at least 5 cycles and ~5 s per test) and runs async work through a `deferred` callback; a software adapter
// takes up to seconds per call, so its time-based budget either runs a suite for tens of minutes or cuts samples
// below what we ask. tinybench (maintained, used by vitest bench) awaits async functions natively and with
// `time: 0` runs exactly `warmupIterations` + `iterations` calls, and keeps every sample.

import { Bench } from 'tinybench';
import { compareArrays, type Tolerance } from '@emofuse/kernels';

export type VariantKind = 'ours' | 'peer' | 'reference';

/** A variant ready to run: `run(set)` computes on input set `set` and resolves when the work is complete. */
export interface Runner {
  run(set: number): Promise<void> | void;
  /** The outputs of the most recent run, in the order of the case's reference outputs. */
  outputs(): Promise<ArrayLike<number>[]> | ArrayLike<number>[];
  dispose?(): Promise<void> | void;
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
  samples?: number[];
  stats?: Stats;
  gflops?: number;
  /** itemsPerRun / median seconds, when the case counts items (utterances) instead of FLOPs. */
  rate?: number;
  /** baseline median / this median: > 1 means this variant is faster than our baseline. */
  speedVsBaseline?: number;
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
}

export interface RunOptions {
  warmup: number;
  iterations: number;
  sets: number;
  onProgress?: (msg: string) => void;
}

/** Validation runs slower than this get 1 warm-up + 3 timed runs at most. */
export const SLOW_RUN_MS = 1000;

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
export function validate(outs: ArrayLike<number>[], ref: ArrayLike<number>[], tol: Tolerance): Pick<VariantResult, 'maxAbs' | 'maxRel' | 'mismatches'> & { ok: boolean; detail: string } {
  let maxAbs = 0;
  let maxRel = 0;
  let mismatches = 0;
  let detail = '';
  if (outs.length !== ref.length) return { ok: false, maxAbs: NaN, maxRel: NaN, mismatches: NaN, detail: `${outs.length} outputs, expected ${ref.length}` };
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
    if (rep.mismatches && !detail) detail = `output ${i}: ${rep.mismatches} elements outside atol=${tol.atol} rtol=${tol.rtol}; worst [${rep.worst}] got ${o[rep.worst]} want ${r[rep.worst]}`;
  });
  return { ok: mismatches === 0, maxAbs, maxRel, mismatches, detail };
}

export async function runCase(c: BenchCase, opts: RunOptions): Promise<CaseResult> {
  const say = opts.onProgress ?? (() => {});
  const t0 = performance.now();
  await c.prepareReference?.();
  const ref = c.reference();
  const referenceMs = performance.now() - t0;
  const results: VariantResult[] = [];
  for (const v of c.variants) {
    const base: VariantResult = { name: v.name, kind: v.kind, device: v.device, status: 'ok', ...(v.note ? { note: v.note } : {}) };
    const iterations = Math.min(opts.iterations, v.iterations ?? opts.iterations);
    say(`${v.name}: preparing`);
    let prepared: Runner | ExternalResult | Skip;
    let slowMs = 0;
    try {
      prepared = await v.prepare({ warmup: opts.warmup, iterations, sets: opts.sets });
    } catch (err) {
      results.push({ ...base, status: 'error', reason: firstLine(err) });
      continue;
    }
    if (isSkip(prepared)) {
      results.push({ ...base, status: 'skipped', reason: prepared.skip });
      continue;
    }
    try {
      let outs: ArrayLike<number>[];
      let samples: number[];
      if (isExternal(prepared)) {
        outs = prepared.outputs;
        samples = prepared.samples;
        if (prepared.version) base.version = prepared.version;
        if (prepared.note) base.note = [base.note, prepared.note].filter(Boolean).join('; ');
      } else {
        say(`${v.name}: validating`);
        const tv = performance.now();
        await prepared.run(0);
        slowMs = performance.now() - tv;
        outs = await prepared.outputs();
        samples = [];
      }
      const check = validate(c.select ? c.select(outs) : outs, ref, c.tol);
      Object.assign(base, { maxAbs: check.maxAbs, maxRel: check.maxRel, mismatches: check.mismatches });
      if (!check.ok) {
        results.push({ ...base, status: 'FAILED', reason: check.detail });
        if (!isExternal(prepared)) await prepared.dispose?.();
        continue;
      }
      if (!isExternal(prepared)) {
        // A variant whose validation run took over SLOW_RUN_MS gets at most 1 warm-up + 3 runs (the suite
        // stays within minutes on 2 cores); the JSON keeps the counts actually run.
        const slow = slowMs > SLOW_RUN_MS;
        const warmup = Math.min(opts.warmup, v.warmup ?? opts.warmup);
        const [w, n] = slow ? [Math.min(warmup, 1), Math.min(iterations, 3)] : [warmup, iterations];
        say(`${v.name}: timing ${w} warm-up + ${n} runs`);
        samples = await timeRunner(prepared, w, n, opts.sets);
        await prepared.dispose?.();
      }
      const st = stats(samples);
      results.push({ ...base, samples, stats: st, ...(c.itemsPerRun ? { rate: c.itemsPerRun / (st.median / 1000) } : { gflops: c.flops / (st.median * 1e6) }) });
    } catch (err) {
      results.push({ ...base, status: 'error', reason: firstLine(err) });
      if (!isExternal(prepared)) await Promise.resolve(prepared.dispose?.()).catch(() => {});
    }
  }
  const baseMs = results.find((r) => r.name === c.baseline && r.stats)?.stats?.median;
  for (const r of results) if (r.stats && baseMs) r.speedVsBaseline = baseMs / r.stats.median;
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
  };
}

/** tinybench with time 0: exactly `warmup` + `iterations` awaited calls; run k uses input set k % sets. */
async function timeRunner(r: Runner, warmup: number, iterations: number, sets: number): Promise<number[]> {
  let k = 1; // set 0 was used for validation; start timing on the next one
  const bench = new Bench({ time: 0, iterations, warmupTime: 0, warmupIterations: warmup, throws: true });
  bench.add('variant', async () => {
    await r.run(k++ % sets);
  });
  if (warmup > 0) await bench.warmup();
  await bench.run();
  const res = bench.tasks[0]!.result;
  if (!res || res.error) throw res?.error ?? new Error('tinybench returned no result');
  return [...res.samples];
}

export function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}
