// `bench train`: training steps per second of the default fusion model (cross-self, width 256, 4 heads,
// 1 self-attention layer; packages/model) on one batch of B=32 utterances with Tt=64 text tokens of 768
// (BERT-sized) and Ta=128 audio tokens of 768 (AST-sized), 7 classes, padded rows masked.
// One timed run = FusionModel.trainStep (forward, backward, AdamW) + readLoss (a mapped readback: the step is
// complete). Validation: from the same seed, the losses of the first two steps (the second one depends on the
// first update) on the first 4 utterances of the batch (same model and padding lengths) against the float64
// CPU backend, within 1e-4 relative (test/model/backends.test.ts's rule).
// PyTorch CPU: the identical model and step in python/fusion_twin.py (torch.nn.functional, torch.optim.AdamW,
// 2 threads, float32), a child process serving steps (`--serve`) from the TS model's initial weights
// (safetensors) and the same input sets (raw f32): it returns its first two losses on the same 4 utterances
// (validated like ours) and then runs one full-batch step (forward, backward, clip, AdamW, loss.item()) per
// request, so it takes part in the harness's rounds beside our backends and each sample is the request's wall
// time measured here like every other variant. Skipped with the reason without a python that imports torch
// ($EMOFUSE_PYTHON or python3).
// ort: the same model on onnxruntime-node's CPU execution provider (packages/model backend-ort.ts), 2 intra-op
// threads like the PyTorch twin, validated like the others.
// What the two losses can see: step 1 is the forward; step 2 adds one AdamW update, which is invariant to the
// gradient's scale (so the grad-norm clip only shows from step 3 on). At the full shape layer-norm eps 1e-3
// instead of 1e-5 fails (3e-4 relative) but GELU's erf form instead of tanh passes (3e-5); the twin's real
// agreement (7e-8 in one run; wgsl 6e-6) is the JSON's maxRel.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { lengthMask, randomF32, type Gpu, type Tolerance } from '@emofuse/kernels';
import {
  CpuBackend,
  DEFAULT_FUSION,
  FusionModel,
  OrtBackend,
  WgslBackend,
  writeSafetensors,
  type AdamwSettings,
  type Backend,
  type CheckpointTensor,
  type FusionConfig,
  type StepInputs,
} from '@emofuse/model';
import { OrtOpByOp } from './baselines/ort-op-by-op.ts';
import type { BenchCase, Runner, Skip, Variant } from './harness.ts';
import { loadOrt, ortLoadError } from './ort-peer.ts';
import { TORCH_DEVICE, probeTorch, pythonBin } from './torch-peer.ts';

/** The ort backend's intra-op threads: PyTorch's twin runs on 2 (python/fusion_twin.py), so the columns compare alike. */
export const ORT_THREADS = 2;

export interface TrainShape {
  B: number;
  Tt: number;
  Ta: number;
  Ct: number;
  Ca: number;
}

export const TRAIN_SHAPE: TrainShape = { B: 32, Tt: 64, Ta: 128, Ct: 768, Ca: 768 };
export const TRAIN_QUICK_SHAPE: TrainShape = { B: 4, Tt: 9, Ta: 13, Ct: 24, Ca: 20 };
export const K_CLS = 7;
export const ADAMW: AdamwSettings = { lr: 5e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };
/** Losses of the first two steps vs the float64 CPU backend (test/model/backends.test.ts: 1e-4 relative). */
export const TRAIN_TOL: Tolerance = { atol: 1e-6, rtol: 1e-4 };

export function batch(s: TrainShape, set: number): StepInputs {
  const seed = 5000 + 10 * set;
  // lengths from full down to about a third, so padding is exercised
  const lens = (T: number) => Array.from({ length: s.B }, (_, b) => Math.max(1, T - Math.floor((b * 2 * T) / (3 * s.B))));
  return {
    text: randomF32(s.B * s.Tt * s.Ct, seed + 1),
    textMask: lengthMask(lens(s.Tt), s.Tt),
    audio: randomF32(s.B * s.Ta * s.Ca, seed + 2),
    audioMask: lengthMask(lens(s.Ta), s.Ta),
    labels: Array.from({ length: s.B }, (_, b) => (b * 5 + set) % K_CLS),
  };
}

