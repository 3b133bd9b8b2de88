// Where a training step's time goes, per op class, on any backend: a Backend decorator that times every call.
// Each op is timed synchronised: `sync()` before it (so earlier work is not billed to it), the call, then
// `sync()` again. `call` is the host time until the op's promise resolves (on wgsl: validation, bind groups,
// encoding; on cpu and ort the op itself, which runs on the host), `wait` the time until its work is complete.
// Synchronising after every op removes the overlap of host and device work, so the classes add up to more
// than an unsynchronised step; `bench train --profile` reports both.
// GPU timestamps (Gpu.startProfile, where the adapter has timestamp-query) are the other source: kernel names
// map to the same classes through KERNEL_CLASS.

import type { Backend } from '@emofuse/model';

export const OP_CLASSES = [
  'projections/matmuls',
  'attention fwd',
  'attention bwd',
  'layer norm',
  'GELU',
  'embeddings (gather, scatter-add)',
  'AdamW (+ grad-norm clip)',
  'glue (add, dropout, pool, concat, gate, loss)',
  'uploads/readbacks',
] as const;
export type OpClass = (typeof OP_CLASSES)[number];

const GLUE: OpClass = 'glue (add, dropout, pool, concat, gate, loss)';

/**
 * The class of each Backend method that does work, where it is not glue: every other op of the Backend is glue (as
 * kernelClass's default), so a new glue op needs no line here. NOT_TIMED are the members that do no work.
 */
export const METHOD_CLASS: Record<string, OpClass> = {
  matmul: 'projections/matmuls',
  matmulBackward: 'projections/matmuls',
  attention: 'attention fwd',
  attentionBackward: 'attention bwd',
  layerNorm: 'layer norm',
  layerNormBackward: 'layer norm',
  geluBackward: 'GELU',
  embedding: 'embeddings (gather, scatter-add)',
  embeddingBackward: 'embeddings (gather, scatter-add)',
  adamw: 'AdamW (+ grad-norm clip)',
  gradNorm: 'AdamW (+ grad-norm clip)',
  zeros: 'uploads/readbacks',
  upload: 'uploads/readbacks',
  write: 'uploads/readbacks',
  read: 'uploads/readbacks',
};
const NOT_TIMED = new Set<string | symbol>(['view', 'flush', 'destroy', 'scratch', 'constructor']);

/** The class a call of Backend member `prop` is billed to (undefined: not timed). */
export function methodClass(prop: string | symbol): OpClass | undefined {
  return typeof prop !== 'string' || NOT_TIMED.has(prop) ? undefined : (METHOD_CLASS[prop] ?? GLUE);
}

/** The class of a WGSL kernel by its KernelDef name (GPU timestamps). GELU's forward is matmul's epilogue. */
export function kernelClass(kernel: string): OpClass {
  if (kernel.startsWith('matmul.')) return 'projections/matmuls';
  if (kernel.startsWith('cross-attention.fwd')) return 'attention fwd';
  if (kernel.startsWith('cross-attention.bwd')) return 'attention bwd';
  if (kernel.startsWith('layer-norm.')) return 'layer norm';
  if (kernel.startsWith('gelu.')) return 'GELU';
  if (kernel.startsWith('embedding.')) return 'embeddings (gather, scatter-add)';
  if (kernel.startsWith('adamw.') || kernel.startsWith('grad-norm.')) return 'AdamW (+ grad-norm clip)';
  return GLUE;
}

export interface ClassTime {
  calls: number;
  /** Host time until the op's promise resolved (ms). */
  callMs: number;
  /** Time from then until its work was complete (ms). */
  waitMs: number;
}

export type ProfileTimes = Partial<Record<OpClass, ClassTime>>;

/**
 * Wraps `inner` so that every op is timed as described above. `sync` waits for all queued work (wgsl:
 * Gpu.finish; cpu and ort: flush). Read `times`, then `reset()` between steps; `enabled = false` passes through.
 */
export function profilingBackend(
  inner: Backend,
  sync: () => Promise<void>,
): { backend: Backend; readonly times: ProfileTimes; enabled: boolean; reset(): void } {
  const state = { times: {} as ProfileTimes, enabled: true };
  const handler: ProxyHandler<Backend> = {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      const cls = methodClass(prop);
      if (!cls || typeof value !== 'function' || !state.enabled)
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      return (...args: unknown[]) => {
        const run = async () => {
          await sync();
          const t0 = performance.now();
          const out = await (value as (...a: unknown[]) => unknown).apply(target, args);
          const t1 = performance.now();
          await sync();
          const t2 = performance.now();
          state.times[cls] ??= { calls: 0, callMs: 0, waitMs: 0 };
          const c = state.times[cls];
          c.calls++;
          c.callMs += t1 - t0;
          c.waitMs += t2 - t1;
          return out;
        };
        // zeros, upload, view and write are synchronous in the Backend interface: time them without awaiting.
        if (prop === 'zeros' || prop === 'upload' || prop === 'write') {
          const t0 = performance.now();
          const out = (value as (...a: unknown[]) => unknown).apply(target, args);
          state.times[cls] ??= { calls: 0, callMs: 0, waitMs: 0 };
          const c = state.times[cls];
          c.calls++;
          c.callMs += performance.now() - t0;
          return out;
        }
        return run();
      };
    },
  };
  return {
    backend: new Proxy(inner, handler),
    get times() {
      return state.times;
    },
    get enabled() {
      return state.enabled;
    },
    set enabled(on: boolean) {
      state.enabled = on;
    },
    reset() {
      state.times = {};
    },
  };
}
