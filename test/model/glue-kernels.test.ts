// The fusion model's glue ops (axpy, concat/split along time, the gate's sigmoid mix and its backward) through
// the two backends: the wgsl backend computes what the cpu backend computes (outputs poisoned with NaN first,
// sizes that are not multiples of the workgroup). The kernels themselves are @emofuse/kernels ops: their
// Params and bindings are checked with every kernel's (test/runtime/params.test.ts), their references in
// test/kernels/glue.test.ts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomF32 } from '@emofuse/kernels';
import { CpuBackend, WgslBackend, type Backend, type BTensor } from '@emofuse/model';
import { openGpu, type GpuFixture } from '../helpers/gpu.ts';

let fx: GpuFixture;
beforeAll(async () => {
  fx = await openGpu();
});
afterAll(async () => {
  await fx.gpu?.destroy();
});

describe('fusion glue kernels', () => {
  it('wgsl matches cpu on every glue op (B=3, T1=5, T2=7, C=13)', async (ctx) => {
    if (!fx.gpu) return ctx.skip(fx.skipReason);
    const gpu = await WgslBackend.create(fx.gpu);
    const cpu = new CpuBackend('f32');
    const [B, T1, T2, C] = [3, 5, 7, 13];
    const n = B * C * 37;
    const run = async (be: Backend) => {
      const up = (len: number, seed: number) => be.upload(randomF32(len, seed), [len]);
      const poison = (len: number) => be.upload(new Float32Array(len).fill(Number.NaN), [len]);
      const a = up(B * T1 * C, 1);
      const b = up(B * T2 * C, 2);
      const cat = poison(B * (T1 + T2) * C);
      await be.concatTime(a, b, cat, B, T1, T2, C);
      const da = up(B * T1 * C, 3);
      const db = poison(B * T2 * C);
      await be.splitTime(cat, poison(B * T1 * C), db, B, T1, T2, C); // overwrite
      await be.splitTime(cat, da, up(B * T2 * C, 4), B, T1, T2, C, true); // accumulate
      const y = up(n, 5);
      await be.axpy(up(n, 6), y, -0.75);
      const s = be.upload(randomF32(n, 7, -30, 30), [n]);
      const [x1, x2, g] = [up(n, 8), up(n, 9), up(n, 10)];
      const mix = poison(n);
      await be.gate(s, x1, x2, mix);
      const [ds, dx, dy] = [poison(n), poison(n), poison(n)];
      await be.gateBackward(s, x1, x2, g, ds, dx, dy);
      const out: Record<string, Float32Array | Float64Array> = {};
      for (const [k, t] of Object.entries({ cat, da, db, y, mix, ds, dx, dy }) as [string, BTensor][]) out[k] = await be.read(t);
      return out;
    };
    const g = await run(gpu);
    const c = await run(cpu);
    for (const k of Object.keys(c)) {
      // |wgsl - cpu| <= atol + rtol |cpu| with atol 1e-6, rtol 1e-5 (f32 arithmetic vs float64 rounded to f32).
      const worst = Array.from(c[k]!).reduce(
        (w: number, v: number, i: number) => Math.max(w, Math.abs(v - g[k]![i]!) - 1e-5 * Math.abs(v)),
        0,
      );
      expect(worst, `${k}: worst |wgsl - cpu| - rtol |cpu|`).toBeLessThanOrEqual(1e-6);
      expect(g[k]!.every(Number.isFinite), `${k}: every element written`).toBe(true);
    }
  });
});
