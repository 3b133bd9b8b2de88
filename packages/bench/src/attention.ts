// `bench attention`: multi-head cross-attention, forward and forward+backward, no key mask.
// Layouts: q, out, dout [B, Tq, C]; k, v [B, Tk, C]; C = H*D (what the fusion model feeds the op).
// Variants: our fused kernel (the baseline), the same with host<->device copies (what ORT's session.run
// includes), our unfused path (split heads, matmul, softmax, matmul, merge), the float64 CPU reference,
// onnxruntime's com.microsoft MultiHeadAttention on its CPU and WebGPU EPs (forward only: onnxruntime-node
// is an inference runtime, it has no backward), and PyTorch's scaled_dot_product_attention on the CPU.
// FLOPs: forward 4*B*H*Tq*Tk*D (q k^T and P v, 2 FLOPs per multiply-add); backward 8*B*H*Tq*Tk*D (dV, dP, dQ,
// dK); the fused backward also recomputes q k^T (not counted), softmax and exp are not counted.

import { TOL, crossAttentionBackward, crossAttentionForward, randomF32, ref, type Gpu, type Tensor } from '@emofuse/kernels';
import {
  attentionUnfusedBackward,
  attentionUnfusedForward,
  createAttentionUnfusedWorkspace,
  destroyAttentionUnfusedWorkspace,
} from './baselines/attention-unfused.ts';
import { crossAttentionBackwardVersion, crossAttentionForwardVersion } from './baselines/cross-attention-versions.ts';
import type { BenchCase, Runner, Variant } from './harness.ts';
import { ortVariant } from './ort-peer.ts';
import { torchVariant } from './torch-peer.ts';

export interface AttentionShape {
  B: number;
  H: number;
  Tq: number;
  Tk: number;
  D: number;
}

export const ATTENTION_SHAPES: AttentionShape[] = [
  { B: 32, H: 8, Tq: 64, Tk: 128, D: 32 }, // the model shape: 32 utterances, text tokens attend to audio
  { B: 32, H: 4, Tq: 64, Tk: 128, D: 64 }, // the fusion model's defaults (width 256, 4 heads)
  { B: 1, H: 8, Tq: 512, Tk: 512, D: 64 },
  { B: 1, H: 8, Tq: 1024, Tk: 1024, D: 64 },
];
export const ATTENTION_QUICK_SHAPES: AttentionShape[] = [{ B: 2, H: 2, Tq: 16, Tk: 24, D: 16 }];

/** Our fused kernel's versions (kept so progress is visible): v1-v5 in baselines/; the product is v6. */
export const FUSED_VERSIONS = {
  1: 'one query row per invocation, D read at run time (arrays indexed dynamically)',
  2: 'v1 with the head size fixed at pipeline creation (override D4_FIXED): loops unrolled (slower here)',
  3: 'v1 with one (b, h) per workgroup (grid (rows/WG, B*H)): the streamed K/V (or Q/dout) addresses are uniform',
  4: 'register blocking: 4 query (dq) or key (dk, dv) rows per invocation, each streamed vec4 feeds 4 rows; WG 16',
  5: "v4's forward; backward: P and dS with each pair's q.k and dout.v once (4x4 tiles), then dq, dk, dv as small matmul tiles",
  6:
    "v5 with the forward specialised to the head size (D4_FIXED), the P/dS pass's q.k and dout.v in two loops, dq and dk/dv " +
    'with 1 and 2 vec4s of channels per invocation',
} as const;
/** The product's version per pass. */
const FUSED_LATEST = { fwd: 6, 'fwd+bwd': 6 } as const;
const FUSED_VERSION_LIST = { fwd: [1, 2, 3, 4, 6], 'fwd+bwd': [1, 2, 3, 4, 5, 6] } as const;

/** The CPU reference is timed only below this many FLOPs (about 5 s per run in float64 JS here). */
export const REFERENCE_TIMED_MAX_FLOPS = 1e9;

interface Inputs {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  dout: Float32Array;
}

function inputSets(s: AttentionShape, sets: number): Inputs[] {
  const C = s.H * s.D;
  return Array.from({ length: sets }, (_, i) => {
    const seed = 1000 * (i + 1);
    return {
      q: randomF32(s.B * s.Tq * C, seed + 1),
      k: randomF32(s.B * s.Tk * C, seed + 2),
      v: randomF32(s.B * s.Tk * C, seed + 3),
      dout: randomF32(s.B * s.Tq * C, seed + 4),
    };
  });
}

