// `bench train --finetune`: one fine-tuning step of the text encoder (issue 22) on our ort backend against PyTorch
// doing the same step on the same machine. Ours is finetuneStepper (packages/model/src/train/finetune-text.ts, the
// step `train --finetune-text` runs: encoder forward, the text-only head, backward through the head and the top k
// blocks, AdamW on both, one ONNX graph per step) over the converted model's real weights; PyTorch's is
// python/finetune_twin.py (plain torch, the same config, k, head size, optimizer and clipping; random weights).
// Both get the same batch shapes (B rows of T tokens, row b with T - b % 4 real ones) and the same threads, and run
// in interleaved rounds (ours then torch, torch then ours on the next round), each sample the step's wall time
// measured here (torch's: its request, as bench train's twin). Not validated against each other (different weights):
// each must give finite losses. Timings only; the smoke test runs it tiny.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_FUSION,
  FusionModel,
  finetuneStepper,
  OrtBackend,
  readBertWeights,
  TrainableTextEncoder,
  type Tokens,
} from '@emofuse/model';
import { LineServer } from './train.ts';
import { probeTorch, pythonBin } from './torch-peer.ts';

export interface FinetuneBenchOptions {
  /** The converted model folder (config.json, onnx/model.onnx). */
  modelFolder: string;
  /** Blocks trained from the top (layers + 1: all and the embeddings). */
  trainTop: number;
  threads: number;
  /** Batch shapes, each timed every round. */
  shapes: { B: number; T: number }[];
  rounds: number;
  /** Untimed steps of each shape per variant first. */
  warmup: number;
  width?: number;
  heads?: number;
  onProgress?: (msg: string) => void;
}

export interface FinetuneBenchRow {
  B: number;
  T: number;
  /** Median step seconds over the rounds (null: skipped). */
  ours: number;
  torch: number | null;
  /** Median over rounds of ours / torch in the same round. */
  ratio: number | null;
}

export interface FinetuneBenchReport {
  date: string;
  modelFolder: string;
  trainTop: number;
  threads: number;
  rounds: number;
  rows: FinetuneBenchRow[];
  /** Sum over the shapes of the median step seconds (one step of each shape), and their ratio. */
  total: { ours: number; torch: number | null; ratio: number | null };
  torch: string;
  samples: { B: number; T: number; round: number; ours: number; torch: number | null }[];
}

