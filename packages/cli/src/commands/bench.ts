// `emofuse bench <suite>`: our kernels against their peers on this machine, validated then timed
// (packages/bench). Prints one table per case and writes every sample to a JSON file.

import type { Command } from 'commander';
import cliProgress from 'cli-progress';
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Gpu } from '@emofuse/kernels';
import {
  EXTRACT_ENCODERS,
  ORT_THREADS,
  runFinetuneBench,
  SUITES,
  TABLE_HEADER,
  profileMarkdown,
  profileTrain,
  reportMarkdown,
  caseNotes,
  caseRows,
  runSuite,
  shapeLabel,
  suiteCases,
  defaultRunOptions,
  writeReport,
  type SuiteName,
} from '@emofuse/bench';
import { locateModel, writeFileAtomic } from '@emofuse/model';
import { int } from '../options.ts';
import { UserError, table } from '../output.ts';
import { checkOutFolder } from '../signals.ts';

interface BenchOptions {
  quick?: boolean;
  warmup?: string;
  iterations?: string;
  sets?: string;
  only?: string;
  out?: string;
  adapter?: string;
  encoders?: string;
  markdown?: string;
  json?: boolean;
  profile?: boolean;
  finetune?: string | boolean;
}

function positiveInt(name: string, v: string | undefined, min = 1): number | undefined {
  return v === undefined ? undefined : int(v, `--${name}`, min);
}

