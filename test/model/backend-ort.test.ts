// The ort backend (onnxruntime-node CPU, packages/model/src/fusion/backend-ort.ts) against the float64 references:
// its ops one line each (including the layouts and cases the fusion model does not use), then the whole model
// trained a few steps beside the cpu backend with backends.test.ts's rule, then an exact resume.

import { afterAll, describe, expect, it } from 'vitest';
import { randomF32, ref } from '@emofuse/kernels';
import { CpuBackend, FUSION_VARIANTS, FusionModel, OrtBackend, chooseAutoBackend, ortLoadError, type AdamwSettings, type BTensor } from '@emofuse/model';
import { expectTrainsLikeCpu, tinyConfig, tinyInputs } from './helpers.ts';

// backends.test.ts's rule (see its header for why these numbers)
const STEPS = 3;
const LR = 1e-3;
const LOSS_RTOL = 1e-4;
const PARAM_ATOL = STEPS * LR;
const MEAN_ATOL = 1e-5;
const adamw: AdamwSettings = { lr: LR, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1 };

const be = OrtBackend.create();
const beDefault = be;
/** Op by op, in chunks of 5 elements: the chunked ops (GELU backward, add, layer norm, attention by batch rows) loop, with a ragged last chunk. */
const beChunked = OrtBackend.create({ chunk: 5, defer: false });
afterAll(() => Promise.all([be.destroy(), beChunked.destroy()]));
/** max |got - want| <= atol + rtol |want|, elementwise. */
function close(got: ArrayLike<number>, want: ArrayLike<number>, atol = 1e-5, rtol = 1e-4): void {
  expect(got.length).toBe(want.length);
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    if (!(Math.abs(got[i]! - want[i]!) <= atol + rtol * Math.abs(want[i]!))) worst = worst < 0 ? i : worst;
  }
  expect(worst, worst >= 0 ? `[${worst}]: ${got[worst]} vs ${want[worst]}` : '').toBe(-1);
}
const poison = (n: number) => new Float32Array(n).fill(NaN);

