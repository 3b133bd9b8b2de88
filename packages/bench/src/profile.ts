// `bench train --profile`: where a training step's time goes, per op class and backend (profile-backend.ts),
// and what the WebGPU runtime's dispatch path costs.
//   per backend (wgsl, ort, cpu f32): the step's wall time unsynchronised (median), then one step with every
//     op synchronised and timed (ms per class; on wgsl the host part of each call is reported as dispatch
//     and encoding), and on wgsl, where the adapter has timestamp-query (lavapipe: --adapter vulkan), one step
//     with GPU timestamps per kernel, mapped to the same classes;
//   the dispatch path: wgsl step time with a command buffer and three error scopes per dispatch against one
//     encoder and one set of scopes per flush (the default), alternated in one run; and the same for a
//     batch of small dispatches alone (per-dispatch cost).

import type { Gpu, KernelDef } from '@emofuse/kernels';
import { CpuBackend, FusionModel, WgslBackend, type Backend } from '@emofuse/model';
import { OrtOpByOp } from './baselines/ort-op-by-op.ts';
import { OP_CLASSES, kernelClass, profilingBackend, type OpClass, type ProfileTimes } from './profile-backend.ts';
import { ADAMW, K_CLS, ORT_THREADS, TRAIN_QUICK_SHAPE, TRAIN_SHAPE, batch, config } from './train.ts';
import { loadOrt, ortLoadError } from './ort-peer.ts';

export interface BackendProfile {
  backend: string;
  device: string;
  /** Median wall time of an unsynchronised step (trainStep + readLoss), ms. */
  stepMs: number | null;
  /** ms per class in one synchronised step (call + wait; wgsl: wait only, the call part is `encodeMs`). */
  classes: Partial<Record<OpClass, number>>;
  /** wgsl: host time inside the op calls (validation, bind groups, encoding), ms per step. */
  encodeMs: number | null;
  /** wgsl with timestamp-query: GPU ms per class in one unsynchronised step. */
  gpuClasses: Partial<Record<OpClass, number>> | null;
  calls: number;
  skip?: string;
}

export interface DispatchOverhead {
  /** Median step (ms): a command buffer and 3 error scopes per dispatch. */
  perDispatchStepMs: number;
  /** Median step (ms): one encoder and one set of scopes per flush (the default). */
  batchedStepMs: number;
  dispatchesPerStep: number;
  /** Small dispatches (64 floats each), per dispatch (ms), each path. */
  smallPerDispatchMs: number;
  smallBatchedMs: number;
}