interface GpuSet {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  dout: Tensor;
}

function uploadSets(gpu: Gpu, s: AttentionShape, data: Inputs[]): GpuSet[] {
  const C = s.H * s.D;
  return data.map((d) => ({
    q: gpu.upload(d.q, [s.B, s.Tq, C]),
    k: gpu.upload(d.k, [s.B, s.Tk, C]),
    v: gpu.upload(d.v, [s.B, s.Tk, C]),
    dout: gpu.upload(d.dout, [s.B, s.Tq, C]),
  }));
}

function destroySets(sets: GpuSet[]): void {
  for (const t of sets) for (const x of [t.q, t.k, t.v, t.dout]) x.destroy();
}

export function attentionFlops(s: AttentionShape, pass: 'fwd' | 'fwd+bwd'): number {
  const core = s.B * s.H * s.Tq * s.Tk * s.D;
  return pass === 'fwd' ? 4 * core : 12 * core;
}

export function attentionCases(gpu: Gpu, shapes: AttentionShape[], sets: number): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const s of shapes) {
    const C = s.H * s.D;
    let data: Inputs[] | null = null;
    const getData = () => (data ??= inputSets(s, sets));
    const dims = { B: s.B, Tq: s.Tq, Tk: s.Tk, H: s.H, D: s.D };
    for (const pass of ['fwd', 'fwd+bwd'] as const) {
      const bwd = pass === 'fwd+bwd';
      const flops = attentionFlops(s, pass);
      let refOut: ArrayLike<number>[] | null = null;
      const referenceRun = (d: Inputs): ArrayLike<number>[] => {
        const f = ref.crossAttentionForward(d.q, d.k, d.v, null, dims);
        if (!bwd) return [f.out];
        const g = ref.crossAttentionBackward(d.q, d.k, d.v, null, f.out, f.lse, d.dout, dims);
        return [f.out, g.dq, g.dk, g.dv];
      };

      const fused = (version: 1 | 2 | 3 | 4 | 5 | 6): Variant => ({
        name: `fused v${version} (ours)`,
        kind: 'ours',
        device: `WebGPU ${gpu.adapter.device}`,
        note: FUSED_VERSIONS[version],
        async prepare(): Promise<Runner> {
          const g = uploadSets(gpu, s, getData());
          const out = gpu.empty([s.B, s.Tq, C]);
          const lse = gpu.empty([s.B, s.H, s.Tq]);
          const dq = gpu.empty([s.B, s.Tq, C]);
          const dk = gpu.empty([s.B, s.Tk, C]);
          const dv = gpu.empty([s.B, s.Tk, C]);
          for (const t of [out, lse, dq, dk, dv]) gpu.poison(t);
          return {
            async run(i) {
              const t = g[i % g.length]!;
              if (version === FUSED_LATEST[pass]) {
                await crossAttentionForward(gpu, t.q, t.k, t.v, null, out, lse, { heads: s.H });
                if (bwd) await crossAttentionBackward(gpu, t.q, t.k, t.v, null, out, lse, t.dout, dq, dk, dv, { heads: s.H });
              } else {
                await crossAttentionForwardVersion(gpu, t.q, t.k, t.v, null, out, lse, { heads: s.H, version });
                if (bwd)
                  await crossAttentionBackwardVersion(gpu, t.q, t.k, t.v, null, out, lse, t.dout, dq, dk, dv, { heads: s.H, version });
              }
              await gpu.finish();
            },
            outputs: async () =>
              bwd ? [await gpu.read(out), await gpu.read(dq), await gpu.read(dk), await gpu.read(dv)] : [await gpu.read(out)],
            dispose() {
              destroySets(g);
              for (const t of [out, lse, dq, dk, dv]) t.destroy();
            },
          };
        },
      });

      const fusedTransfers: Variant = {
        name: `fused v${FUSED_LATEST.fwd} + transfers (ours)`,
        kind: 'ours',
        device: `WebGPU ${gpu.adapter.device}`,
        note: 'writes q, k, v from host memory, reads out back: what a peer session.run includes',
        async prepare(): Promise<Runner> {
          const host = getData();
          const [q, k, v] = [gpu.empty([s.B, s.Tq, C]), gpu.empty([s.B, s.Tk, C]), gpu.empty([s.B, s.Tk, C])];
          const out = gpu.empty([s.B, s.Tq, C]);
          const lse = gpu.empty([s.B, s.H, s.Tq]);
          gpu.poison(out);
          let last: Float32Array | null = null;
          return {
            async run(i) {
              const d = host[i % host.length]!;
              gpu.write(q, d.q);
              gpu.write(k, d.k);
              gpu.write(v, d.v);
              await crossAttentionForward(gpu, q, k, v, null, out, lse, { heads: s.H });
              last = await gpu.read(out);
            },
            outputs: () => [last!],
            dispose() {
              for (const t of [q, k, v, out, lse]) t.destroy();
            },
          };
        },
      };

      const unfused: Variant = {
        name: 'unfused (ours)',
        kind: 'ours',
        device: `WebGPU ${gpu.adapter.device}`,
        note: 'split heads, matmul, softmax, matmul, merge; S and P materialised',
        async prepare(): Promise<Runner> {
          const g = uploadSets(gpu, s, getData());
          const ws = createAttentionUnfusedWorkspace(gpu, dims);
          const out = gpu.empty([s.B, s.Tq, C]);
          const dq = gpu.empty([s.B, s.Tq, C]);
          const dk = gpu.empty([s.B, s.Tk, C]);
          const dv = gpu.empty([s.B, s.Tk, C]);
          for (const t of [out, dq, dk, dv]) gpu.poison(t);
          return {
            async run(i) {
              const t = g[i % g.length]!;
              await attentionUnfusedForward(gpu, t.q, t.k, t.v, null, out, ws, { heads: s.H });
              if (bwd) await attentionUnfusedBackward(gpu, t.dout, dq, dk, dv, ws, { heads: s.H });
              await gpu.finish();
            },
            outputs: async () =>
              bwd ? [await gpu.read(out), await gpu.read(dq), await gpu.read(dk), await gpu.read(dv)] : [await gpu.read(out)],
            dispose() {
              destroySets(g);
              destroyAttentionUnfusedWorkspace(ws);
              for (const t of [out, dq, dk, dv]) t.destroy();
            },
          };
        },
      };

      const reference: Variant = {
        name: 'CPU reference (ours)',
        kind: 'reference',
        device: 'CPU float64 JS, 1 thread',
        iterations: 2,
        async prepare() {
          if (flops > REFERENCE_TIMED_MAX_FLOPS) {
            return {
              skip:
                `not timed above ${REFERENCE_TIMED_MAX_FLOPS / 1e9} GFLOP (this case: ${(flops / 1e9).toFixed(2)}); it ran ` +
                `once to validate the others`,
            };
          }
          const host = getData();
          let last: ArrayLike<number>[] = [];
          return {
            run(i) {
              last = referenceRun(host[i % host.length]!);
            },
            outputs: () => last,
          };
        },
      };

      const ortSpec = (ep: 'cpu' | 'webgpu') =>
        ortVariant({
          name: `ORT MultiHeadAttention ${ep === 'cpu' ? 'CPU' : 'WebGPU'}`,
          ep,
          node: { opType: 'MultiHeadAttention', domain: 'com.microsoft', attributes: { num_heads: s.H } },
          inputs: { query: [s.B, s.Tq, C], key: [s.B, s.Tk, C], value: [s.B, s.Tk, C] },
          output: ['output', [s.B, s.Tq, C]],
          data: (i) => {
            const d = getData()[i % sets]!;
            return [d.q, d.k, d.v];
          },
          sets,
          note: 'session.run: includes copying inputs in and the output out',
        });
      // The same attention as standard ONNX ops, what exporting a model with unfused attention gives
      // (and what ORT runs when its fused MultiHeadAttention kernel is not used):
      // q,k,v [B,T,C] -> Reshape [B,T,H,D] -> Transpose [B,H,T,D]; S = q k^T * scale; P = Softmax(S); P v -> back.
      const ortDecomposed = (ep: 'cpu' | 'webgpu') =>
        ortVariant({
          name: `ORT MatMul+Softmax+MatMul ${ep === 'cpu' ? 'CPU' : 'WebGPU'}`,
          ep,
          node: {
            nodes: [
              { opType: 'Reshape', inputs: ['query', 'shape_q'], outputs: ['q4'] },
              { opType: 'Transpose', inputs: ['q4'], outputs: ['qh'], attributes: { perm: [0, 2, 1, 3] } },
              { opType: 'Reshape', inputs: ['key', 'shape_k'], outputs: ['k4'] },
              { opType: 'Transpose', inputs: ['k4'], outputs: ['khT'], attributes: { perm: [0, 2, 3, 1] } },
              { opType: 'Reshape', inputs: ['value', 'shape_k'], outputs: ['v4'] },
              { opType: 'Transpose', inputs: ['v4'], outputs: ['vh'], attributes: { perm: [0, 2, 1, 3] } },
              { opType: 'MatMul', inputs: ['qh', 'khT'], outputs: ['s'] },
              { opType: 'Mul', inputs: ['s', 'scale'], outputs: ['ss'] },
              { opType: 'Softmax', inputs: ['ss'], outputs: ['p'], attributes: { axis: -1 } },
              { opType: 'MatMul', inputs: ['p', 'vh'], outputs: ['oh'] },
              { opType: 'Transpose', inputs: ['oh'], outputs: ['o4'], attributes: { perm: [0, 2, 1, 3] } },
              { opType: 'Reshape', inputs: ['o4', 'shape_out'], outputs: ['output'] },
            ],
            initializers: [
              { name: 'shape_q', dims: [4], int64: [s.B, s.Tq, s.H, s.D] },
              { name: 'shape_k', dims: [4], int64: [s.B, s.Tk, s.H, s.D] },
              { name: 'shape_out', dims: [3], int64: [s.B, s.Tq, C] },
              { name: 'scale', dims: [], float: [1 / Math.sqrt(s.D)] },
            ],
          },
          inputs: { query: [s.B, s.Tq, C], key: [s.B, s.Tk, C], value: [s.B, s.Tk, C] },
          output: ['output', [s.B, s.Tq, C]],
          data: (i) => {
            const d = getData()[i % sets]!;
            return [d.q, d.k, d.v];
          },
          sets,
          note: 'standard ONNX ops; session.run includes copying inputs in and the output out',
        });
      const ortNoBackward = (ep: string): Variant => ({
        name: `ORT MultiHeadAttention ${ep}`,
        kind: 'peer',
        device: `ORT ${ep} EP`,
        prepare: async () => ({ skip: 'onnxruntime-node is inference only: MultiHeadAttention has no backward to time' }),
      });

      const torch = torchVariant({
        name: 'PyTorch sdpa CPU',
        op: 'attention',
        pass,
        shape: { ...dims },
        inputShapes: bwd
          ? [
              [s.B, s.Tq, C],
              [s.B, s.Tk, C],
              [s.B, s.Tk, C],
              [s.B, s.Tq, C],
            ]
          : [
              [s.B, s.Tq, C],
              [s.B, s.Tk, C],
              [s.B, s.Tk, C],
            ],
        data: (i) => {
          const d = getData()[i]!;
          return bwd ? [d.q, d.k, d.v, d.dout] : [d.q, d.k, d.v];
        },
        outputs: bwd ? 4 : 1,
        sets,
        note: bwd ? 'autograd backward of F.scaled_dot_product_attention' : 'F.scaled_dot_product_attention under no_grad',
      });

      cases.push({
        suite: 'attention',
        op: 'cross-attention',
        pass,
        shape: { ...dims },
        flops,
        flopsFormula: bwd ? '12*B*H*Tq*Tk*D (fwd 4 + bwd 8)' : '4*B*H*Tq*Tk*D',
        tol: bwd ? TOL.attentionBackward : TOL.attentionForward,
        reference: () => (refOut ??= referenceRun(getData()[0]!)),
        variants: bwd
          ? [...FUSED_VERSION_LIST[pass].map(fused), unfused, reference, ortNoBackward('CPU'), ortNoBackward('WebGPU'), torch]
          : [
              ...FUSED_VERSION_LIST[pass].map(fused),
              fusedTransfers,
              unfused,
              reference,
              ortSpec('cpu'),
              ortSpec('webgpu'),
              ortDecomposed('cpu'),
              ortDecomposed('webgpu'),
              torch,
            ],
        baseline: `fused v${FUSED_LATEST[pass]} (ours)`,
      });
    }
  }
  return cases;
}
