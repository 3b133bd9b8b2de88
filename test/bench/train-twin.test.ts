// The PyTorch twin of `bench train` as a step server (python/fusion_twin.py --serve) inside the harness's
// rounds: the line protocol on a stand-in child (no torch needed), then the real twin at the --quick shape
// beside our f32 CPU backend (skipped without a python that imports torch: $EMOFUSE_PYTHON or python3).

import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { Gpu } from '@emofuse/kernels';
import { LineServer, runCase, trainCases } from '@emofuse/bench';

const python = process.env.EMOFUSE_PYTHON || 'python3';
const hasTorch = await promisify(execFile)(python, ['-c', 'import torch'], { timeout: 60_000 }).then(
  () => true,
  () => false,
);

/** A stand-in server: answers `run <k>` with `done <k>`, anything else with a message on stderr and exit 1. */
const fake = () =>
  new LineServer(
    'fake',
    spawn(
      process.execPath,
      [
        '-e',
        `
    console.log('ready {}');
    require('readline').createInterface({ input: process.stdin }).on('line', (l) => {
      const m = /^run (\\d+)$/.exec(l);
      if (!m) { console.error('bad request: ' + l); process.exit(1); }
      console.log('done ' + m[1]);
    });`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    ),
    5_000,
  );

describe('twin server protocol', () => {
  it('one answer line per request line, in order', async () => {
    const s = fake();
    expect(await s.request()).toBe('ready {}');
    expect([await s.request('run 2'), await s.request('run 0')]).toEqual(['done 2', 'done 0']);
    await s.close();
  });

  it('a server that exits answers with its last stderr line', async () => {
    const s = fake();
    await s.request();
    await expect(s.request('jump 1')).rejects.toThrow('fake exited: bad request: jump 1');
  });

  it('a python that does not exist is an error, not a hang', async () => {
    const s = new LineServer('nopy', spawn('/nonexistent/python3', [], { stdio: ['pipe', 'pipe', 'pipe'] }), 5_000);
    await expect(s.request()).rejects.toThrow(/ENOENT/);
  });
});

describe.skipIf(!hasTorch)(`the PyTorch twin (${python}) in the rounds`, () => {
  it('validates, then runs one step per round alternating with ours; the paired ratio is reported', async () => {
    const noGpu = { adapter: { device: 'none' } } as unknown as Gpu;
    const c = trainCases(noGpu, true, 2)[0]!;
    const cpu = c.variants.find((v) => v.name === 'cpu f32 (ours)')!;
    const twin = c.variants.find((v) => v.kind === 'peer')!;
    const r = await runCase(
      { ...c, variants: [{ ...cpu, iterations: undefined, warmup: undefined }, twin], baseline: cpu.name },
      { warmup: 1, iterations: 3, sets: 2 },
    );
    const t = r.variants[1]!;
    expect(t.status, t.reason).toBe('ok');
    expect(t.mismatches).toBe(0);
    expect(t.version).toMatch(/^torch /);
    expect(t.rounds).toEqual([0, 1, 2]);
    expect(r.order).toEqual([
      [cpu.name, twin.name],
      [twin.name, cpu.name],
      [cpu.name, twin.name],
    ]);
    expect(t.pairedRatio!.rounds).toBe(3);
    expect(r.peerRatios!.map((p) => [p.ours, p.peer, p.rounds])).toEqual([[cpu.name, twin.name, 3]]);
  });
});