export interface TrainProfile {
  date: string;
  shape: Record<string, number>;
  adapter: string;
  backends: BackendProfile[];
  dispatch: DispatchOverhead | null;
  loadavg: number[];
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

async function stepTimes(model: FusionModel, inputs: ReturnType<typeof batch>, n: number): Promise<number[]> {
  const w = new Float32Array(K_CLS).fill(1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await model.readLoss(await model.trainStep(inputs, w, ADAMW));
    out.push(performance.now() - t0);
  }
  return out;
}

function classMs(times: ProfileTimes, wgsl: boolean): Partial<Record<OpClass, number>> {
  const out: Partial<Record<OpClass, number>> = {};
  for (const c of OP_CLASSES) {
    const t = times[c];
    if (t) out[c] = wgsl ? t.waitMs : t.callMs + t.waitMs;
  }
  return out;
}

export interface ProfileOptions {
  quick?: boolean;
  /** Unsynchronised steps timed per backend (median). */
  steps?: number;
  /** Backends to profile (default wgsl, ort, cpu). */
  backends?: string[];
  onProgress?: (msg: string) => void;
}

export async function profileTrain(gpu: Gpu, o: ProfileOptions = {}): Promise<TrainProfile> {
  const s = o.quick ? TRAIN_QUICK_SHAPE : TRAIN_SHAPE;
  const cfg = config(s, !!o.quick);
  const inputs = batch(s, 0);
  const steps = o.steps ?? (o.quick ? 2 : 3);
  const want = o.backends ?? ['wgsl', 'ort', 'cpu'];
  for (const b of want)
    if (!['wgsl', 'ort', 'cpu'].includes(b)) throw new Error(`unknown backend '${b}' to profile; choose from wgsl, ort, cpu`);
  const say = o.onProgress ?? (() => {});
  const backends: BackendProfile[] = [];
  let dispatch: DispatchOverhead | null = null;

  for (const name of want) {
    const device =
      name === 'wgsl' ? `WebGPU ${gpu.adapter.device}` : name === 'ort' ? `ORT CPU EP, ${ORT_THREADS} threads` : 'CPU JS f32, 1 thread';
    if (name === 'ort' && !loadOrt()) {
      backends.push({ backend: name, device, stepMs: null, classes: {}, encodeMs: null, gpuClasses: null, calls: 0, skip: ortLoadError() });
      continue;
    }
    say(`${name}: creating the model`);
    const inner: Backend =
      name === 'wgsl' ? await WgslBackend.create(gpu) : name === 'ort' ? OrtOpByOp.create({ threads: ORT_THREADS }) : new CpuBackend('f32');
    const sync = name === 'wgsl' ? () => gpu.finish() : () => inner.flush();
    const prof = profilingBackend(inner, sync);
    prof.enabled = false;
    const model = FusionModel.create(prof.backend, cfg);
    try {
      // cpu f32 takes tens of seconds a step at the full shape: one unsynchronised step, no warm-up.
      const slow = name === 'cpu' && !o.quick;
      if (!slow) {
        say(`${name}: warm-up step`);
        await stepTimes(model, inputs, 1);
      }
      say(`${name}: ${slow ? 1 : steps} unsynchronised step(s)`);
      const stepMs = median(await stepTimes(model, inputs, slow ? 1 : steps));
      say(`${name}: one synchronised, profiled step`);
      prof.reset();
      prof.enabled = true;
      await stepTimes(model, inputs, 1);
      prof.enabled = false;
      const times = prof.times;
      const calls = Object.values(times).reduce((a, t) => a + t!.calls, 0);
      const wgsl = name === 'wgsl';
      const encodeMs = wgsl ? Object.values(times).reduce((a, t) => a + t!.callMs, 0) : null;
      let gpuClasses: Partial<Record<OpClass, number>> | null = null;
      if (wgsl && gpu.hasTimestamps) {
        say('wgsl: one step with GPU timestamps');
        await gpu.startProfile();
        await stepTimes(model, inputs, 1);
        const k = await gpu.takeProfile();
        gpuClasses = {};
        for (const [kernel, t] of Object.entries(k)) {
          const c = kernelClass(kernel);
          gpuClasses[c] = (gpuClasses[c] ?? 0) + t.gpuMs;
        }
      }
      backends.push({ backend: name, device, stepMs, classes: classMs(times, wgsl), encodeMs, gpuClasses, calls });
      if (wgsl) {
        say('wgsl: dispatch path, per-dispatch scopes vs one encoder per flush (alternated)');
        dispatch = await measureDispatch(gpu, model, inputs, steps);
      }
    } finally {
      if (name === 'wgsl') await gpu.setPerDispatchScopes(false);
      if (name === 'ort') await inner.destroy();
    }
  }
  return {
    date: new Date().toISOString(),
    shape: { B: s.B, Tt: s.Tt, Ta: s.Ta, Ct: s.Ct, Ca: s.Ca, C: cfg.width, H: cfg.heads },
    adapter: `${gpu.adapter.device} (${gpu.adapter.backend})`,
    backends,
    dispatch,
    loadavg: (await import('node:os')).loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

const SMALL: KernelDef = {
  name: 'profile.small',
  source: `struct Params { n: u32 }
@group(0) @binding(0) var<storage, read_write> y: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) { if (g.x < params.n) { y[g.x] = y[g.x] + 1.0; } }`,
  entryPoint: 'main',
  bindings: [{ name: 'y', access: 'read_write' }],
  params: [['n', 'u32']],
};

async function measureDispatch(gpu: Gpu, model: FusionModel, inputs: ReturnType<typeof batch>, steps: number): Promise<DispatchOverhead> {
  const per: number[] = [];
  const bat: number[] = [];
  for (let i = 0; i < steps; i++) {
    await gpu.setPerDispatchScopes(true);
    per.push(...(await stepTimes(model, inputs, 1)));
    await gpu.setPerDispatchScopes(false);
    bat.push(...(await stepTimes(model, inputs, 1)));
  }
  // dispatches per step: count them through the timestamps path's counter-free way: wrap dispatch once.
  let n = 0;
  const orig = gpu.dispatch.bind(gpu);
  gpu.dispatch = async (def, args) => {
    n++;
    return orig(def, args);
  };
  try {
    await stepTimes(model, inputs, 1);
  } finally {
    gpu.dispatch = orig;
  }
  const y = gpu.zeros([64]);
  const small = async (perDispatch: boolean) => {
    await gpu.setPerDispatchScopes(perDispatch);
    const N = 200;
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await gpu.dispatch(SMALL, { tensors: [y], params: { n: 64 }, grid: [1] });
    await gpu.finish();
    return (performance.now() - t0) / N;
  };
  const sp: number[] = [];
  const sb: number[] = [];
  for (let i = 0; i < 3; i++) {
    sp.push(await small(true));
    sb.push(await small(false));
  }
  await gpu.setPerDispatchScopes(false);
  y.destroy();
  return {
    perDispatchStepMs: median(per),
    batchedStepMs: median(bat),
    dispatchesPerStep: n,
    smallPerDispatchMs: median(sp),
    smallBatchedMs: median(sb),
  };
}

const f = (x: number | undefined | null, digits = 0) =>
  x === undefined || x === null ? '-' : x >= 100 ? x.toFixed(0) : x.toFixed(Math.max(digits, x >= 10 ? 0 : 1));

/** The README table: ms per step per op class, one column per backend (and per source of time). */
export function profileMarkdown(p: TrainProfile): string {
  const cols: { head: string; get(c: OpClass | 'encode' | 'sum' | 'step'): number | null | undefined }[] = [];
  for (const b of p.backends) {
    if (b.skip) continue;
    const wgsl = b.backend === 'wgsl';
    cols.push({
      head: `${b.backend} (synchronised per op)`,
      get: (c) =>
        c === 'encode'
          ? b.encodeMs
          : c === 'sum'
            ? Object.values(b.classes).reduce((a, x) => a + x!, 0) + (b.encodeMs ?? 0)
            : c === 'step'
              ? b.stepMs
              : b.classes[c],
    });
    if (wgsl && b.gpuClasses) {
      const g = b.gpuClasses;
      const gsum = Object.values(g).reduce((a, x) => a + x!, 0);
      cols.push({
        head: `${b.backend} (GPU timestamps)`,
        // Dispatch and encoding overhead here: the unsynchronised step's wall time not covered by GPU work.
        get: (c) =>
          c === 'encode'
            ? b.stepMs !== null
              ? Math.max(0, b.stepMs - gsum)
              : null
            : c === 'sum'
              ? gsum + Math.max(0, (b.stepMs ?? gsum) - gsum)
              : c === 'step'
                ? b.stepMs
                : c === 'uploads/readbacks'
                  ? null
                  : (g[c] ?? 0),
      });
    }
  }
  const rows: (OpClass | 'encode' | 'sum' | 'step')[] = [...OP_CLASSES, 'encode', 'sum', 'step'];
  const label = (r: (typeof rows)[number]) =>
    r === 'encode' ? 'dispatch and encoding (host)' : r === 'sum' ? '**sum**' : r === 'step' ? 'unsynchronised step (median)' : r;
  const head = `| ms per training step | ${cols.map((c) => c.head).join(' | ')} |\n|---|${cols.map(() => '---:').join('|')}|\n`;
  const body = rows.map((r) => `| ${label(r)} | ${cols.map((c) => f(c.get(r))).join(' | ')} |`).join('\n');
  const skipped = p.backends.filter((b) => b.skip).map((b) => `${b.backend} skipped: ${b.skip}`);
  const d = p.dispatch;
  const disp = d
    ? `\n\nDispatch path (wgsl, alternated in one run): ${d.dispatchesPerStep} dispatches a step; a command buffer and 3 error ` +
      `scopes per dispatch ${f(d.perDispatchStepMs)} ms a step vs one encoder and one set of scopes per flush ` +
      `${f(d.batchedStepMs)} ms (${f(d.perDispatchStepMs - d.batchedStepMs)} ms, ` +
      `${((100 * (d.perDispatchStepMs - d.batchedStepMs)) / d.perDispatchStepMs).toFixed(0)}%); small dispatches alone: ` +
      `${d.smallPerDispatchMs.toFixed(3)} vs ${d.smallBatchedMs.toFixed(3)} ms each.`
    : '';
  return `${head}${body}\n\n${Object.entries(p.shape)
    .map(([k, v]) => `${k}=${v}`)
    .join(
      ' ',
    )}; adapter ${p.adapter}; load average ${p.loadavg.join(' ')}; ${p.date}${skipped.length ? `; ${skipped.join('; ')}` : ''}${disp}\n`;
}
