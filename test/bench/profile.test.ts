// `bench train --profile`'s parts: the profiling Backend decorator bills each op to its class and passes
// results through unchanged; the profile of a quick step covers the classes a step uses, on wgsl reports the
// host part as dispatch and encoding and measures both dispatch paths; unknown backends are refused.

import { afterAll, describe, expect, it } from 'vitest';
import { CpuBackend } from '@emofuse/model';
import { METHOD_CLASS, kernelClass, methodClass, profileMarkdown, profileTrain, profilingBackend } from '@emofuse/bench';
import { allKernels } from '@emofuse/kernels';
import { openGpu } from '../helpers/gpu.ts';

const fx = await openGpu();
afterAll(() => fx.gpu?.destroy());

describe('profiling Backend decorator', () => {
  it('times each op into its class, returns what the backend returns, and passes through when disabled', async () => {
    const cpu = new CpuBackend('f32');
    const p = profilingBackend(cpu, () => cpu.flush());
    const a = p.backend.upload([1, 2, 3], [3]);
    const b = p.backend.upload([10, 20, 30], [3]);
    const out = p.backend.zeros([3]);
    await p.backend.add(a, b, out, 2);
    expect(Array.from(await p.backend.read(out))).toEqual([21, 42, 63]);
    expect(p.times['glue (add, dropout, pool, concat, gate, loss)']!.calls).toBe(1);
    expect(p.times['uploads/readbacks']!.calls).toBe(4); // 2 uploads, zeros, read
    p.reset();
    p.enabled = false;
    await p.backend.add(a, b, out);
    expect(p.times).toEqual({});
  });

  it('every kernel of the op table has a class (the glue class only for glue kernels)', () => {
    const glue = allKernels.filter((k) => kernelClass(k.name).startsWith('glue')).map((k) => k.name.split('.')[0]);
    expect(new Set(glue)).toEqual(new Set(['softmax', 'add', 'dropout', 'mean-pool', 'cross-entropy', 'axpy', 'concat-time', 'gate']));
    expect(kernelClass('cross-attention.bwd.grad.dq')).toBe('attention bwd');
    expect(METHOD_CLASS.attentionBackward).toBe('attention bwd');
    expect(kernelClass('embedding.bwd')).toBe(METHOD_CLASS.embeddingBackward);
  });

  it('a Backend op not in METHOD_CLASS is glue; view, flush, destroy and scratch are not timed', () => {
    expect(methodClass('gateBackward')).toBe('glue (add, dropout, pool, concat, gate, loss)');
    expect(methodClass('someNewGlueOp')).toBe('glue (add, dropout, pool, concat, gate, loss)');
    expect(methodClass('matmulBackward')).toBe('projections/matmuls');
    expect(methodClass('read')).toBe('uploads/readbacks');
    for (const m of ['view', 'flush', 'destroy', 'scratch']) expect(methodClass(m)).toBeUndefined();
  });
});

describe.skipIf(!fx.gpu)('profileTrain --quick', () => {
  it('profiles wgsl and cpu: op classes, dispatch and encoding on wgsl, both dispatch paths, a Markdown table', async () => {
    const p = await profileTrain(fx.gpu!, { quick: true, steps: 1, backends: ['wgsl', 'cpu'] });
    const [wgsl, cpu] = p.backends;
    for (const b of [wgsl!, cpu!]) {
      for (const c of ['projections/matmuls', 'attention fwd', 'attention bwd', 'layer norm', 'AdamW (+ grad-norm clip)'] as const) {
        expect(b.classes[c], `${b.backend} ${c}`).toBeGreaterThan(0);
      }
      expect(b.stepMs).toBeGreaterThan(0);
    }
    expect(wgsl!.encodeMs).toBeGreaterThan(0);
    expect(cpu!.encodeMs).toBeNull();
    expect(p.dispatch!.dispatchesPerStep).toBeGreaterThan(50);
    expect(p.dispatch!.smallPerDispatchMs).toBeGreaterThan(0);
    const md = profileMarkdown(p);
    expect(md).toMatch(/\| attention bwd \| [\d.]+ \| [\d.]+ \|/);
    expect(md).toMatch(/dispatch and encoding \(host\) \| [\d.]+ \| - \|/);
    await expect(profileTrain(fx.gpu!, { quick: true, backends: ['tpu'] })).rejects.toThrow(/unknown backend 'tpu'/);
  }, 120_000);
});
