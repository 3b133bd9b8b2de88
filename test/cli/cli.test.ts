// The bundled CLI, run as a user runs it: a separate process, real exit codes, no stack traces.

import { existsSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { bin, buildCli, emofuse } from '../helpers/cli.ts';

beforeAll(async () => {
  // Always test the current sources: rebuild the bundle (fast) rather than trust a stale dist/.
  await buildCli();
  expect(existsSync(bin)).toBe(true);
});

describe('emofuse CLI', () => {
  it('--version prints the package version', async () => {
    const r = await emofuse(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('--help lists the gpu command and the adapter setting', async () => {
    const r = await emofuse(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/gpu/);
    expect(r.stdout).toMatch(/EMOFUSE_ADAPTER/);
  });

  it('an unknown command fails with a hint, not a stack trace', async () => {
    const r = await emofuse(['frobnicate']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/unknown command/);
    expect(r.stderr).not.toMatch(/\s+at /);
  });

  it('refuses the null backend with a clear message and exit code 2', async () => {
    const r = await emofuse(['gpu'], { env: { EMOFUSE_ADAPTER: 'null' } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/'null' backend computes nothing/);
    expect(r.stderr).not.toMatch(/\s+at /);
  });

  it('gpu --check --json reports the adapter and every kernel compiled and matching its reference', async () => {
    const r = await emofuse(['gpu', '--check', '--json']);
    if (r.code === 2 && /No WebGPU adapter/.test(r.stderr) && process.env.EMOFUSE_REQUIRE_GPU !== '1') {
      console.log(`skipped: ${r.stderr}`);
      return;
    }
    expect(r.stderr).not.toMatch(/\s+at /);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    expect(report.adapter.backend).toMatch(/vulkan|opengles|opengl|metal|d3d12|d3d11/);
    expect(report.compiled.length).toBeGreaterThan(0);
    expect(report.compiled.every((c: { ok: boolean }) => c.ok)).toBe(true);
    expect(report.checks.length).toBeGreaterThan(0);
    expect(report.checks.every((c: { ok: boolean }) => c.ok)).toBe(true);
  });
});
