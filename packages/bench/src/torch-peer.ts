// PyTorch (CPU) as a peer, in a child Python process (python/torch_peer.py): we write the same inputs the
// other variants get, it times its own calls (time.perf_counter around each, after warm-up) and writes its
// outputs on input set 0, which we validate against our CPU reference like every other variant.
// Python is found as $EMOFUSE_PYTHON or python3; without torch the variant is skipped with the reason.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ExternalResult, Skip, Variant } from './harness.ts';

const run = promisify(execFile);

/** The script beside this file's package (sources) or beside the bundled CLI (packages/cli/dist). */
export function torchScriptPath(): string | null {
  const candidates = [new URL('../python/torch_peer.py', import.meta.url), new URL('../../bench/python/torch_peer.py', import.meta.url)];
  for (const c of candidates) {
    const p = fileURLToPath(c);
    if (existsSync(p)) return p;
  }
  return null;
}

export function pythonBin(): string {
  return process.env.EMOFUSE_PYTHON || 'python3';
}

let probe: Promise<{ version: string } | { skip: string }> | null = null;

/** torch's version, or why the PyTorch peer is skipped. Probed once per process. */
export function probeTorch(): Promise<{ version: string } | { skip: string }> {
  probe ??= (async () => {
    if (!torchScriptPath()) return { skip: 'packages/bench/python/torch_peer.py not found' };
    try {
      const { stdout } = await run(pythonBin(), ['-c', 'import torch, numpy; print(torch.__version__)'], { timeout: 60_000 });
      return { version: stdout.trim() };
    } catch (err) {
      const msg = String((err as { stderr?: string }).stderr || (err as Error).message)
        .trim()
        .split('\n')
        .pop();
      return { skip: `no PyTorch: '${pythonBin()} -c "import torch"' failed (${msg}); pip install torch==2.13.0 to add this peer` };
    }
  })();
  return probe;
}

export interface TorchVariantSpec {
  name: string;
  op: 'attention' | 'matmul' | 'softmax' | 'layer_norm';
  pass: string;
  shape: Record<string, number>;
  inputShapes: number[][];
  data(set: number): Float32Array[];
  outputs: number;
  sets: number;
  note?: string;
}

/** $EMOFUSE_TORCH_DEVICE=cuda: the PyTorch peers run on CUDA (scripts/gpu-check.sh sets it when torch.cuda.is_available()). */
export const TORCH_DEVICE = process.env.EMOFUSE_TORCH_DEVICE === 'cuda' ? 'cuda' : 'cpu';

export function torchVariant(spec: TorchVariantSpec): Variant {
  const cuda = TORCH_DEVICE === 'cuda';
  return {
    name: cuda ? spec.name.replace(/ CPU$/, ' CUDA') : spec.name,
    kind: 'peer',
    device: cuda ? 'PyTorch CUDA' : 'PyTorch CPU',
    note: spec.note,
    async prepare({ warmup, iterations, sets }): Promise<ExternalResult | Skip> {
      const t = await probeTorch();
      if ('skip' in t) return t;
      const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-torch-'));
      try {
        const n = Math.min(sets, spec.sets);
        for (let s = 0; s < n; s++) for (const [k, a] of spec.data(s).entries()) writeFileSync(join(dir, `in-${s}-${k}.f32`), a);
        writeFileSync(
          join(dir, 'job.json'),
          JSON.stringify({
            op: spec.op,
            pass: spec.pass,
            shape: spec.shape,
            input_shapes: spec.inputShapes,
            sets: n,
            warmup,
            iterations,
            device: TORCH_DEVICE,
          }),
        );
        try {
          await run(pythonBin(), [torchScriptPath()!, dir], { timeout: 600_000, maxBuffer: 16 << 20 });
        } catch (err) {
          const msg = String((err as { stderr?: string }).stderr || (err as Error).message)
            .trim()
            .split('\n')
            .pop();
          throw new Error(`torch_peer.py failed: ${msg}`);
        }
        const res = JSON.parse(readFileSync(join(dir, 'result.json'), 'utf8')) as {
          samples_ms: number[];
          torch: string;
          threads: number;
          device?: string;
        };
        const outputs = Array.from({ length: spec.outputs }, (_, k) => {
          const b = readFileSync(join(dir, `out-${k}.f32`));
          return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
        });
        return {
          external: true,
          samples: res.samples_ms,
          outputs,
          version: `torch ${res.torch}`,
          note: [spec.note, cuda ? `on ${res.device}` : `${res.threads} threads`].filter(Boolean).join('; '),
        };
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
