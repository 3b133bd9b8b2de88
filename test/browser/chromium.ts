// Headless Chromium driven over the DevTools protocol (a pipe, no extra package), for the browser tests of the demo
// page: `openPage(url, { fakeMicrophone })` starts Chromium (WebGPU on SwiftShader, as webgpu-browser.test.ts), opens
// the URL and gives back `page(expression)` (evaluates in the page, awaiting a promise, returns its JSON value),
// `waitFor`, `chooseFile` (a file on a file input, as a user choosing it) and `close`.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'].find((p) => existsSync(p));

/** The Chrome DevTools Protocol over --remote-debugging-pipe: JSON messages ended by NUL on fds 3 (in) and 4 (out). */
export class Cdp {
  private next = 1;
  private pending = new Map<number, { ok: (v: any) => void; fail: (e: Error) => void; method: string }>();
  private buf = '';
  constructor(private readonly proc: ChildProcess) {
    const out = proc.stdio[4] as NodeJS.ReadableStream;
    for (const fd of [3, 4]) (proc.stdio[fd] as NodeJS.EventEmitter).on('error', () => {}); // the browser is killed at the end
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buf += chunk;
      for (;;) {
        const end = this.buf.indexOf('\0');
        if (end < 0) break;
        const msg = JSON.parse(this.buf.slice(0, end));
        this.buf = this.buf.slice(end + 1);
        const p = msg.id ? this.pending.get(msg.id) : undefined;
        if (!p) continue;
        this.pending.delete(msg.id);
        if (msg.error) p.fail(new Error(`${p.method}: ${msg.error.message}`));
        else p.ok(msg.result);
      }
    });
  }
  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<any> {
    const id = this.next++;
    return new Promise((ok, fail) => {
      this.pending.set(id, { ok, fail, method });
      (this.proc.stdio[3] as NodeJS.WritableStream).write(
        JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + '\0',
      );
    });
  }
}

export interface OpenPage {
  cdp: Cdp;
  session: string;
  page<T = unknown>(expression: string): Promise<T>;
  /** Polls `expression` until it is true; on timeout the error carries `state` (an expression) evaluated. */
  waitFor(expression: string, what: string, ms?: number, state?: string): Promise<void>;
  chooseFile(inputId: string, file: string): Promise<void>;
  close(): Promise<void>;
}

/** Headless Chromium with WebGPU on Vulkan (SwiftShader or lavapipe here): the flags every browser test starts it with. */
export const CHROMIUM_FLAGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,VulkanFromANGLE',
  '--use-angle=vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** getUserMedia captures `wav` (looped), without a permission prompt. */
export const fakeMicrophoneFlags = (wav: string): string[] => [
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  `--use-file-for-fake-audio-capture=${wav}`,
];

/** Chromium on `url`; `fakeMicrophone`: a WAV file getUserMedia captures (looped), without a permission prompt. */
export async function openPage(url: string, o: { profile: string; fakeMicrophone?: string }): Promise<OpenPage> {
  const browser = spawn(
    CHROMIUM!,
    [
      ...CHROMIUM_FLAGS,
      '--window-size=900,1000',
      `--user-data-dir=${o.profile}`,
      '--remote-debugging-pipe',
      'about:blank',
      ...(o.fakeMicrophone ? fakeMicrophoneFlags(o.fakeMicrophone) : []),
    ],
    { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'], detached: true },
  );
  const cdp = new Cdp(browser);
  const { targetId } = await cdp.send('Target.createTarget', { url: 'about:blank' });
  const { sessionId: session } = await cdp.send('Target.attachToTarget', { targetId, flatten: true });
  await cdp.send('Emulation.setDeviceMetricsOverride', { width: 900, height: 1000, deviceScaleFactor: 1, mobile: false }, session);
  await cdp.send('Page.navigate', { url }, session);
  const page = async <T = unknown>(expression: string): Promise<T> => {
    const r = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, session);
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  };
  const waitFor = async (expression: string, what: string, ms = 60_000, state = 'window.emofuseDemo') => {
    const until = Date.now() + ms;
    while (!(await page<boolean>(expression))) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; page state: ${JSON.stringify(await page(state))}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return {
    cdp,
    session,
    page,
    waitFor,
    async chooseFile(inputId, file) {
      const r = await cdp.send('Runtime.evaluate', { expression: `document.getElementById('${inputId}')` }, session);
      await cdp.send('DOM.setFileInputFiles', { files: [file], objectId: r.result.objectId }, session);
    },
    async close() {
      if (browser.exitCode === null && browser.signalCode === null) {
        const exited = new Promise((r) => browser.once('exit', r));
        try {
          process.kill(-browser.pid!, 'SIGKILL'); // its whole process group (GPU, renderer, utility processes)
        } catch {
          browser.kill('SIGKILL');
        }
        await exited;
      }
      rmSync(join(o.profile), { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    },
  };
}

/** `emofuse demo` (`bin`, the built CLI) on a free port with `args` (e.g. `--checkpoint c`): the process and the URL it prints. */
export function startDemo(bin: string, args: readonly string[] = []): Promise<{ server: ChildProcess; url: string }> {
  const server = spawn(process.execPath, [bin, 'demo', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((ok, fail) => {
    let out = '';
    let err = '';
    server.stdout!.on('data', (c) => {
      out += c;
      const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
      if (m) ok({ server, url: m[0] });
    });
    server.stderr!.on('data', (c) => (err += c));
    server.on('exit', (code) => fail(new Error(`emofuse demo exited (${code}): ${err}`)));
  });
}

/** Kills a demo server still running and waits for it to exit. */
export async function stopDemo(server: ChildProcess | undefined): Promise<void> {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGKILL');
  await exited;
}

/** A line of analyze's segments.jsonl or the demo page's state.segments: the same shape. */
export interface DemoSegment {
  start: number;
  end: number;
  status: string;
  text: string;
  emotion: string | null;
  probabilities: Record<string, number> | null;
}

/** The largest |difference| between two probability tables over the same classes (checked to be the same). */
export function maxDiff(a: Record<string, number>, b: Record<string, number>): number {
  expect(Object.keys(a)).toEqual(Object.keys(b));
  return Math.max(...Object.keys(a).map((k) => Math.abs(a[k]! - b[k]!)));
}