/** python/finetune_twin.py beside this file's package (sources) or beside the bundled CLI (packages/cli/dist). */
export function finetuneTwinPath(): string | null {
  for (const c of [
    new URL('../python/finetune_twin.py', import.meta.url),
    new URL('../../bench/python/finetune_twin.py', import.meta.url),
  ]) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  return null;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Token rows of a B x T batch: row b has T - b % 4 tokens (ids from a fixed pattern in the vocabulary's middle third),
 * as the twin's mask.
 */
function batchTokens(B: number, T: number, classes: number, V: number): Tokens {
  const lo = Math.floor(V / 3);
  const n = Math.max(1, Math.floor(V / 3));
  const ids = Array.from({ length: B }, (_, b) => Array.from({ length: T - (b % 4) }, (_, t) => lo + ((b * 131 + t * 17) % n)));
  return { ids, labels: Int32Array.from({ length: B }, (_, b) => b % classes) };
}

export async function runFinetuneBench(o: FinetuneBenchOptions): Promise<FinetuneBenchReport> {
  const classes = 7;
  const [width, heads] = [o.width ?? 64, o.heads ?? 4];
  const maxT = Math.max(...o.shapes.map((s) => s.T));
  const be = OrtBackend.create({ threads: o.threads });
  const { config: ec, weights } = readBertWeights(o.modelFolder);
  const enc = TrainableTextEncoder.create(be, ec, { trainTop: o.trainTop, maxLen: maxT, weights });
  const model = FusionModel.create(be, {
    ...DEFAULT_FUSION,
    fusion: 'text',
    width,
    heads,
    linearSkip: false,
    textDim: ec.width,
    audioDim: 1,
    maxTextLen: maxT,
    maxAudioLen: 1,
    numClasses: classes,
    seed: 0,
  });
  const totalSteps = (o.warmup + o.rounds) * o.shapes.length + 1;
  const { trainStep } = finetuneStepper(be, enc, model, { lr: 1e-3, textLr: 1e-4, layerDecay: 1, weightDecay: 0.01, totalSteps });
  const batches = o.shapes.map((s) => batchTokens(s.B, s.T, classes, ec.vocab));
  let step = 0;
  const ours = async (i: number) => {
    const t0 = performance.now();
    const { loss } = await trainStep(
      batches[i]!,
      batches[i]!.ids.map((_, b) => b),
      step++,
    );
    const seconds = (performance.now() - t0) / 1000;
    if (!Number.isFinite(loss)) throw new Error(`bench train --finetune: our loss is ${loss} at step ${step}`);
    return seconds;
  };

  const probe = await probeTorch();
  const script = finetuneTwinPath();
  let twin: LineServer | null = null;
  let torchVersion = '';
  const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-finetune-'));
  try {
    if ('skip' in probe) torchVersion = `skipped (${probe.skip})`;
    else if (!script) torchVersion = 'skipped (packages/bench/python/finetune_twin.py not found)';
    else {
      const job = {
        config: join(o.modelFolder, 'config.json'),
        threads: o.threads,
        train_top: o.trainTop,
        width,
        heads,
        layers: DEFAULT_FUSION.layers,
        ffn_mult: DEFAULT_FUSION.ffnMult,
        classes,
        lr: 1e-3,
        text_lr: 1e-4,
      };
      writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
      twin = new LineServer(
        'finetune_twin.py',
        spawn(pythonBin(), [script, join(dir, 'job.json'), '--serve'], {
          stdio: 'pipe',
          // libgomp's threads otherwise spin between steps: on a loaded 2-core machine a B=4 step took 11-21 s instead of
          // well under one (H11, load 16); PASSIVE makes them sleep, as ort's pool does between runs
          env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
        }),
      );
      const ready = await twin.request();
      if (!ready.startsWith('ready ')) throw new Error(`finetune_twin.py: expected 'ready', got '${ready.slice(0, 200)}'`);
      const info = JSON.parse(ready.slice(6)) as { torch: string; threads: number };
      torchVersion = `torch ${info.torch}, ${info.threads} threads`;
    }
    const server = twin;
    const torch = async (i: number) => {
      const t0 = performance.now();
      const line = await server!.request(`run ${o.shapes[i]!.B} ${o.shapes[i]!.T}`);
      if (!line.startsWith('done ')) throw new Error(`finetune_twin.py: ${line}`);
      return (performance.now() - t0) / 1000;
    };
    for (let w = 0; w < o.warmup; w++)
      for (let i = 0; i < o.shapes.length; i++) {
        await ours(i);
        if (server) await torch(i);
      }
    const samples: FinetuneBenchReport['samples'] = [];
    for (let r = 0; r < o.rounds; r++) {
      for (let i = 0; i < o.shapes.length; i++) {
        let a: number;
        let b: number | null = null;
        if (r % 2 === 0 || !server) {
          a = await ours(i);
          if (server) b = await torch(i);
        } else {
          b = await torch(i);
          a = await ours(i);
        }
        samples.push({ ...o.shapes[i]!, round: r, ours: a, torch: b });
        o.onProgress?.(
          `round ${r + 1}/${o.rounds} B=${o.shapes[i]!.B} T=${o.shapes[i]!.T}: ours ${a.toFixed(3)} s, torch ${b?.toFixed(3) ?? '-'} s`,
        );
      }
    }
    const rows = o.shapes.map(({ B, T }): FinetuneBenchRow => {
      const s = samples.filter((x) => x.B === B && x.T === T);
      const t = s.every((x) => x.torch !== null) ? median(s.map((x) => x.torch!)) : null;
      return { B, T, ours: median(s.map((x) => x.ours)), torch: t, ratio: t === null ? null : median(s.map((x) => x.ours / x.torch!)) };
    });
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const tOurs = sum(rows.map((r) => r.ours));
    const tTorch = rows.every((r) => r.torch !== null) ? sum(rows.map((r) => r.torch!)) : null;
    return {
      date: new Date().toISOString(),
      modelFolder: o.modelFolder,
      trainTop: o.trainTop,
      threads: o.threads,
      rounds: o.rounds,
      rows,
      total: { ours: tOurs, torch: tTorch, ratio: tTorch === null ? null : tOurs / tTorch },
      torch: torchVersion,
      samples,
    };
  } finally {
    await twin?.close();
    await be.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
