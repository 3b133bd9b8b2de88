// Runs once before the suite: names the adapter the GPU tests will use (they each open their own device in
// their own process, with the same choice), or says why they will be skipped.

import { Gpu } from '@emofuse/kernels';

export default async function setup(): Promise<void> {
  try {
    const gpu = await Gpu.create();
    const a = gpu.adapter;
    console.log(
      `\nemofuse GPU tests run on: ${a.device || a.description} | backend ${a.backend} (${a.featureLevel}) | ` +
        `${a.description}${a.isSoftware ? ' | software adapter' : ''}\n`,
    );
    await gpu.destroy();
  } catch (err) {
    const msg = (err as Error).message;
    if (process.env.EMOFUSE_REQUIRE_GPU === '1') throw new Error(`EMOFUSE_REQUIRE_GPU=1 but no WebGPU adapter:\n${msg}`);
    console.log(`\nemofuse GPU tests will be SKIPPED: no WebGPU adapter.\n${msg}\n`);
  }
}
