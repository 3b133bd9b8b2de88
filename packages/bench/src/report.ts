// What a benchmark run says about itself (machine, adapter, versions), the printed table, and the JSON file
// (written to a temp file, then renamed into place).

import { createRequire } from 'node:module';
import { cpus, loadavg, totalmem } from 'node:os';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Gpu } from '@emofuse/kernels';
import { writeFileAtomic } from '@emofuse/model';
import type { CaseResult, RunOptions, VariantResult } from './harness.ts';
import { ortVersion } from './ort-peer.ts';

const require = createRequire(import.meta.url);

/** A package's version from its package.json (found from its entry point: some `exports` hide package.json). */
function pkgVersion(name: string): string {
  try {
    let dir = dirname(require.resolve(name));
    for (let i = 0; i < 5; i++, dir = dirname(dir)) {
      try {
        const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version: string };
        if (p.name === name) return p.version;
      } catch {
        // not here: one level up
      }
    }
    return 'unknown';
  } catch {
    return 'not installed';
  }
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memGiB: number;
  loadavg: number[];
  node: string;
  platform: string;
  adapter: Record<string, unknown>;
  versions: Record<string, string>;
}

export function machineInfo(gpu: Gpu, extra: Record<string, string> = {}): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model ?? 'unknown',
    cores: c.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    loadavg: loadavg().map((x) => Math.round(x * 100) / 100),
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    adapter: { ...gpu.adapter },
    versions: { webgpu: pkgVersion('webgpu'), 'onnxruntime-node': ortVersion(), tinybench: pkgVersion('tinybench'), ...extra },
  };
}

export interface BenchReport {
  suite: string;
  date: string;
  command: string;
  options: Omit<RunOptions, 'onProgress'>;
  machine: MachineInfo;
  cases: CaseResult[];
}