/** A report path must be a file path: checked before the bench runs (a folder there failed only after it, at the write). */
function checkOutFile(path: string, flag: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UserError(`${flag} ${path} is a folder: give a file path, e.g. ${join(path, 'bench.json')}`);
  }
  checkOutFolder(dirname(path), `${flag} ${path}: the folder`);
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('time our kernels against onnxruntime and PyTorch on this machine (each validated first)')
    .argument('<suite>', `what to benchmark: ${SUITES.join(', ')}`)
    .option('--quick', 'one tiny shape, 1 warm-up + 2 runs: a smoke test that everything validates and runs')
    .option('--warmup <n>', 'warm-up runs per variant (default 2, --quick 1)')
    .option('--iterations <n>', 'timed runs per variant (default 7, --quick 2)')
    .option('--sets <n>', 'input sets the timed runs cycle through (default 3, --quick 2)')
    .option(
      '--only <names>',
      "run only our latest kernel and the variants whose names contain one of these comma-separated substrings (e.g. 'ORT,PyTorch')",
    )
    .option('--out <file>', 'JSON report path (default: emofuse-bench-<suite>.json in the current directory)')
    .option('--adapter <spec>', 'WebGPU adapter for our kernels (default: $EMOFUSE_ADAPTER or auto)')
    .option(
      '--encoders <specs>',
      `bench extract: comma-separated encoder specs (default ${EXTRACT_ENCODERS.join(',')}; e.g. bert:models/my-bert)`,
    )
    .option('--markdown <file>', "also write the tables as Markdown (how the README's Performance tables are made)")
    .option('--json', 'print the JSON report instead of tables')
    .option(
      '--finetune [k]',
      "bench train: fine-tuning the text encoder's top k blocks (default 2; packages/bench/src/finetune.ts) on ort against PyTorch, " +
        'same batch shapes and threads, interleaved rounds (--iterations: rounds; --encoders bert:<model>: the model)',
    )
    .option(
      '--profile',
      'bench train: time per op class for each backend (synchronised per op; GPU timestamps where the adapter has ' +
        "timestamp-query, e.g. --adapter vulkan) and the dispatch path's cost, instead of the suite; --only wgsl,ort,cpu picks backends",
    )
    .addHelpText(
      'after',
      `
Every variant first runs on input set 0 and is compared with the float64 CPU reference (the tolerance
table the tests use); outside tolerance it is reported FAILED and not timed. Then warm-up runs and timed
runs, each wall time around one call until its work is complete (our kernels: queue.onSubmittedWorkDone).

Suites:
  attention   cross-attention fwd and fwd+bwd at the model's shapes (B=32 Tq=64 Tk=128, H=8 D=32 and the
              default H=4 D=64) and Tq=Tk=512, 1024 (D=64): our fused versions, unfused, CPU reference,
              ORT MultiHeadAttention and MatMul+Softmax+MatMul (CPU and WebGPU EPs), PyTorch
              scaled_dot_product_attention (CPU, when python3 has torch)
  kernels     matmul (square 256..2048 and the model's projections), softmax, layer norm vs ORT and PyTorch
  train       training steps of the default fusion model (B=32, 64 text and 128 audio tokens of 768) on the
              wgsl, ort (one graph a step) and cpu backends, the ort ops run one by one (a baseline), and
              PyTorch CPU, validated against the float64 cpu backend's first two losses; --profile times each
              op class (ort: the op-by-op baseline, so its ops can be timed one at a time)
  extract     utterances per second of reading audio and of each encoder (hash, bert, logmel, speech, ast) on
              16 EmoDB clips and transcripts; transformers.js models that are not available are skipped
  analyze     real-time factor and peak RSS of 'emofuse analyze' on a 10-minute assembled mp3 (--quick: 2) beside
              faster-whisper transcribing it (Silero VAD, tiny.en, same threads; ~/.cache/emofuse/venv-fw)

On a software adapter (Mesa llvmpipe/lavapipe) ratios between implementations on the same machine hold;
absolute numbers say little about a real GPU. Peers find python as $EMOFUSE_PYTHON or python3.

Examples:
  emofuse bench attention
  emofuse bench kernels --iterations 10 --out /tmp/kernels.json
  emofuse bench attention --quick
  emofuse bench train
  emofuse bench train --profile --adapter vulkan --markdown profile.md   # ms per op class, GPU timestamps
  emofuse bench extract --encoders hash,logmel,bert:models/Xenova/all-MiniLM-L6-v2
  emofuse bench attention --only ORT     # ours and the onnxruntime variants only`,
    )
    .action(async (suiteArg: string, opts: BenchOptions) => {
      if (!(SUITES as readonly string[]).includes(suiteArg)) {
        throw new UserError(`unknown bench suite '${suiteArg}'; choose one of: ${SUITES.join(', ')}`);
      }
      const suite = suiteArg as SuiteName;
      const o = {
        quick: !!opts.quick,
        warmup: positiveInt('warmup', opts.warmup, 0),
        iterations: positiveInt('iterations', opts.iterations),
        sets: positiveInt('sets', opts.sets),
        only: opts.only
          ? opts.only
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean)
          : undefined,
        command: `emofuse ${process.argv.slice(2).join(' ')}`,
        ...(opts.encoders
          ? {
              encoders: opts.encoders
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
            }
          : {}),
      };
      if (opts.finetune !== undefined) return benchFinetune(suite, opts, o);
      if (opts.profile && suite !== 'train') throw new UserError(`--profile applies to 'bench train' only, not '${suite}'`);
      const out = resolve(opts.out ?? `emofuse-bench-${suite}${opts.profile ? '-profile' : ''}.json`);
      checkOutFile(out, '--out');
      if (opts.markdown) checkOutFile(resolve(opts.markdown), '--markdown');
      const gpu = await Gpu.create({ ...(opts.adapter ? { adapter: opts.adapter } : {}), ...(opts.profile ? { timestamps: true } : {}) });
      try {
        if (opts.profile) {
          const p = await profileTrain(gpu, {
            quick: o.quick,
            steps: o.iterations,
            backends: o.only,
            onProgress: (m) => process.stderr.write(`${m}\n`),
          });
          writeFileAtomic(out, JSON.stringify(p, null, 1));
          const md = profileMarkdown(p);
          if (opts.markdown) writeFileAtomic(resolve(opts.markdown), md);
          console.log(opts.json ? JSON.stringify(p, null, 1) : md);
          return;
        }
        const total = suiteCases(gpu, suite, o, defaultRunOptions(o).sets).length;
        const bar = process.stderr.isTTY
          ? new cliProgress.SingleBar(
              { format: 'bench {bar} {value}/{total} cases | {msg}', stream: process.stderr, hideCursor: true },
              cliProgress.Presets.shades_classic,
            )
          : null;
        let done = 0;
        bar?.start(total, 0, { msg: '' });
        if (!opts.json)
          console.log(
            `emofuse bench ${suite} on ${gpu.adapter.device} (${gpu.adapter.backend}${gpu.adapter.isSoftware ? ', software' : ''})\n`,
          );
        const report = await runSuite(gpu, suite, {
          ...o,
          onProgress: (m) => (bar ? bar.update({ msg: m.slice(0, 80) }) : undefined),
          onCase: (r) => {
            done++;
            if (opts.json) return bar?.update(done);
            bar?.stop();
            const work = r.flops ? `${(r.flops / 1e9).toFixed(3)} GFLOP = ${r.flopsFormula}` : r.flopsFormula;
            console.log(`${r.op} ${r.pass}  ${shapeLabel(r.shape)}  (${work})`);
            console.log(table(caseRows(r), TABLE_HEADER));
            for (const n of caseNotes(r)) console.log(n);
            console.log('');
            if (done < total) bar?.start(total, done, { msg: '' });
          },
        });
        bar?.stop();
        writeReport(out, report);
        if (opts.markdown) writeFileAtomic(resolve(opts.markdown), reportMarkdown(report));
        if (opts.json) console.log(JSON.stringify(report, null, 1));
        else {
          const m = report.machine;
          console.log(
            `CPU ${m.cpu} x${m.cores}, load average ${m.loadavg.join(' ')}; ${Object.entries(m.versions)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')}`,
          );
          console.log(
            `'time / ours' = median over interleaved rounds of variant time / the baseline's time in the same round (* = ratio ` +
              `of medians, for a variant timed in its own process; > 1: the baseline, ours, is faster). Every sample: ${out}`,
          );
        }
        const failed = report.cases.flatMap((c) =>
          c.variants.filter((v) => v.status === 'FAILED' || (v.kind === 'ours' && v.status !== 'ok')),
        );
        // Ours FAILED or broken fails the command; ours skipped (an encoder whose model is not here) does not.
        if (failed.some((v) => v.kind === 'ours' && (v.status === 'FAILED' || v.status === 'error'))) process.exitCode = 1;
      } finally {
        await gpu.destroy();
      }
    });
}