export function config(s: TrainShape, quick: boolean): FusionConfig {
  return {
    ...DEFAULT_FUSION,
    ...(quick ? { width: 16, heads: 2 } : { width: 256 }), // the README's train-step table is at width 256 (the default was 256 then)
    dropout: 0, // dropout masks are identical on every backend, but 0 keeps the comparison about the kernels
    textDim: s.Ct,
    audioDim: s.Ca,
    maxTextLen: s.Tt,
    maxAudioLen: s.Ta,
    numClasses: K_CLS,
  };
}

/** Validation uses the first VALIDATE_B utterances of input set 0: the float64 backend at B=32 takes minutes. */
const VALIDATE_B = 4;

function firstUtterances(s: TrainShape, inp: StepInputs, n: number): StepInputs {
  const b = Math.min(n, s.B);
  return {
    text: inp.text.slice(0, b * s.Tt * s.Ct),
    textMask: inp.textMask.slice(0, b * s.Tt),
    audio: inp.audio.slice(0, b * s.Ta * s.Ca),
    audioMask: inp.audioMask.slice(0, b * s.Ta),
    labels: Array.from(inp.labels).slice(0, b),
  };
}

/** The first two losses from a fresh model on input set 0. */
async function twoLosses(backend: Backend, cfg: FusionConfig, inp: StepInputs): Promise<number[]> {
  const model = FusionModel.create(backend, cfg);
  const w = new Float32Array(K_CLS).fill(1);
  const l1 = await model.readLoss(await model.trainStep(inp, w, ADAMW));
  const l2 = await model.readLoss(await model.trainStep(inp, w, ADAMW));
  return [l1, l2];
}

export function trainCases(gpu: Gpu, quick: boolean, sets: number): BenchCase[] {
  const s = quick ? TRAIN_QUICK_SHAPE : TRAIN_SHAPE;
  const cfg = config(s, quick);
  let data: StepInputs[] | null = null;
  const getData = () => (data ??= Array.from({ length: sets }, (_, i) => batch(s, i)));
  let refLosses: number[] | null = null;

  const variant = (
    name: string,
    device: string,
    make: () => Promise<Backend>,
    iterations?: number,
    note?: string,
    skip?: () => string | null,
  ): Variant => ({
    name,
    kind: 'ours',
    device,
    iterations,
    ...(iterations === 1 ? { warmup: 0 } : {}),
    note,
    async prepare(): Promise<Runner | Skip> {
      const why = skip?.();
      if (why) return { skip: why };
      const backend = await make();
      const model = FusionModel.create(backend, cfg);
      const w = new Float32Array(K_CLS).fill(1);
      return {
        async run(i) {
          await model.readLoss(await model.trainStep(getData()[i % sets]!, w, ADAMW));
        },
        async outputs() {
          // validation: a fresh model's first two steps on set 0, as the reference does
          return [await twoLosses(backend, cfg, firstUtterances(s, getData()[0]!, VALIDATE_B))];
        },
        dispose: backend.name === 'ort' ? () => backend.destroy() : undefined,
      };
    },
  });

  const variants: Variant[] = [
    variant('wgsl (ours)', `WebGPU ${gpu.adapter.device}`, () => WgslBackend.create(gpu)),
    variant(
      'ort (ours)',
      `ORT CPU EP, ${ORT_THREADS} threads`,
      async () => OrtBackend.create({ threads: ORT_THREADS }),
      undefined,
      'the model on onnxruntime-node CPU: the step recorded as one ONNX graph, one session.run',
      () => (loadOrt() ? null : ortLoadError()),
    ),
    variant(
      'ort op by op (ours)',
      `ORT CPU EP, ${ORT_THREADS} threads`,
      async () => OrtOpByOp.create({ threads: ORT_THREADS }),
      undefined,
      'baseline: the same ops run one by one, each its cached ONNX graph, in cache-sized chunks (baselines/ort-op-by-op.ts)',
      () => (loadOrt() ? null : ortLoadError()),
    ),
    variant('cpu f32 (ours)', 'CPU JS, 1 thread', async () => new CpuBackend('f32'), 1, 'the model on the CPU references, float32 storage'),
    torchTwinVariant(s, cfg, getData),
  ];
  return [
    {
      suite: 'train',
      op: 'train step',
      pass: 'fwd+bwd+adamw',
      shape: { B: s.B, Tt: s.Tt, Ta: s.Ta, Ct: s.Ct, Ca: s.Ca, C: cfg.width, H: cfg.heads },
      flops: 0,
      flopsFormula:
        `${cfg.fusion}, ${cfg.layers} self-attention layer, dropout 0; rate = utterances per second; validated on ` +
        `the first ${Math.min(VALIDATE_B, s.B)} utterances`,
      itemsPerRun: s.B,
      itemUnit: 'utt/s',
      tol: TRAIN_TOL,
      reference: () => [refLosses!],
      prepareReference: async () => {
        refLosses ??= await twoLosses(new CpuBackend('f64'), cfg, firstUtterances(s, getData()[0]!, VALIDATE_B));
      },
      variants,
      baseline: 'wgsl (ours)',
      peerRatios: true, // the goal is stated as ours / PyTorch's time: print it paired per round
    },
  ];
}

