// `emofuse gpu`: which WebGPU adapter emofuse would use, its limits, and (--check) whether every kernel
// compiles and computes what its CPU reference computes: the kernels package's op table, then the bench's
// baselines (fused cross-attention v1-v3, the unfused path), which `emofuse bench attention` times.

import type { Command } from 'commander';
import { BASELINES } from '@emofuse/bench';
import { Gpu, REQUIRED_LIMITS, SELF_CHECKS, allKernels, compileAllKernels, runSelfChecks } from '@emofuse/kernels';
import { table } from '../output.ts';

const SHOWN_LIMITS = [
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupStorageSize',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
] as const;

interface GpuOptions {
  adapter?: string;
  check?: boolean;
  json?: boolean;
}

export function registerGpu(program: Command): void {
  program
    .command('gpu')
    .description('show the WebGPU adapter emofuse would use; --check compiles and verifies every kernel')
    .option('--adapter <spec>', "adapter to use: auto, vulkan, opengles, ... optionally ':<name>' (default: $EMOFUSE_ADAPTER or auto)")
    .option('--check', 'compile every kernel and compare each op with its CPU reference')
    .option('--json', 'print JSON instead of tables')
    .addHelpText(
      'after',
      `
Adapter choice (also EMOFUSE_ADAPTER):
  auto              a hardware GPU if there is one, else Mesa llvmpipe through OpenGL ES,
                    else Mesa lavapipe through Vulkan (see DEVELOPERS.md for why)
  vulkan:lavapipe   a backend, and a substring of the adapter's vendor/device/description
  The 'null' backend computes nothing and is refused.

Examples:
  emofuse gpu
  emofuse gpu --check
  EMOFUSE_ADAPTER=vulkan emofuse gpu --check --json`,
    )
    .action(async (opts: GpuOptions) => {
      const gpu = await Gpu.create(opts.adapter ? { adapter: opts.adapter } : {});
      try {
        const a = gpu.adapter;
        const adapterLimits = gpu.limits as unknown as Record<string, number>;
        const limits = Object.fromEntries(SHOWN_LIMITS.map((k) => [k, adapterLimits[k]]));
        const report: Record<string, unknown> = { adapter: a, limits };
        if (!opts.json) {
          console.log(
            table([
              ['adapter', a.device || '(unnamed)'],
              ['backend', `${a.backend} (${a.featureLevel})`],
              ['vendor', a.vendor || '-'],
              ['architecture', a.architecture || '-'],
              ['description', a.description || '-'],
              ['software', a.isSoftware ? 'yes: fine for correctness; speed is measured as ratios to peers on it' : 'no'],
            ]),
          );
          console.log('\ndevice limits (requested by emofuse / granted):');
          console.log(
            table(
              SHOWN_LIMITS.map((k) => [k, (REQUIRED_LIMITS as Record<string, number>)[k] ?? 'max', adapterLimits[k]!]),
              ['limit', 'need', 'granted'],
            ),
          );
        }
        if (opts.check) {
          if (!opts.json) console.log('\ncompiling kernels:');
          const kernels = [...allKernels, ...BASELINES.flatMap((b) => b.kernels)];
          const compiled = await compileAllKernels(
            gpu,
            (r) => {
              if (!opts.json)
                console.log(
                  `  ${r.ok ? 'ok    ' : 'FAILED'} ${r.kernel.padEnd(34)} ${r.ms.toFixed(0).padStart(5)} ` +
                    `ms${r.error ? '\n' + r.error : ''}`,
                );
            },
            kernels,
          );
          if (!opts.json) console.log('\nchecking each op against its CPU reference:');
          const checks = await runSelfChecks(
            gpu,
            (r) => {
              if (!opts.json)
                console.log(
                  `  ${r.ok ? 'ok    ' : 'FAILED'} ${r.name.padEnd(56)} max abs ${r.maxAbs.toExponential(2)}  max rel ` +
                    `${r.maxRel.toExponential(2)}  ${r.ms.toFixed(0).padStart(5)} ms${r.error ? '\n         ' + r.error : ''}`,
                );
            },
            undefined,
            [...SELF_CHECKS, ...BASELINES.flatMap((b) => b.checks)],
          );
          report.compiled = compiled;
          report.checks = checks;
          const failed = compiled.filter((r) => !r.ok).length + checks.filter((r) => !r.ok).length;
          if (!opts.json) {
            console.log(
              failed ? `\n${failed} FAILED` : `\nall ${compiled.length} kernels compiled; all ${checks.length} ops match their references`,
            );
          }
          if (failed) process.exitCode = 1;
        }
        if (opts.json) console.log(JSON.stringify(report, null, 2));
      } finally {
        await gpu.destroy();
      }
    });
}
