// The ort backend's ops against the float64 references, one line each (including the layouts and cases the fusion
// model does not use): shared by test/model/backend-ort.test.ts (the product: ops recorded into one graph) and
// test/bench/ort-op-by-op.test.ts (the bench baseline: each op run at once, in chunks of 5 elements).

import { describe, expect, it } from 'vitest';
import { randomF32, ref } from '@emofuse/kernels';
import type { Backend, BTensor } from '@emofuse/model';

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

/** The op cases on backend `be` (an OrtBackend or a subclass), in a describe named with `tag`. */
export function describeOrtOps(tag: string, be: Backend): void {
  describe(`ort ops match the float64 references${tag}`, () => {
    const up = (x: ArrayLike<number>, shape: number[]) => be.upload(x, shape);
    const rd = (t: BTensor) => be.read(t);
    const layouts = [
      { batch: 1, M: 5, N: 7, K: 3 },
      { batch: 3, M: 4, N: 6, K: 5 },
    ];
    for (const dims of layouts) {
      for (const [transA, transB, broadcastB] of [
        [0, 0, 0],
        [1, 0, 0],
        [0, 1, 0],
        [1, 1, 0],
        [0, 0, 1],
        [1, 1, 1],
        [1, 0, 1],
      ]) {
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
          close(
            await rd(c),
            Array.from(r.out, (x, i) => x + c0[i]!),
          );
          close(await rd(pre), r.pre);
        });
        it(`matmul, accumulate, no bias (the old c as the Gemm's C), ${tag}`, async () => {
          const r = ref.matmulForward(a, b, dims, o);
          const c = up(c0, [batch * M * N]);
          await be.matmul(up(a, [a.length]), up(b, [b.length]), c, dims, { ...o, accumulate: true });
          close(
            await rd(c),
            Array.from(r.out, (x, i) => x + c0[i]!),
          );
        });
        it(`matmulBackward, accumulate into dA only, ${tag}`, async () => {
          const dc = randomF32(batch * M * N, 5);
          const r = ref.matmulBackward(dc, a, b, dims, o);
          const dA0 = randomF32(r.dA.length, 6);
          const dA = up(dA0, [r.dA.length]);
          const dB = up(poison(r.dB.length), [r.dB.length]);
          const dBias = up(poison(N), [N]);
          await be.matmulBackward({ dc: up(dc, [dc.length]), a: up(a, [a.length]), b: up(b, [b.length]), dA, dB, dBias }, dims, {
            ...o,
            accumulateA: true,
          });
          close(
            await rd(dA),
            Array.from(r.dA, (x, i) => x + dA0[i]!),
          );
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
    // row 1 fully masked
    const mask = Float32Array.from({ length: B * Tk }, (_, i) => (Math.floor(i / Tk) === 1 ? 0 : i % Tk < 4 - Math.floor(i / Tk) ? 1 : 0));
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
      close(
        await rd(dx),
        Array.from(ref.geluBackward(x, dy), (z) => z + 1),
      );
    });

    it('add, axpy', async () => {
      const [a, b] = [randomF32(20, 41), randomF32(20, 42)];
      const out = up(poison(20), [20]);
      await be.add(up(a, [20]), up(b, [20]), out, -0.5);
      close(await rd(out), ref.addForward(a, b, -0.5));
      const y = up(a, [20]);
      await be.axpy(up(b, [20]), y, 2);
      close(
        await rd(y),
        Array.from(a, (z, i) => z + 2 * b[i]!),
      );
    });

    it("concat along time, split back (overwriting and accumulating): the references' copies exactly", async () => {
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
      close(
        await rd(dx),
        Array.from(ref.meanPoolBackward(m, dy, Bp, T, Cp), (z, i) => z + x[i]!),
      );
    });

    // 30 values take the reference in JS (small tensors), 20000 the graph
    for (const n of [30, 20000])
      it(`grad norm and a clipped AdamW step, ${n} values`, async () => {
        const gs = [randomF32(n, 61), randomF32(7, 62), randomF32(1, 63)];
        const norm = up(poison(1), [1]);
        await be.gradNorm(
          gs.map((g) => up(g, [g.length])),
          norm,
        );
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

    it("dropout draws the references' mask", async () => {
      const x = randomF32(1000, 71);
      const y = up(poison(1000), [1000]);
      await be.dropout(up(x, [1000]), y, { p: 0.3, seed: 1234, offset: 17 });
      const got = await rd(y);
      const want = Float32Array.from(ref.dropoutForward(x, 0.3, 1234, 17));
      expect(Array.from(got, (v) => v === 0)).toEqual(Array.from(want, (v) => v === 0)); // the same elements dropped
      close(got, want, 0, 3e-7); // x times float32(1 / 0.7) against float32(x / 0.7): an ulp
    });
    it('embedding gather and scatter-add (repeated ids; overwriting and accumulating)', async () => {
      const [N, V, C] = [9, 5, 3];
      const ids = Float32Array.of(0, 4, 2, 2, 4, 4, 1, 0, 2);
      const [table, dout, prior] = [randomF32(V * C, 40), randomF32(N * C, 41), randomF32(V * C, 42)];
      const out = up(poison(N * C), [N, C]);
      await be.embedding(up(ids, [N]), up(table, [V, C]), out);
      close(await rd(out), ref.embeddingForward(ids, table, V, C));
      const want = ref.embeddingBackward(ids, dout, V, C);
      const dtable = up(poison(V * C), [V, C]);
      await be.embeddingBackward(up(ids, [N]), up(dout, [N, C]), dtable);
      close(await rd(dtable), want);
      const acc = up(prior, [V, C]);
      await be.embeddingBackward(up(ids, [N]), up(dout, [N, C]), acc, true);
      close(
        await rd(acc),
        Array.from(want, (x, i) => x + prior[i]!),
      );
    });
  });
}