export function writeReport(path: string, report: BenchReport): void {
  writeFileAtomic(path, JSON.stringify(report, null, 1) + '\n');
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

export function shapeLabel(shape: Record<string, number>): string {
  return Object.entries(shape)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** 'time / ours' for one variant: the median of its per-round ratios to the baseline, else the ratio of medians. */
export function timeVsOurs(c: CaseResult, v: VariantResult): number | null {
  if (!v.stats || v.name === c.baseline) return null;
  return v.pairedRatio?.median ?? (v.speedVsBaseline ? 1 / v.speedVsBaseline : null);
}

/** Rows for one case: variant, status, median ms [min..max], GFLOP/s, ratio. */
export function caseRows(c: CaseResult): Array<Array<string | number>> {
  return c.variants.map((v) => {
    if (!v.stats) return [v.name, v.device, v.status === 'FAILED' ? 'FAILED' : v.status, '-', '-', '-'];
    const s = v.stats;
    const t = timeVsOurs(c, v);
    const ratio = v.name === c.baseline ? 'baseline' : t === null ? '-' : `${t.toFixed(2)}x${v.pairedRatio ? '' : '*'}`;
    const rate = v.rate !== undefined ? `${v.rate.toFixed(2)} ${c.itemUnit ?? '/s'}` : v.gflops!.toFixed(2);
    return [v.name, v.device, `${fmtMs(s.median)} ms`, `[${fmtMs(s.min)} .. ${fmtMs(s.max)}]`, rate, ratio];
  });
}

/** `ort (ours) / PyTorch CPU, paired per round: median 1.40x [1.31 .. 1.52] over 7 rounds` */
export function peerRatioLine(p: NonNullable<CaseResult['peerRatios']>[number]): string {
  return (
    `${p.ours} / ${p.peer}, paired per round: median ${p.median.toFixed(2)}x [${p.min.toFixed(2)} .. ${p.max.toFixed(2)}] ` +
    `over ${p.rounds} rounds`
  );
}

/**
 * Printed under the table: how 'time / ours' was made, the fastest of ours against each peer (cases that ask for
 * it), and why variants were not timed (FAILED, skipped, error), one line each.
 */
export function caseNotes(c: CaseResult): string[] {
  const out: string[] = [];
  const rounds = c.order?.length ?? 0;
  const paired = c.variants.filter((v) => v.pairedRatio);
  const unpaired = c.variants.filter((v) => v.stats && v.name !== c.baseline && !v.pairedRatio);
  if (paired.length)
    out.push(
      `  'time / ours': median over rounds of (variant time / ${c.baseline}'s time in the same round); ${rounds} interleaved ` +
        `rounds, order reversed every other round`,
    );
  if (unpaired.length)
    out.push(
      `  *: ratio of medians (${unpaired.map((v) => v.name).join(', ')}: ` +
        `${unpaired.some((v) => !v.rounds) ? 'timed on its own in another process' : 'no round shared with the baseline'})`,
    );
  for (const p of c.peerRatios ?? []) out.push(`  ${peerRatioLine(p)}`);
  for (const v of c.variants.filter((x) => !x.stats)) out.push(`  ${v.name}: ${v.status}: ${v.reason}`);
  return out;
}

export const TABLE_HEADER = ['variant', 'runs on', 'median', '[min .. max]', 'GFLOP/s (or rate)', 'time / ours'];

function fmtMedian(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

/**
 * The report as Markdown, one table per (op, pass): a row per shape, a column per variant, each cell the median
 * ms and, in parentheses, its time relative to our baseline (bold): the median of its per-round ratios, or with *
 * the ratio of medians for a variant timed outside the rounds; FAILED / skipped / - where it did not run.
 * This is how the README's Performance tables are made: `emofuse bench <suite> --markdown <file>`.
 */
export function reportMarkdown(report: BenchReport): string {
  const groups = new Map<string, CaseResult[]>();
  for (const c of report.cases) {
    const key = `${c.op} ${c.pass}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const out: string[] = [];
  for (const [title, cases] of groups) {
    const names: string[] = [];
    for (const c of cases) for (const v of c.variants) if (!names.includes(v.name)) names.push(v.name);
    const unit = cases[0]!.itemUnit ? ` (ms; ${cases[0]!.itemUnit} in brackets)` : ' (ms)';
    out.push(`| ${title}${unit} | ${names.join(' | ')} |`, `|---|${names.map(() => '---:').join('|')}|`);
    for (const c of cases) {
      const cells = names.map((n) => {
        const v = c.variants.find((x) => x.name === n);
        if (!v) return '-';
        if (v.status !== 'ok' || !v.stats) return v.status === 'skipped' ? 'skipped' : v.status;
        const med = fmtMedian(v.stats.median);
        const rate = v.rate !== undefined ? ` [${v.rate >= 100 ? v.rate.toFixed(0) : v.rate.toFixed(1)}]` : '';
        if (n === c.baseline) return `**${med}**${rate}`;
        const t = timeVsOurs(c, v);
        return `${med}${t === null ? '' : ` (${t.toFixed(2)}x${v.pairedRatio ? '' : '*'})`}${rate}`;
      });
      out.push(`| ${shapeLabel(c.shape)} | ${cells.join(' | ')} |`);
    }
    out.push('');
    for (const c of cases) for (const p of c.peerRatios ?? []) out.push(`${shapeLabel(c.shape)}: ${peerRatioLine(p)}`, '');
  }
  const m = report.machine;
  out.push(
    `${m.cpu} x${m.cores}, load average ${m.loadavg.join(' ')} at the end; adapter ${m.adapter.device || m.adapter.description} ` +
      `(${m.adapter.backend}); ` +
      `${Object.entries(m.versions)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}; ` +
      `${report.options.warmup} warm-up + ${report.options.iterations} timed runs in interleaved rounds over ` +
      `${report.options.sets} input sets; ` +
      `(time / ours) = median over rounds of the per-round ratio to ours` +
      `${
        report.cases.some((c) => c.variants.some((v) => v.stats && v.name !== c.baseline && !v.pairedRatio))
          ? ' (* = ratio of medians: timed on its own in another process)'
          : ''
      }; ` +
      `\`${report.command}\`, ${report.date}`,
  );
  return out.join('\n') + '\n';
}
