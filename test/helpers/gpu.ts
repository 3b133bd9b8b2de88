// One device per test file (each file runs in its own process). If no adapter exists the GPU tests are
// skipped with the reason in their title; with EMOFUSE_REQUIRE_GPU=1 (CI) that is a failure instead.
// The null backend is never used: a test that computes nothing proves nothing.

import { Gpu } from '@emofuse/kernels';

export interface GpuFixture {
  gpu: Gpu | null;
  /** '' when a GPU is available, else why the tests are skipped. */
  skipReason: string;
  /** e.g. 'llvmpipe (opengles, software)'. */
  label: string;
}

export async function openGpu(): Promise<GpuFixture> {
  try {
    const gpu = await Gpu.create();
    const a = gpu.adapter;
    return { gpu, skipReason: '', label: `${a.device || a.description} (${a.backend}${a.isSoftware ? ', software' : ''})` };
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0]!;
    if (process.env.EMOFUSE_REQUIRE_GPU === '1') throw new Error(`EMOFUSE_REQUIRE_GPU=1 but no adapter: ${(err as Error).message}`);
    return { gpu: null, skipReason: reason, label: `skipped: ${reason}` };
  }
}
