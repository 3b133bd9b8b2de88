// @emofuse/bench: our kernels against the peers a user would pick, on the same machine in the same run.
// Every suite validates each variant against the float64 CPU reference first, then times it (harness.ts).

import type { Gpu } from '@emofuse/kernels';
import { ATTENTION_QUICK_SHAPES, ATTENTION_SHAPES, attentionCases } from './attention.ts';
import { runCase, type BenchCase, type CaseResult, type RunOptions } from './harness.ts';
import { kernelCases } from './kernels.ts';
import { trainCases } from './train.ts';
import { extractCases } from './extract.ts';
import { analyzeCases } from './analyze.ts';
import { probeTorch } from './torch-peer.ts';
import { machineInfo, type BenchReport } from './report.ts';

export * from './harness.ts';
export * from './report.ts';
export * from './attention.ts';
export * from './kernels.ts';
export * from './train.ts';
export * from './finetune.ts';
export * from './extract.ts';
export * from './analyze.ts';
export * from './profile.ts';
export * from './profile-backend.ts';
export * from './baselines/index.ts';
export { ortVariant, oneNodeModel, onnxModel, ortVersion } from './ort-peer.ts';
export { torchVariant, probeTorch } from './torch-peer.ts';

export const SUITES = ['attention', 'kernels', 'train', 'extract', 'analyze'] as const;
export type SuiteName = (typeof SUITES)[number];

export interface SuiteOptions {
  quick?: boolean;
  warmup?: number;
  iterations?: number;
  sets?: number;
  /** bench extract: encoder specs to time (default EXTRACT_ENCODERS). */
  encoders?: string[];
  /** Run only variants whose name contains one of these substrings (case-insensitive). */
  only?: string[];
  command?: string;
  onProgress?: (msg: string) => void;
  /** Called after each case with its result (so the CLI can print as it goes). */
  onCase?: (r: CaseResult) => void;
}

export function defaultRunOptions(o: SuiteOptions): RunOptions {
  return {
    warmup: o.warmup ?? (o.quick ? 1 : 2),
    iterations: o.iterations ?? (o.quick ? 2 : 7),
    sets: o.sets ?? (o.quick ? 2 : 3),
  };
}

export function suiteCases(gpu: Gpu, suite: SuiteName, o: SuiteOptions, sets: number): BenchCase[] {
  let cases =
    suite === 'attention'
      ? attentionCases(gpu, o.quick ? ATTENTION_QUICK_SHAPES : ATTENTION_SHAPES, sets)
      : suite === 'train'
        ? trainCases(gpu, !!o.quick, sets)
        : suite === 'extract'
          ? extractCases(gpu, !!o.quick, sets, o.encoders)
          : suite === 'analyze'
            ? analyzeCases(!!o.quick)
            : kernelCases(gpu, !!o.quick, sets);
  if (o.only?.length) {
    const want = o.only.map((s) => s.toLowerCase());
    cases = cases.map((c) => ({
      ...c,
      variants: c.variants.filter((v) => v.name === c.baseline || want.some((w) => v.name.toLowerCase().includes(w))),
    }));
  }
  return cases;
}

export async function runSuite(gpu: Gpu, suite: SuiteName, o: SuiteOptions = {}): Promise<BenchReport> {
  const opts = defaultRunOptions(o);
  const cases = suiteCases(gpu, suite, o, opts.sets);
  const torch = await probeTorch();
  const results: CaseResult[] = [];
  for (const c of cases) {
    const r = await runCase(c, {
      ...opts,
      onProgress: (m) => o.onProgress?.(`${c.op} ${c.pass} ${Object.values(c.shape).join('x')}: ${m}`),
    });
    results.push(r);
    o.onCase?.(r);
  }
  return {
    suite,
    date: new Date().toISOString(),
    command: o.command ?? `emofuse bench ${suite}`,
    options: opts,
    machine: machineInfo(gpu, { torch: 'version' in torch ? torch.version : `skipped (${torch.skip})` }),
    cases: results,
  };
}
