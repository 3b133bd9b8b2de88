// The browser half of "one function for Node and browsers": the kernels bundled for the web, run in headless
// Chromium (WebGPU on SwiftShader, no GPU needed), acquired through navigator.gpu, every op checked against its
// CPU reference. Skipped, with the reason, where no Chromium is installed (CI installs it).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { CHROMIUM, CHROMIUM_FLAGS } from './chromium.ts';

const skipReason = CHROMIUM ? '' : 'no Chromium (apt-get install chromium)';
if (!CHROMIUM && process.env.EMOFUSE_REQUIRE_BROWSER === '1') throw new Error('EMOFUSE_REQUIRE_BROWSER=1 but no Chromium found');

let server: Server | undefined;
let browser: ChildProcess | undefined;
const profile = mkdtempSync(join(tmpdir(), 'emofuse-chromium-'));
afterAll(async () => {
  if (browser && browser.exitCode === null && browser.signalCode === null) {
    const exited = new Promise((r) => browser!.once('exit', r));
    // the whole process group: Chromium's GPU, renderer and crashpad children otherwise outlive it and keep
    // writing into the profile while it is removed (a CI run failed here with the profile folder not yet empty)
    try {
      process.kill(-browser.pid!, 'SIGKILL');
    } catch {
      browser.kill('SIGKILL');
    }
    await exited;
  }
  server?.close();
  try {
    rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 300 });
  } catch (err) {
    console.warn(`left the Chromium profile ${profile}: ${(err as Error).message}`); // a temp folder, not a result
  }
});

describe.skipIf(!CHROMIUM)(`kernels in headless Chromium${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('acquires an adapter through navigator.gpu, compiles every kernel and matches every reference', async () => {
    const bundled = await build({
      entryPoints: [fileURLToPath(new URL('./page.ts', import.meta.url))],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'browser',
      target: 'chrome120',
      loader: { '.wgsl': 'text' },
      conditions: ['@emofuse/source'], // the workspace packages' sources, not their built dist/
      external: ['webgpu'], // Dawn for Node: never reached in a browser
      logLevel: 'silent',
    });
    const script = bundled.outputFiles[0]!.text;
    const html =
      `<!doctype html><meta charset="utf-8"><title>emofuse</title>` + `<script>${script.replace(/<\/script/g, '<\\/script')}</script>`;

    const report = await new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no report from Chromium within 90 s')), 90_000);
      server = createServer((req, res) => {
        if (req.method === 'POST' && req.url === '/result') {
          let body = '';
          req.on('data', (c) => (body += c));
          req.on('end', () => {
            res.end('ok');
            clearTimeout(timer);
            resolve(JSON.parse(body));
          });
          return;
        }
        res.setHeader('content-type', 'text/html');
        res.end(html);
      }).listen(0, '127.0.0.1', () => {
        const { port } = server!.address() as { port: number };
        browser = spawn(
          CHROMIUM!,
          [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/`],
          { stdio: 'ignore', detached: true }, // its own process group, killed whole in afterAll
        );
        browser.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`Chromium exited (${code}) before reporting`));
        });
      });
    });

    expect(report.error, String(report.error)).toBeUndefined();
    const a = report.adapter;
    console.log(
      `browser adapter: vendor '${a.vendor}', architecture '${a.architecture}', device '${a.device}'${a.isSoftware ? ' (software)' : ''}`,
    );
    expect(a.backend).toBe('browser');
    const failedCompiles = report.compiled.filter((c: { ok: boolean }) => !c.ok);
    expect(failedCompiles, JSON.stringify(failedCompiles)).toEqual([]);
    const failedChecks = report.checks.filter((c: { ok: boolean }) => !c.ok);
    expect(failedChecks, JSON.stringify(failedChecks)).toEqual([]);
    expect(report.checks.length).toBeGreaterThan(5);
  });
});