/** python/fusion_twin.py beside this file's package (sources) or beside the bundled CLI (packages/cli/dist). */
export function fusionTwinPath(): string | null {
  const candidates = [new URL('../python/fusion_twin.py', import.meta.url), new URL('../../bench/python/fusion_twin.py', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  return null;
}

/** How long to wait for the twin to load and validate, and for any one step. */
const TWIN_TIMEOUT_MS = 600_000;

/**
 * A child process that answers each request line with one line on stdout (python/fusion_twin.py --serve).
 * `request` rejects with the child's last stderr line when it exits, and after `timeoutMs`.
 */
export class LineServer {
  private readonly lines: AsyncIterator<string>;
  private readonly closed: Promise<unknown>;
  private stderr = '';
  constructor(
    readonly name: string,
    private readonly proc: ChildProcess,
    private readonly timeoutMs = TWIN_TIMEOUT_MS,
  ) {
    proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-8000)));
    this.closed = once(proc, 'close').catch(() => {});
    const spawnError = once(proc, 'error').then(([e]) => e as Error);
    const it = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
    this.lines = { next: () => Promise.race([it.next(), spawnError.then((e) => Promise.reject(e))]) };
  }

  /** The next line (after writing `req`, when given). */
  async request(req?: string): Promise<string> {
    if (req !== undefined) this.proc.stdin!.write(`${req}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>(
      (_, rej) =>
        (timer = setTimeout(
          () => rej(new Error(`${this.name}: no answer within ${this.timeoutMs / 1000} s${req ? ` to '${req}'` : ''}`)),
          this.timeoutMs,
        )),
    );
    try {
      const r = await Promise.race([this.lines.next(), timeout]);
      if (!r.done) return r.value;
    } finally {
      clearTimeout(timer);
    }
    await this.closed;
    const why = this.stderr.trim().split('\n').pop() || `exit code ${this.proc.exitCode}`;
    throw new Error(`${this.name} exited: ${why}`);
  }

  /** Closes stdin (the server's loop ends) and waits for the exit; kills it after 10 s. */
  async close(): Promise<void> {
    this.proc.stdin!.end();
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 10_000);
    await this.closed;
    clearTimeout(t);
  }
}

/**
 * The same model and training step in PyTorch on the CPU (python/fusion_twin.py --serve, a child process): it
 * gets the TS model's initial weights (FusionModel.create on the f32 CPU backend, read back, written as
 * safetensors) and the same input sets as raw f32 files, reports the first two losses on the validation
 * utterances (checked against the float64 backend like the other variants), then runs one full-batch step on
 * input set k for each `run k`.
 * Does the idle twin slow the variant that runs after it (OpenMP threads spinning after a step: torch 2.13's
 * CPU build uses libgomp, OMP_WAIT_POLICY unset)? Measured at the full shape, 2026-11-30 18:42 UTC, quiet
 * machine: its 4 threads used 0-10 ms CPU (10 ms ticks of each thread's /proc stat) in the 50 ms after a step's
 * answer and 0 in the 950 ms after that; ort steps right after a torch step had a median of 726 ms, 300 ms after
 * one 737 ms, after an ort step 720 ms (6 each). So no settle pause and no OMP_* setting: neither would change
 * what is measured.
 */
function torchTwinVariant(s: TrainShape, cfg: FusionConfig, getData: () => StepInputs[]): Variant {
  return {
    name: TORCH_DEVICE === 'cuda' ? 'PyTorch CUDA' : 'PyTorch CPU',
    kind: 'peer',
    device: TORCH_DEVICE === 'cuda' ? 'PyTorch CUDA' : 'PyTorch CPU',
    async prepare({ sets }): Promise<Runner | Skip> {
      const script = fusionTwinPath();
      if (!script) return { skip: 'packages/bench/python/fusion_twin.py not found' };
      const t = await probeTorch();
      if ('skip' in t) return t;
      const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-twin-'));
      let server: LineServer | null = null;
      try {
        const state = await FusionModel.create(new CpuBackend('f32'), cfg).readState();
        const tensors = new Map<string, CheckpointTensor>([...state].map(([name, p]) => [name, { shape: p.shape, data: p.value }]));
        writeSafetensors(join(dir, 'init.safetensors'), tensors, {});
        const data = getData();
        data.slice(0, sets).forEach((d, i) => {
          writeFileSync(join(dir, `text-${i}.f32`), d.text);
          writeFileSync(join(dir, `text_mask-${i}.f32`), d.textMask);
          writeFileSync(join(dir, `audio-${i}.f32`), d.audio);
          writeFileSync(join(dir, `audio_mask-${i}.f32`), d.audioMask);
          writeFileSync(join(dir, `labels-${i}.f32`), Float32Array.from(d.labels));
        });
        writeFileSync(join(dir, 'class_weights.f32'), new Float32Array(K_CLS).fill(1));
        const job = { config: cfg, adamw: ADAMW, shape: s, sets: Math.min(sets, data.length), validate_b: VALIDATE_B };
        writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
        server = new LineServer('fusion_twin.py', spawn(pythonBin(), [script, dir, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] }));
        const ready = await server.request();
        if (!ready.startsWith('ready ')) throw new Error(`fusion_twin.py: expected 'ready', got '${ready.slice(0, 200)}'`);
        const info = JSON.parse(ready.slice('ready '.length)) as { torch: string; threads: number; device: string };
        const b = readFileSync(join(dir, 'out-0.f32'));
        const losses = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        const twin = server;
        return {
          async run(set) {
            const line = await twin.request(`run ${set}`);
            if (!line.startsWith('done ')) throw new Error(`fusion_twin.py: ${line}`);
          },
          // the first two losses of a fresh model on the validation utterances, computed when it started
          outputs: () => [losses],
          dispose: () => twin.close(),
          version: `torch ${info.torch}`,
          note:
            `the same model in torch.nn.functional + torch.optim.AdamW; ` +
            `${TORCH_DEVICE === 'cuda' ? `on ${info.device}` : `${info.threads} threads`}`,
        };
      } catch (err) {
        await server?.close();
        throw err;
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