/** bench train --finetune: our ort fine-tuning step against PyTorch's (packages/bench/src/finetune.ts), a table and JSON. */
async function benchFinetune(suite: SuiteName, opts: BenchOptions, o: { quick: boolean; warmup?: number; iterations?: number }) {
  if (suite !== 'train') throw new UserError(`--finetune applies to 'bench train' only, not '${suite}'`);
  const k = opts.finetune === true ? 2 : int(String(opts.finetune), '--finetune', 0);
  const spec = opts.encoders?.replace(/^bert:/, '') ?? 'sentence-transformers/all-MiniLM-L6-v2';
  let folder: string | null;
  try {
    folder = locateModel(spec, 'bert').folder;
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (!folder) throw new UserError(`bench train --finetune: '${spec}' is not a local model folder (convert it into EMOFUSE_MODELS)`);
  const out = resolve(opts.out ?? 'emofuse-bench-train-finetune.json');
  checkOutFile(out, '--out');
  const shapes = o.quick ? [{ B: 4, T: 8 }] : [8, 16, 24, 32].map((T) => ({ B: 32, T }));
  const r = await runFinetuneBench({
    modelFolder: folder,
    trainTop: k,
    threads: ORT_THREADS,
    shapes,
    rounds: o.iterations ?? (o.quick ? 2 : 5),
    warmup: o.warmup ?? 1,
    onProgress: (m) => process.stderr.write(`${m}\n`),
  });
  writeFileAtomic(out, JSON.stringify(r, null, 1));
  if (opts.json) return console.log(JSON.stringify(r, null, 1));
  const f = (x: number | null, d = 3) => (x === null ? '-' : x.toFixed(d));
  console.log(
    `fine-tuning step, ${spec} top ${k} blocks + text head; ${r.threads} threads each; ${r.rounds} interleaved rounds; ${r.torch}\n`,
  );
  console.log(
    table(
      [
        ...r.rows.map((x) => [`${x.B}x${x.T}`, f(x.ours), f(x.torch), f(x.ratio, 2)]),
        ['sum', f(r.total.ours), f(r.total.torch), f(r.total.ratio, 2)],
      ],
      ['batch B x T', 'ort (ours) s/step', 'PyTorch CPU s/step', 'ours / PyTorch'],
    ),
  );
  console.log(`\nwrote ${out}`);
}
