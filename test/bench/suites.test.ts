// `emofuse bench <suite> --quick`, run once per suite as a user runs it (bundled CLI, separate process):
// every one of our variants validates against the CPU reference and gets timed, peers either validate or
// say why they were skipped, and the JSON report names the adapter, the CPU and the versions.
// No timing is asserted: the samples only have to exist and be positive.

import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport } from '@emofuse/bench';
import { modelSettings } from '@emofuse/model';
import { openGpu } from '../helpers/gpu.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = `${root}packages/cli/dist/emofuse.js`;
const fixture = await openGpu();
const dir = mkdtempSync(join(tmpdir(), 'emofuse-bench-test-'));

beforeAll(async () => {
  await fixture.gpu?.destroy(); // the CLI opens its own device
  await run(process.execPath, [`${root}packages/cli/build.mjs`]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function benchQuick(
  suite: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<{ stdout: string; report: BenchReport }> {
  const out = join(dir, `${suite}.json`);
  const { stdout } = await run(process.execPath, [bin, 'bench', suite, '--quick', '--out', out, ...args], {
    timeout: 240_000,
    maxBuffer: 16 << 20,
    env: { ...process.env, ...env },
  });
  return { stdout, report: JSON.parse(readFileSync(out, 'utf8')) as BenchReport };
}

async function hasTorch(): Promise<boolean> {
  return run(process.env.EMOFUSE_PYTHON || 'python3', ['-c', 'import torch, numpy'], { timeout: 60_000 }).then(
    () => true,
    () => false,
  );
}

function expectValidated(report: BenchReport): void {
  expect(report.cases.length).toBeGreaterThan(0);
  expect(report.machine.cpu).not.toBe('');
  expect(String(report.machine.adapter.device ?? report.machine.adapter.description)).not.toBe('');
  expect(report.machine.versions['onnxruntime-node']).toMatch(/^\d+\.\d+\.\d+$/);
  for (const c of report.cases) {
    const base = c.variants.find((v) => v.name === c.baseline)!;
    expect(base.status, `${c.op} ${c.pass}: ${base.reason}`).toBe('ok');
    for (const v of c.variants) {
      const where = `${c.op} ${c.pass} ${v.name}`;
      if (v.kind === 'ours') expect(v.status, `${where}: ${v.reason}`).toBe('ok');
      expect(['ok', 'skipped'], `${where}: ${v.status} ${v.reason}`).toContain(v.status);
      if (v.status === 'skipped') expect(v.reason, where).toBeTruthy();
      if (v.status === 'ok') {
        expect(v.mismatches, where).toBe(0);
        // (a slow variant may run fewer than `iterations`; the harness test checks the exact counts)
        expect(v.samples!.length, where).toBeLessThanOrEqual(
          Math.max(report.options.iterations, v.samples!.length * (v.kind === 'peer' ? 1 : 0)),
        );
        expect(v.samples!.length, where).toBeGreaterThan(0);
        expect(
          v.samples!.every((s) => s > 0),
          where,
        ).toBe(true);
      }
    }
  }
}

describe.skipIf(!fixture.gpu)(`emofuse bench --quick on ${fixture.label}`, () => {
  it('attention: fused, unfused, reference and the peers validate and are timed', async () => {
    const { stdout, report } = await benchQuick('attention');
    expect(stdout).toMatch(/cross-attention fwd\+bwd/);
    expect(stdout).toMatch(/fused v\d \(ours\)\s.*baseline/);
    expectValidated(report);
    const fwd = report.cases.find((c) => c.pass === 'fwd')!;
    // ORT's CPU EP is bundled with onnxruntime-node: it must have run and matched the reference.
    expect(fwd.variants.find((v) => v.name === 'ORT MultiHeadAttention CPU')!.status).toBe('ok');
  });

  it('kernels: matmul, softmax and layer norm versions and their peers validate and are timed', async () => {
    // Without a usable python the PyTorch peer is skipped with the reason (and this file stays fast).
    const { stdout, report } = await benchQuick('kernels', { EMOFUSE_PYTHON: '/nonexistent/python3' });
    expect(stdout).toMatch(/matmul v1 \(ours\)/);
    expectValidated(report);
    const torch = report.cases[0]!.variants.find((v) => v.name.startsWith('PyTorch'))!;
    expect(torch.status).toBe('skipped');
    expect(torch.reason).toMatch(/pip install torch/);
    expect(report.cases.map((c) => c.op)).toEqual(['matmul', 'softmax', 'layer-norm']);
  });

  it('train: the wgsl and cpu backends and the PyTorch twin match the float64 backend on the first two losses and are timed', async () => {
    const { stdout, report } = await benchQuick('train');
    expect(stdout).toMatch(/wgsl \(ours\)\s.*baseline/);
    expectValidated(report);
    expect(report.cases[0]!.variants.find((v) => v.name === 'cpu f32 (ours)')!.status).toBe('ok');
    // The PyTorch twin (python/fusion_twin.py) must validate wherever torch imports; skipped with the reason only without it.
    const twin = report.cases[0]!.variants.find((v) => v.name === 'PyTorch CPU')!;
    if (await hasTorch()) {
      expect(twin.status, twin.reason).toBe('ok');
      expect(twin.version).toMatch(/^torch /);
    } else {
      expect(twin.status).toBe('skipped');
      expect(twin.reason).toMatch(/pip install torch/);
    }
  });

  // its clips are EmoDB's: without the offline assets (a bare clone) every variant is skipped with that reason instead
  it.runIf(existsSync(join(modelSettings.assetsDir, 'emodb')))(
    'extract: reading audio and each encoder are timed in utterances/s; a model that is not there is skipped',
    async () => {
      const models = `${root}test/fixtures/models`;
      const encoders = ['hash', 'logmel', `bert:${models}/tiny-random-bert`, `ast:${models}/tiny-random-ast`, 'bert:/nonexistent/bert'];
      const md = join(dir, 'extract.md');
      const { stdout, report } = await benchQuick('extract', {}, ['--encoders', encoders.join(','), '--markdown', md]);
      // The Markdown tables (README's Performance section) have a row per case, our variant in bold.
      expect(readFileSync(md, 'utf8')).toMatch(
        /\| read audio decode\+resample .*\|\n\|---\|---:\|\n\| B=4 \| \*\*[\d.]+\*\* \[[\d.]+\] \|/,
      );
      expect(stdout).toMatch(/read audio decode\+resample/);
      expect(report.cases.map((c) => c.op)).toEqual([
        'read audio',
        ...encoders.map((e) => `${/^(logmel|ast)/.test(e) ? 'audio' : 'text'} encoder ${e}`),
      ]);
      for (const c of report.cases.slice(0, -1)) {
        const v = c.variants[0]!;
        expect(v.status, `${c.op}: ${v.reason}`).toBe('ok');
        expect(v.mismatches).toBe(0);
        expect(v.rate).toBeGreaterThan(0);
      }
      const missing = report.cases.at(-1)!.variants[0]!;
      expect(missing.status).toBe('skipped');
      expect(missing.reason).toMatch(/not found|searched/);
    },
  );
});