for (const [tag, be] of [[', recorded into one graph', beDefault], [', op by op in chunks of 5', beChunked]] as const) describe(`ort ops match the float64 references${tag}`, () => {
  const up = (x: ArrayLike<number>, shape: number[]) => be.upload(x, shape);
  const rd = (t: BTensor) => be.read(t);
  const layouts = [
    { batch: 1, M: 5, N: 7, K: 3 },
    { batch: 3, M: 4, N: 6, K: 5 },
  ];
  for (const dims of layouts) {
    for (const [transA, transB, broadcastB] of [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1], [1, 1, 1], [1, 0, 1]]) {
      const o = { transA: !!transA, transB: !!transB, broadcastB: !!broadcastB };
      const tag = `batch ${dims.batch} transA ${transA} transB ${transB} broadcastB ${broadcastB}`;
      const { batch, M, N, K } = dims;
      const a = randomF32(batch * M * K, 1);
      const b = randomF32((broadcastB ? 1 : batch) * K * N, 2);
      const bias = randomF32(N, 3);
      const c0 = randomF32(batch * M * N, 4);
      it(`matmul + bias + gelu, accumulate, ${tag}`, async () => {
        const r = ref.matmulForward(a, b, dims, { ...o, bias, gelu: true });
        const c = up(c0, [batch * M * N]);
        const pre = up(poison(batch * M * N), [batch * M * N]);
        await be.matmul(up(a, [a.length]), up(b, [b.length]), c, dims, { ...o, bias: up(bias, [N]), gelu: true, pre, accumulate: true });
        close(await rd(c), Array.from(r.out, (x, i) => x + c0[i]!));
        close(await rd(pre), r.pre);
      });
      it(`matmul, accumulate, no bias (the old c as the Gemm's C), ${tag}`, async () => {
        const r = ref.matmulForward(a, b, dims, o);
        const c = up(c0, [batch * M * N]);
        await be.matmul(up(a, [a.length]), up(b, [b.length]), c, dims, { ...o, accumulate: true });
        close(await rd(c), Array.from(r.out, (x, i) => x + c0[i]!));
      });
      it(`matmulBackward, accumulate into dA only, ${tag}`, async () => {
        const dc = randomF32(batch * M * N, 5);
        const r = ref.matmulBackward(dc, a, b, dims, o);
        const dA0 = randomF32(r.dA.length, 6);
        const dA = up(dA0, [r.dA.length]);
        const dB = up(poison(r.dB.length), [r.dB.length]);
        const dBias = up(poison(N), [N]);
        await be.matmulBackward({ dc: up(dc, [dc.length]), a: up(a, [a.length]), b: up(b, [b.length]), dA, dB, dBias }, dims, { ...o, accumulateA: true });
        close(await rd(dA), Array.from(r.dA, (x, i) => x + dA0[i]!));
        close(await rd(dB), r.dB);
        close(await rd(dBias), r.dBias);
      });
    }
  }

  const [B, Tq, Tk, H, D] = [3, 5, 6, 2, 4];
  const C = H * D;
  const q = randomF32(B * Tq * C, 11);
  const k = randomF32(B * Tk * C, 12);
  const v = randomF32(B * Tk * C, 13);
  const dout = randomF32(B * Tq * C, 14);
  const mask = Float32Array.from({ length: B * Tk }, (_, i) => (Math.floor(i / Tk) === 1 ? 0 : i % Tk < 4 - Math.floor(i / Tk) ? 1 : 0)); // row 1 fully masked
  for (const m of [mask, null]) {
    it(`attention forward and backward, ${m ? 'masked (one row fully)' : 'no mask'}`, async () => {
      const dims = { B, Tq, Tk, H, D };
      const f = ref.crossAttentionForward(q, k, v, m, dims);
      const g = ref.crossAttentionBackward(q, k, v, m, f.out, f.lse, dout, dims);
      const [tq, tk, tv] = [up(q, [B, Tq, C]), up(k, [B, Tk, C]), up(v, [B, Tk, C])];
      const tm = m && up(m, [B, Tk]);
      const out = up(poison(B * Tq * C), [B, Tq, C]);
      const lse = up(poison(B * H * Tq), [B, H, Tq]);
      await be.attention(tq, tk, tv, tm, out, lse, H);
      close(await rd(out), f.out);
      close(await rd(lse), f.lse);
      const [dq, dk, dv] = [up(poison(q.length), [B, Tq, C]), up(poison(k.length), [B, Tk, C]), up(poison(v.length), [B, Tk, C])];
      await be.attentionBackward(tq, tk, tv, tm, out, lse, up(dout, [B, Tq, C]), dq, dk, dv, H);
      close(await rd(dq), g.dq);
      close(await rd(dk), g.dk);
      close(await rd(dv), g.dv);
    });
  }

  it('layer norm forward and backward', async () => {
    const [R, Cn] = [6, 10];
    const x = Float32Array.from(randomF32(R * Cn, 21), (z) => z + 3); // an offset mean
    const gamma = randomF32(Cn, 22);
    const beta = randomF32(Cn, 23);
    const dy = randomF32(R * Cn, 24);
    const f = ref.layerNormForward(x, gamma, beta, R, Cn);
    const b = ref.layerNormBackward(x, gamma, f.mean, f.rstd, dy, R, Cn);
    const [y, mean, rstd] = [up(poison(R * Cn), [R, Cn]), up(poison(R), [R]), up(poison(R), [R])];
    const tx = up(x, [R, Cn]);
    const tg = up(gamma, [Cn]);
    await be.layerNorm(tx, tg, up(beta, [Cn]), y, mean, rstd);
    close(await rd(y), f.y);
    close(await rd(mean), f.mean);
    close(await rd(rstd), f.rstd);
    const [dx, dg, db] = [up(poison(R * Cn), [R, Cn]), up(poison(Cn), [Cn]), up(poison(Cn), [Cn])];
    await be.layerNormBackward(tx, tg, mean, rstd, up(dy, [R, Cn]), dx, dg, db);
    close(await rd(dx), b.dx);
    close(await rd(dg), b.dgamma);
    close(await rd(db), b.dbeta);
  });

  it('gelu backward (accumulating)', async () => {
    const x = Float32Array.from(randomF32(50, 31), (z) => 4 * z);
    const dy = randomF32(50, 32);
    const dx = up(new Float32Array(50).fill(1), [50]);
    await be.geluBackward(up(x, [50]), up(dy, [50]), dx, true);
    close(await rd(dx), Array.from(ref.geluBackward(x, dy), (z) => z + 1));
  });

  it('add, axpy', async () => {
    const [a, b] = [randomF32(20, 41), randomF32(20, 42)];
    const out = up(poison(20), [20]);
    await be.add(up(a, [20]), up(b, [20]), out, -0.5);
    close(await rd(out), ref.addForward(a, b, -0.5));
    const y = up(a, [20]);
    await be.axpy(up(b, [20]), y, 2);
    close(await rd(y), Array.from(a, (z, i) => z + 2 * b[i]!));
  });

  it('concat along time, split back (overwriting and accumulating): the references\' copies exactly', async () => {
    const d = { B: 3, T1: 2, T2: 4, C: 5 };
    const [a, b] = [randomF32(d.B * d.T1 * d.C, 45), randomF32(d.B * d.T2 * d.C, 46)];
    const out = up(poison(d.B * (d.T1 + d.T2) * d.C), [d.B, d.T1 + d.T2, d.C]);
    await be.concatTime(up(a, [d.B, d.T1, d.C]), up(b, [d.B, d.T2, d.C]), out, d.B, d.T1, d.T2, d.C);
    expect(Array.from(await rd(out))).toEqual(Array.from(Float32Array.from(ref.concatTimeForward(a, b, d))));
    const dout = randomF32(d.B * (d.T1 + d.T2) * d.C, 47);
    const r = ref.concatTimeBackward(dout, d);
    const [da, db] = [up(poison(a.length), [a.length]), up(b, [b.length])];
    await be.splitTime(up(dout, [dout.length]), da, db, d.B, d.T1, d.T2, d.C);
    expect(Array.from(await rd(da))).toEqual(Array.from(Float32Array.from(r.da)));
    await be.splitTime(up(dout, [dout.length]), da, db, d.B, d.T1, d.T2, d.C, true);
    expect(Array.from(await rd(da))).toEqual(Array.from(Float32Array.from(r.da, (x) => Math.fround(x) * 2)));
    expect(Array.from(await rd(db))).toEqual(Array.from(Float32Array.from(r.db, (x, i) => r.db[i]! + x)));
  });

  it('mean pool forward and backward (a row with no tokens)', async () => {
    const [Bp, T, Cp] = [3, 4, 5];
    const x = randomF32(Bp * T * Cp, 51);
    const m = Float32Array.from([1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    const dy = randomF32(Bp * Cp, 52);
    const y = up(poison(Bp * Cp), [Bp, Cp]);
    await be.meanPool(up(x, [Bp, T, Cp]), up(m, [Bp, T]), y);
    close(await rd(y), ref.meanPoolForward(x, m, Bp, T, Cp));
    const dx = up(x, [Bp, T, Cp]);
    await be.meanPoolBackward(up(m, [Bp, T]), up(dy, [Bp, Cp]), dx, true);
    close(await rd(dx), Array.from(ref.meanPoolBackward(m, dy, Bp, T, Cp), (z, i) => z + x[i]!));
  });

  // 30 values take the reference in JS (small tensors), 20000 the graph
  for (const n of [30, 20000]) it(`grad norm and a clipped AdamW step, ${n} values`, async () => {
    const gs = [randomF32(n, 61), randomF32(7, 62), randomF32(1, 63)];
    const norm = up(poison(1), [1]);
    await be.gradNorm(gs.map((g) => up(g, [g.length])), norm);
    const want = ref.gradNormForward(gs);
    close(await rd(norm), [want]);
    const [p, m, v] = [randomF32(n, 64), randomF32(n, 65), Float32Array.from(randomF32(n, 66), Math.abs)];
    const o = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.1, step: 3 };
    const r = ref.adamwStep(p, gs[0]!, m, v, { ...o, maxNorm: 0.5, gradNorm: want });
    const [tp, tm, tv] = [up(p, [n]), up(m, [n]), up(v, [n])];
    await be.adamw(tp, up(gs[0]!, [n]), tm, tv, { ...o, clip: { norm, maxNorm: 0.5 } });
    close(await rd(tp), r.p);
    close(await rd(tm), r.m);
    close(await rd(tv), r.v);
  });

  it('dropout draws the references\' mask', async () => {
    const x = randomF32(1000, 71);
    const y = up(poison(1000), [1000]);
    await be.dropout(up(x, [1000]), y, { p: 0.3, seed: 1234, offset: 17 });
    const got = await rd(y);
    const want = Float32Array.from(ref.dropoutForward(x, 0.3, 1234, 17));
    expect(Array.from(got, (v) => v === 0)).toEqual(Array.from(want, (v) => v === 0)); // the same elements dropped
    close(got, want, 0, 3e-7); // x times float32(1 / 0.7) against float32(x / 0.7): an ulp
  });
});

