// Runs in headless Chromium: the same acquisition function and self-checks as `emofuse gpu --check`,
// reached through navigator.gpu. Posts its report back to the test's loopback server.
import { Gpu, compileAllKernels, runSelfChecks } from '@emofuse/kernels';

async function main(): Promise<unknown> {
  const gpu = await Gpu.create();
  try {
    const compiled = await compileAllKernels(gpu);
    const checks = await runSelfChecks(gpu);
    return { adapter: gpu.adapter, compiled, checks };
  } finally {
    await gpu.destroy();
  }
}

main()
  .catch((err: Error) => ({ error: `${err.name}: ${err.message}` }))
  .then((report) => fetch('/result', { method: 'POST', body: JSON.stringify(report) }));
