// One of our kernels as a benchmark variant: buffers made in `setup` (per input set, uploaded once), each
// run dispatches and waits for the queue (gpu.finish() = onSubmittedWorkDone), outputs read back after.

import type { Gpu, Tensor } from '@emofuse/kernels';
import type { Runner, Variant } from './harness.ts';

export interface GpuRun {
  /** Dispatch on input set i (do not wait: the variant calls gpu.finish()). */
  dispatch(i: number): Promise<void>;
  /** Output tensors in the case's reference order. */
  outputs: Tensor[];
  /** Every tensor to destroy afterwards (inputs and outputs). */
  owned: Tensor[];
}

export function gpuVariant(gpu: Gpu, name: string, setup: () => GpuRun, note?: string): Variant {
  return {
    name,
    kind: 'ours',
    device: `WebGPU ${gpu.adapter.device}`,
    note,
    async prepare(): Promise<Runner> {
      const r = setup();
      for (const t of r.outputs) gpu.poison(t);
      return {
        async run(i) {
          await r.dispatch(i);
          await gpu.finish();
        },
        outputs: async () => Promise.all(r.outputs.map((t) => gpu.read(t))),
        dispose() {
          for (const t of r.owned) t.destroy();
        },
      };
    },
  };
}