describe('ort and cpu backends train the same model to the same numbers', () => {
  for (const [fusion, chunked] of [...FUSION_VARIANTS.map((f) => [f, false] as const), ['cross-self', true] as const]) {
    it(`${fusion}${chunked ? ' (op by op, in chunks of 5)' : ''}: ${STEPS} steps, losses and parameters agree`, async () => {
      const config = tinyConfig(fusion, { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
      const ortModel = FusionModel.create(chunked ? beChunked : be, config);
      const cpuModel = FusionModel.create(new CpuBackend('f32'), config);
      await expectTrainsLikeCpu('ort', ortModel, cpuModel, adamw, { steps: STEPS, lossRtol: LOSS_RTOL, paramAtol: PARAM_ATOL, meanAtol: MEAN_ATOL });
    });
  }
});

describe('a step recorded as one graph', () => {
  const config = tinyConfig('cross-self', { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
  it('runs once a step, one compiled graph for every batch shape, the same numbers as op by op', async () => {
    const one = OrtBackend.create();
    const eager = OrtBackend.create({ defer: false });
    const [m1, m2] = [FusionModel.create(one, config), FusionModel.create(eager, config)];
    for (let s = 0; s < 4; s++) {
      const b = tinyInputs(config, s % 2 ? 3 : 4, 300 + s); // two batch sizes (tinyInputs pads to the model's lengths)
      const runs = one.runs;
      const [l1, l2] = [await m1.readLoss(await m1.trainStep(b, [1, 1, 1], adamw)), await m2.readLoss(await m2.trainStep(b, [1, 1, 1], adamw))];
      expect(one.runs - runs).toBe(1);
      expect(Math.abs(l1 - l2)).toBeLessThanOrEqual(1e-5 * Math.abs(l2));
    }
    expect(eager.runs).toBeGreaterThan(4 * 50);
    const steps = [...(one as unknown as { sessions: Map<string, unknown> }).sessions.keys()].filter((k) => k.startsWith('step:'));
    expect(steps).toHaveLength(1);
    await Promise.all([one.destroy(), eager.destroy()]);
  });
  it('activations are scratch: not brought out, and reading one after its step throws instead of returning old numbers', async () => {
    const b = OrtBackend.create();
    const x = b.upload([1, 2, 3], [3]);
    const act = b.zeros([3]);
    const kept = b.zeros([3]);
    b.scratch([act]);
    await b.add(x, x, act);
    await b.add(act, x, kept);
    expect(Array.from(await b.read(kept))).toEqual([3, 6, 9]);
    await expect(b.read(act)).rejects.toThrow(/scratch of a step that has run/);
    await expect((async () => (await b.add(act, x, kept), b.flush()))()).rejects.toThrow(/reads scratch values from before the last flush/);
    b.write(act, [1, 1, 1]); // the host's values are current again
    await b.add(act, x, kept);
    expect(Array.from(await b.read(kept))).toEqual([2, 3, 4]);
    await b.destroy();
  });
  it('regions: a view written then the whole read, a host write while a graph is pending keeps what the graph read', async () => {
    const b = OrtBackend.create();
    const base = b.upload([10, 20, 30, 40], [4]);
    const head = b.view(base, [2]);
    const src = b.upload([1, 2], [2]);
    await b.add(src, src, head); // base = [2, 4, 30, 40], pending
    const sum = b.zeros([4]);
    await b.add(base, base, sum);
    const tail = b.upload([5, 6], [2]);
    const out = b.zeros([2]);
    await b.add(tail, tail, out); // reads tail: [5, 6]
    b.write(tail, [0, 0]); // after the graph read it: the graph still sees [5, 6]
    expect(Array.from(await b.read(sum))).toEqual([4, 8, 60, 80]);
    expect(Array.from(await b.read(out))).toEqual([10, 12]);
    expect(Array.from(await b.read(base))).toEqual([2, 4, 30, 40]);
    const w = b.zeros([2]);
    await b.add(src, src, w);
    b.write(w, [7, 7]); // the host writes over what the pending graph would write: the host wins
    await b.flush();
    expect(Array.from(await b.read(w))).toEqual([7, 7]);
    await b.destroy();
  });
});

describe('ort training resumes exactly', () => {
  it('2 steps, save, load into a fresh model, 2 more steps == 4 steps straight', async () => {
    const config = tinyConfig('cross-self', { width: 16, heads: 2, maxTextLen: 5, maxAudioLen: 7, dropout: 0.2 });
    const weights = [1, 1.5, 0.75];
    const batch = (s: number) => tinyInputs(config, 4, 200 + s);
    const straight = FusionModel.create(be, config);
    const losses: number[] = [];
    for (let s = 0; s < 4; s++) losses.push(await straight.readLoss(await straight.trainStep(batch(s), weights, adamw)));
    const first = FusionModel.create(be, config);
    for (let s = 0; s < 2; s++) await first.trainStep(batch(s), weights, adamw);
    const resumed = FusionModel.create(OrtBackend.create(), config); // a fresh backend too: nothing carried over but the state
    resumed.loadState(await first.readState(), first.step);
    const after: number[] = [];
    for (let s = 2; s < 4; s++) after.push(await resumed.readLoss(await resumed.trainStep(batch(s), weights, adamw)));
    expect(after).toEqual(losses.slice(2));
    const a = await straight.readState();
    const b = await resumed.readState();
    for (const [name, p] of a) {
      expect(Array.from(b.get(name)!.value), name).toEqual(Array.from(p.value));
      expect(Array.from(b.get(name)!.v), `${name} v`).toEqual(Array.from(p.v));
    }
  });
});

describe('--backend auto', () => {
  const sw = { isSoftware: true, device: 'llvmpipe-llvm-15', description: 'OpenGL ES 3.2 Mesa' };
  const hw = { isSoftware: false, device: 'NVIDIA H100', description: '' };
  it('wgsl on a hardware adapter, ort on a software one or none, wgsl without onnxruntime', () => {
    expect(chooseAutoBackend(hw, null)).toMatchObject({ backend: 'wgsl', reason: expect.stringContaining('NVIDIA H100') });
    expect(chooseAutoBackend(sw, null)).toMatchObject({ backend: 'ort', reason: expect.stringContaining('software adapter llvmpipe') });
    expect(chooseAutoBackend(null, null, 'no adapter: Vulkan missing').backend).toBe('ort');
    expect(chooseAutoBackend(sw, 'onnxruntime-node could not be loaded: x')).toMatchObject({ backend: 'wgsl', reason: expect.stringContaining('could not be loaded') });
    expect(() => chooseAutoBackend(null, 'onnxruntime-node could not be loaded: x')).toThrow(/--backend cpu/);
    expect(ortLoadError()).toBeNull();
  });
});
