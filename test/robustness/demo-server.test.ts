// `emofuse demo`'s server is a network service (packages/cli/src/demo-server.ts): every request, however malformed,
// gets a well-formed status or a closed connection, nothing outside its roots is ever served (symlinks included),
// foreign Host headers (DNS rebinding) get nothing, slow clients are cut off, and it stays up. Requests go over raw
// sockets (net.Socket), so nothing between the test and the server normalises them. A request fuzzer (fast-check:
// raw request bytes, URL paths; EMOFUSE_FUZZ_RUNS raises the count) and a load test (autocannon against the server
// alone in a child process; EMOFUSE_LOAD_SECONDS, EMOFUSE_LOAD_CONNECTIONS raise it) print their numbers; no test
// asserts a rate, only errors and bounds.

import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { build } from 'esbuild';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, createDemoServer, hostAllowed, urlPath } from '../../packages/cli/src/demo-server.ts';
import { root } from '../helpers/cli.ts';
import { fuzzRuns } from '../helpers/fuzz.ts';

/** In every file outside the roots, and in none inside: a response that carries it was served from outside. */
const SECRET = 'SECRET-OUTSIDE-THE-ROOT';
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-demo-server-'));
const www = join(tmp, 'www');
/** Test limits: short timeouts so the slow-client cases take a second, few connections. */
const LIMITS = {
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  keepAliveTimeoutMs: 300,
  idleSocketMs: 5000,
  maxConnections: 64,
  logLinesPerSecond: 1e6, // every line kept: a test looks for its own (the throttle has its own test)
};

let server: Server;
let port = 0;
const logged: string[] = [];

beforeAll(async () => {
  mkdirSync(join(www, 'sub'), { recursive: true });
  writeFileSync(join(tmp, 'secret.txt'), SECRET);
  writeFileSync(join(tmp, 'page.html'), '<!doctype html><p>page</p>');
  writeFileSync(join(www, 'a.txt'), 'hello a');
  writeFileSync(join(www, 'm.wasm'), Buffer.from([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]));
  writeFileSync(join(www, 'sub', 'b.json'), '{"b":1}');
  writeFileSync(join(www, 'sub', 'x.mjs'), 'export default 1;');
  writeFileSync(join(www, 'noext'), 'bytes');
  writeFileSync(join(www, '.hidden'), 'hidden');
  writeFileSync(join(www, 'big.bin'), Buffer.alloc(1 << 20, 7));
  symlinkSync(join(tmp, 'secret.txt'), join(www, 'link-out')); // a file symlink out of the root
  symlinkSync(tmp, join(www, 'up')); // a folder symlink out of the root: /r/up/secret.txt
  symlinkSync(join(www, 'a.txt'), join(www, 'link-in')); // a symlink that stays inside: served
  execFileSync('mkfifo', [join(www, 'fifo')]);
  server = createDemoServer({
    files: { '/': join(tmp, 'page.html'), '/checkpoint': null, '/gone': join(tmp, 'missing') },
    roots: { '/r/': www, '/none/': null },
    json: { '/api/info': { ok: true }, '/api/broken': { n: 1n } }, // a BigInt: JSON.stringify throws (500)
    limits: LIMITS,
    log: (line) => logged.push(line),
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((ok) => server?.close(ok));
  rmSync(tmp, { recursive: true, force: true });
});

interface Reply {
  /** Everything the server sent before it closed (or before the test stopped waiting). */
  raw: Buffer;
  /** Status codes of every response in it, in order. */
  statuses: number[];
  /** The connection was closed by the server (false: the test gave up waiting after `waitMs`). */
  closed: boolean;
  ms: number;
}

/**
 * `bytes` over a fresh TCP connection and everything the server sends until it closes (or `waitMs`). The client
 * sends nothing more; with `settleMs` it half-closes once a whole response has arrived, or after that long with
 * nothing, so a keep-alive connection or a half request ends at once instead of at the server's timeouts (Node
 * drops a request still unanswered when its client half-closes: a close, which every property allows).
 */
function send(bytes: string | Buffer, o: { waitMs?: number; settleMs?: number } = {}): Promise<Reply> {
  // A HEAD request's answer has a Content-Length and no body.
  const headRequest = Buffer.from(bytes).subarray(0, 5).toString('latin1') === 'HEAD ';
  return new Promise((ok, fail) => {
    const t0 = performance.now();
    const sock = new Socket();
    const chunks: Buffer[] = [];
    let settle: NodeJS.Timeout | undefined;
    const done = (closed: boolean) => {
      clearTimeout(timer);
      clearTimeout(settle);
      sock.destroy();
      const raw = Buffer.concat(chunks);
      try {
        ok({ raw, statuses: parse(raw, headRequest, true).statuses, closed, ms: performance.now() - t0 });
      } catch (err) {
        fail(err);
      }
    };
    const timer = setTimeout(() => done(false), o.waitMs ?? 5000);
    const halfClose = () => sock.end();
    sock.on('data', (c) => {
      chunks.push(c);
      if (o.settleMs === undefined) return;
      const { statuses, complete } = parse(Buffer.concat(chunks), headRequest, false);
      if (statuses.length && complete) halfClose();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => (err.code === 'ECONNRESET' || err.code === 'EPIPE' ? undefined : fail(err)));
    sock.on('close', () => done(true));
    sock.connect(port, '127.0.0.1', () => {
      sock.write(bytes);
      if (o.settleMs !== undefined) settle = setTimeout(halfClose, o.settleMs);
    });
  });
}

/**
 * Status codes of the responses in a raw reply, and whether it ends at the end of a response. `strict`: throws on
 * anything that is not well-formed HTTP/1.1 responses, a truncated one included.
 */
function parse(raw: Buffer, headRequest: boolean, strict: boolean): { statuses: number[]; complete: boolean } {
  const statuses: number[] = [];
  let at = 0;
  while (at < raw.length) {
    const headEnd = raw.indexOf('\r\n\r\n', at);
    if (headEnd < 0) {
      if (strict) throw new Error(`a truncated response head: ${JSON.stringify(raw.subarray(at, at + 200).toString('latin1'))}`);
      return { statuses, complete: false };
    }
    const text = raw.subarray(at, headEnd).toString('latin1');
    const m = /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*(\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+: [^\r\n]*)*$/.exec(text);
    if (!m) throw new Error(`not a well-formed response head: ${JSON.stringify(text.slice(0, 300))}`);
    statuses.push(Number(m[1]));
    const length = /\r\ncontent-length: (\d+)/i.exec(text);
    // Every answer of ours has a Content-Length (HEAD: the length of what GET would send, and no body).
    at = headEnd + 4 + (length && !(headRequest && statuses.length === 1) ? Number(length[1]) : 0);
  }
  if (strict && at > raw.length) throw new Error(`a truncated body: ${at - raw.length} bytes missing`);
  return { statuses, complete: at === raw.length };
}

const host = () => `127.0.0.1:${port}`;
const get = (target: string, headers = `Host: ${host()}`, method = 'GET') =>
  send(`${method} ${target} HTTP/1.1\r\n${headers}\r\nConnection: close\r\n\r\n`);
/** Body of a single response. */
const body = (r: Reply) => r.raw.subarray(r.raw.indexOf('\r\n\r\n') + 4).toString();
const header = (r: Reply, name: string) =>
  new RegExp(`\r\n${name}: ([^\r\n]*)`, 'i').exec(r.raw.subarray(0, r.raw.indexOf('\r\n\r\n')).toString())?.[1];

/** The server still answers a plain request. */
async function stillUp(): Promise<void> {
  const r = await get('/r/a.txt');
  expect(r.statuses).toEqual([200]);
  expect(body(r)).toBe('hello a');
}

describe('demo server: what it serves', () => {
  it('serves the exact paths, the roots and JSON with the right Content-Type and security headers on every answer', async () => {
    const cases: [string, number, string][] = [
      ['/', 200, 'text/html; charset=utf-8'],
      ['/r/a.txt', 200, 'text/plain; charset=utf-8'],
      ['/r/m.wasm', 200, 'application/wasm'],
      ['/r/sub/b.json', 200, 'application/json; charset=utf-8'],
      ['/r/sub/x.mjs', 200, 'text/javascript; charset=utf-8'],
      ['/r/noext', 200, 'application/octet-stream'],
      ['/r/link-in', 200, 'application/octet-stream'], // a symlink inside the root: its target's bytes
      ['/r/a.txt?v=1', 200, 'text/plain; charset=utf-8'],
      ['/r/%61.txt', 200, 'text/plain; charset=utf-8'],
      ['/api/info', 200, 'application/json; charset=utf-8'],
      ['/r/missing.txt', 404, 'text/plain; charset=utf-8'],
      ['/checkpoint', 404, 'text/plain; charset=utf-8'], // a file the server was told is not available
      ['/gone', 404, 'text/plain; charset=utf-8'],
    ];
    for (const [target, status, type] of cases) {
      const r = await get(target);
      expect(r.statuses, target).toEqual([status]);
      expect(header(r, 'content-type'), target).toBe(type);
      expect(header(r, 'x-content-type-options'), target).toBe('nosniff');
      expect(header(r, 'content-security-policy'), target).toBe(CONTENT_SECURITY_POLICY);
      expect(header(r, 'cross-origin-opener-policy'), target).toBe('same-origin');
      expect(header(r, 'cross-origin-embedder-policy'), target).toBe('require-corp');
      expect(header(r, 'cross-origin-resource-policy'), target).toBe('same-origin');
      expect(Number(header(r, 'content-length')), target).toBe(Buffer.byteLength(body(r)));
    }
    expect(body(await get('/r/link-in'))).toBe('hello a');
    // Out through a symlinked folder and back in: the file it reaches is inside the root, so it is served.
    expect(body(await get('/r/up/www/a.txt'))).toBe('hello a');
    expect(JSON.parse(body(await get('/api/info')))).toEqual({ ok: true });
    expect(CONTENT_SECURITY_POLICY).toMatch(/frame-ancestors 'none'/);
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/'unsafe-eval'/);
  });

  it('answers HEAD with the headers and length, no body', async () => {
    const r = await get('/r/big.bin', `Host: ${host()}`, 'HEAD');
    expect(r.statuses).toEqual([200]);
    expect(header(r, 'content-length')).toBe(String(1 << 20));
    expect(body(r)).toBe('');
  });

  it('a 1 MiB file arrives whole', async () => {
    const r = await get('/r/big.bin');
    expect(r.statuses).toEqual([200]);
    expect(r.raw.length - (r.raw.indexOf('\r\n\r\n') + 4)).toBe(1 << 20);
  });
});

describe('demo server: never outside its roots', () => {
  const outside = [
    '/r/../secret.txt',
    '/r/%2e%2e/secret.txt',
    '/r/%2E%2E/secret.txt',
    '/r/%2e%2e%2fsecret.txt',
    '/r/..%2fsecret.txt',
    '/r/..%5csecret.txt',
    '/r/..\\secret.txt',
    '/r/%5c..%5csecret.txt',
    '/r/./../secret.txt',
    '/r//../secret.txt',
    '/r/sub/../../secret.txt',
    '/r/%252e%252e/secret.txt', // double encoding: one decode leaves '%2e%2e', a name that does not exist
    '/r/%c0%ae%c0%ae/secret.txt', // overlong UTF-8 dots: bad percent-encoding
    '/r/link-out', // a symlink to a file outside
    '/r/up/secret.txt', // through a symlinked folder
    '/r/a.txt%00.html',
    '/r/%00',
    '//etc/passwd',
    '/r//etc/passwd',
    '/r/%2fetc%2fpasswd',
    '/none/secret.txt',
    '/../secret.txt',
    '/r/.hidden',
    `/r/${'../'.repeat(20)}etc/passwd`,
  ];
  for (const target of outside) {
    it(`${target}: 4xx, nothing from outside`, async () => {
      const r = await get(target);
      expect(r.statuses).toHaveLength(1);
      expect(r.statuses[0]).toBeGreaterThanOrEqual(400);
      expect(r.statuses[0]).toBeLessThan(500);
      expect(r.raw.toString()).not.toContain(SECRET);
      expect(r.raw.toString()).not.toContain('root:');
    });
  }

  it('no directory listings: a folder, with or without its slash, is 404', async () => {
    for (const target of ['/r/', '/r/sub', '/r/sub/', '/r/up', '/none/']) expect((await get(target)).statuses, target).toEqual([404]);
  });

  it('a FIFO inside the root is 404 at once, not a request that hangs', async () => {
    const r = await get('/r/fifo');
    expect(r.statuses).toEqual([404]);
    expect(r.ms).toBeLessThan(2000);
    await stillUp();
  });

  it('urlPath refuses what could leave a folder, after decoding', () => {
    for (const bad of [
      '',
      '*',
      'http://x/a',
      '//x/a',
      '/%',
      '/%zz',
      '/a/%2e%2e/b',
      '/a/../b',
      '/a/./b',
      '/a\\b',
      '/a%5cb',
      '/a%00b',
      '/a%0ab',
    ])
      expect(urlPath(bad), bad).toBeNull();
    expect(urlPath('/a/b%20c.txt?x=%zz#f')).toBe('/a/b c.txt');
    expect(urlPath('/')).toBe('/');
  });
});

describe('demo server: the Host header (DNS rebinding)', () => {
  it('serves localhost, 127.0.0.1 and [::1] with its port, refuses every other name or port with 421', async () => {
    for (const h of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`])
      expect((await get('/r/a.txt', `Host: ${h}`)).statuses, h).toEqual([200]);
    const foreign = [
      `evil.example:${port}`,
      `localhost.evil.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `127.0.0.1:${port + 1}`,
      '127.0.0.1',
      'localhost',
      `127.0.0.1:${port}:1`,
      `user@127.0.0.1:${port}`,
      `127.1:${port}`,
      `[::ffff:127.0.0.1]:${port}`,
      `0.0.0.0:${port}`,
      '',
    ];
    for (const h of foreign) {
      const r = await get('/r/a.txt', `Host: ${h}`);
      expect(r.statuses, h).toEqual([421]);
      expect(body(r)).not.toContain('hello a');
    }
    // Two Host headers, even two good ones: 400 (RFC 9112 3.2).
    expect((await get('/r/a.txt', `Host: ${host()}\r\nHost: ${host()}`)).statuses).toEqual([400]);
    const two = await get('/r/a.txt', `Host: ${host()}\r\nHost: evil.example:${port}`);
    expect(two.statuses).toEqual([400]);
  });

  it('no Host: 400, in HTTP/1.1 and 1.0', async () => {
    expect((await send('GET /r/a.txt HTTP/1.1\r\nConnection: close\r\n\r\n')).statuses).toEqual([400]);
    expect((await send('GET /r/a.txt HTTP/1.0\r\n\r\n')).statuses).toEqual([400]);
  });

  it('hostAllowed: the bound host is accepted too', () => {
    expect(hostAllowed('192.168.1.5:8765', '192.168.1.5', 8765)).toBe(true);
    expect(hostAllowed('[fe80::1]:8765', 'fe80::1', 8765)).toBe(true);
    expect(hostAllowed('localhost', '127.0.0.1', 80)).toBe(true);
    expect(hostAllowed('evil.example', '127.0.0.1', 80)).toBe(false);
    expect(hostAllowed(undefined, '127.0.0.1', 80)).toBe(false);
  });
});

describe('demo server: methods and malformed requests', () => {
  it('methods other than GET and HEAD: 405 with Allow', async () => {
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND']) {
      const r = await get('/r/a.txt', `Host: ${host()}\r\nContent-Length: 0`, m);
      expect(r.statuses, m).toEqual([405]);
      expect(header(r, 'allow')).toBe('GET, HEAD');
    }
    // CONNECT has no listener: Node closes the connection without an answer.
    const c = await send(`CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: ${host()}\r\n\r\n`);
    expect(c.closed).toBe(true);
    expect(c.statuses.every((s) => s >= 400)).toBe(true);
    await stillUp();
  });

  const malformed: [string, string | Buffer][] = [
    ['garbage', 'GARBAGE\r\n\r\n'],
    ['no target', 'GET\r\n\r\n'],
    ['no version', 'GET /\r\n\r\n'],
    ['HTTP/9.9', `GET / HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n`],
    ['spaces in the target', `GET /r/a b.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['NUL in the request line', `GET /r/a\0.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['a bare LF request', 'GET /r/a.txt HTTP/1.1\nHost: 127.0.0.1\n\n'],
    ['header without colon', `GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n`],
    ['bad Content-Length', `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n`],
    ['two Content-Lengths', `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n`],
    ['smuggling: CL and TE', `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`],
    ['bad chunk size', `POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`],
    ['binary', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0xff, 0xfe])], // a TLS ClientHello
    ['a lone CRLF', '\r\n'],
    ['absolute-form', `GET http://127.0.0.1/r/a.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['authority-form GET', `GET 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['asterisk', `GET * HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['bad percent-encoding', `GET /r/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['a lone %', `GET /r/% HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['invalid UTF-8', `GET /r/%ff%fe HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
    ['obsolete line folding', `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\r\n b\r\n\r\n`],
  ];
  for (const [name, bytes] of malformed) {
    it(`${name}: a 4xx or a closed connection, and the server stays up`, async () => {
      // The right Host (with the port), and no keep-alive, so each answer is about what the case has wrong.
      const fix = (b: string) => b.replaceAll('Host: 127.0.0.1\r', `Host: ${host()}\r\nConnection: close\r`);
      const r = await send(typeof bytes === 'string' ? fix(bytes) : bytes);
      expect(r.closed).toBe(true);
      for (const s of r.statuses) expect(s >= 400 && s < 500, `${name}: ${s}`).toBe(true);
      expect(r.statuses.length <= 1).toBe(true);
      await stillUp();
    });
  }

  it('a very long URL: 414 up to the header limit, 431 beyond', async () => {
    expect((await get(`/r/${'a'.repeat(3000)}`)).statuses).toEqual([414]);
    expect((await get(`/r/${'a'.repeat(20_000)}`)).statuses).toEqual([431]);
    await stillUp();
  });

  it('huge headers: 431', async () => {
    expect((await get('/r/a.txt', `Host: ${host()}\r\nX-Big: ${'x'.repeat(20_000)}`)).statuses).toEqual([431]);
    const many = Array.from({ length: 2000 }, (_, i) => `X-H${i}: ${'y'.repeat(10)}`).join('\r\n');
    expect((await get('/r/a.txt', `Host: ${host()}\r\n${many}`)).statuses).toEqual([431]);
    await stillUp();
  });

  it('an error inside one request is a 500 and one log line, not a crash', async () => {
    const before = logged.length;
    const r = await get('/api/broken');
    expect(r.statuses).toEqual([500]);
    expect(body(r)).toBe('internal error\n');
    expect(logged.slice(before).some((l) => /GET \/api\/broken: .*BigInt/.test(l))).toBe(true);
    await stillUp();
  });
});

describe('demo server: the log', () => {
  it('at most logLinesPerSecond lines a second; the next line that passes counts the rest', async () => {
    const lines: string[] = [];
    const quiet = createDemoServer({ files: {}, roots: {}, limits: { logLinesPerSecond: 2 }, log: (l) => lines.push(l) });
    await new Promise<void>((ok) => quiet.listen(0, '127.0.0.1', ok));
    const p = (quiet.address() as AddressInfo).port;
    const junk = () =>
      new Promise<void>((ok) => {
        const s = new Socket();
        s.on('error', () => {});
        s.on('close', () => ok());
        s.resume(); // read (and drop) the answer, so the server's close arrives
        s.connect(p, '127.0.0.1', () => s.write('GARBAGE\r\n\r\n'));
      });
    // Aligned to the start of a second, so the first five fall in one.
    await new Promise((ok) => setTimeout(ok, 1000 - (Date.now() % 1000) + 20));
    for (let i = 0; i < 5; i++) await junk();
    await new Promise((ok) => setTimeout(ok, 1000 - (Date.now() % 1000) + 20));
    await junk();
    quiet.close();
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^emofuse demo: refused a request from 127\.0\.0\.1: 400 \(HPE_/);
    expect(lines[2]).toMatch(/\(3 more not shown\)$/);
  });
});

describe('demo server: slow and many clients', () => {
  it('a client that sends half a request and waits is cut off (408, closed) after the headers timeout', async () => {
    const r = await send(`GET /r/a.txt HTTP/1.1\r\nHost: ${host()}\r\n`, { waitMs: 5000 });
    expect(r.closed).toBe(true);
    expect(r.statuses).toEqual([408]);
    await stillUp();
  });

  it('a client that trickles its headers byte by byte (slowloris) is cut off too', async () => {
    const sock = new Socket();
    const closed = new Promise<number>((ok) => {
      const t0 = performance.now();
      sock.on('close', () => ok(performance.now() - t0));
      sock.on('error', () => {});
    });
    await new Promise<void>((ok) => sock.connect(port, '127.0.0.1', ok));
    const line = `GET /r/a.txt HTTP/1.1\r\nHost: ${host()}\r\nX-Slow: ${'z'.repeat(200)}`;
    let i = 0;
    const timer = setInterval(() => (i < line.length && !sock.destroyed ? sock.write(line[i++]!) : undefined), 20);
    const ms = await Promise.race([closed, new Promise<number>((ok) => setTimeout(() => ok(Number.POSITIVE_INFINITY), 5000))]);
    clearInterval(timer);
    sock.destroy();
    expect(i).toBeLessThan(line.length); // cut off before it finished
    expect(ms).toBeLessThan(5000);
  });

  it('an idle keep-alive connection is closed', async () => {
    const r = await send(`GET /r/a.txt HTTP/1.1\r\nHost: ${host()}\r\n\r\n`, { waitMs: 5000 });
    expect(r.statuses).toEqual([200]);
    expect(r.closed).toBe(true);
  });

  it('connections beyond maxConnections are closed at once; the server serves again after', async () => {
    const socks = await Promise.all(
      Array.from(
        { length: LIMITS.maxConnections + 16 },
        () =>
          new Promise<Socket>((ok) => {
            const s = new Socket();
            s.on('error', () => {});
            s.resume();
            s.connect(port, '127.0.0.1', () => ok(s));
          }),
      ),
    );
    await new Promise((ok) => setTimeout(ok, 200));
    const open = socks.filter((s) => !s.destroyed && s.readyState === 'open').length;
    for (const s of socks) s.destroy();
    expect(open).toBeLessThan(socks.length);
    await new Promise((ok) => setTimeout(ok, 200));
    await stillUp();
  });

  it('many clients at once, each with a different request, all answered', async () => {
    const targets = ['/', '/r/a.txt', '/api/info', '/r/missing', '/r/../secret.txt', '/r/big.bin'];
    const replies = await Promise.all(Array.from({ length: 48 }, (_, i) => get(targets[i % targets.length]!)));
    for (const [i, r] of replies.entries()) expect(r.statuses, targets[i % targets.length]).toHaveLength(1);
    await stillUp();
  });
});

describe('demo server: request fuzzer', () => {
  const runs = fuzzRuns(300);
  /** `valid` most of the time (weight 6), one of `wrong` otherwise: each part of a request is wrong alone, rarely all. */
  const mostly = <T>(valid: fc.Arbitrary<T>, ...wrong: T[]) =>
    fc.oneof({ weight: 6, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(...wrong) });
  const segment = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom('a.txt', 'sub/b.json', 'link-in', 'm.wasm', 'big.bin', 'up/www/a.txt') },
    fc.constantFrom('..', '.', '', '%2e%2e', '%2E%2e', '%2e', '..%2f', '%2f', '%5c', '\\', '%00', '%', '%zz', '%c0%ae', '%ff'),
    fc.constantFrom('a.txt', 'sub', 'b.json', 'link-out', 'link-in', 'up', 'secret.txt', 'fifo', '.hidden', 'big.bin', 'etc', 'passwd'),
    fc.string({ maxLength: 8 }),
    fc.string({ unit: 'binary', maxLength: 6 }).map((s) => encodeURIComponent(s)),
  );
  const target = fc
    .tuple(
      mostly(fc.constantFrom('/r/', '/', '/api/'), '/none/', '//', '/r', 'http://127.0.0.1/r/', '', '*'),
      fc.array(segment, { maxLength: 6 }),
      fc.constantFrom('', '', '?', '?a=%zz', '#x'),
    )
    .map(([prefix, segs, tail]) => prefix + segs.join('/') + tail);
  const request = fc
    .record({
      method: mostly(fc.constantFrom('GET', 'GET', 'HEAD'), 'POST', 'OPTIONS', 'CONNECT', 'G ET', '', 'get', 'PRI'),
      target,
      version: mostly(fc.constantFrom('HTTP/1.1', 'HTTP/1.0'), 'HTTP/2.0', 'HTTP/1.1x', '', 'http/1.1'),
      host: mostly(fc.constant('good'), 'evil', 'none', 'two', 'noport'),
      extra: fc.array(fc.tuple(mostly(fc.stringMatching(/^[A-Za-z-]{1,12}$/), 'a b', '', ':', 'X\x00'), fc.string({ maxLength: 24 })), {
        maxLength: 4,
      }),
      eol: mostly(fc.constant('\r\n'), '\n', '\r'),
      body: fc.option(fc.string({ maxLength: 40 }), { freq: 4 }),
      // Random bytes inserted somewhere, in one request of five.
      noise: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }))),
    })
    .map((r) => {
      const hosts: Record<string, string[]> = {
        good: [`Host: ${host()}`],
        evil: [`Host: evil.example:${port}`],
        none: [],
        two: [`Host: ${host()}`, `Host: ${host()}`],
        noport: ['Host: 127.0.0.1'],
      };
      const lines = [`${r.method} ${r.target} ${r.version}`.trim(), ...hosts[r.host]!, ...r.extra.map(([k, v]) => `${k}: ${v}`)];
      if (r.body !== null) lines.push(`Content-Length: ${Buffer.byteLength(r.body)}`);
      let bytes = Buffer.from(lines.join(r.eol) + r.eol + r.eol + (r.body ?? ''), 'latin1');
      if (r.noise) {
        const at = r.noise[0] % (bytes.length + 1);
        bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(r.noise[1]), bytes.subarray(at)]);
      }
      return bytes;
    });

  const rawTitle =
    `raw requests (${runs} runs, plus random bytes): every answer well-formed or a close, nothing from outside, ` + 'the server stays up';
  it(rawTitle, async () => {
    const tally = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 5, arbitrary: request }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map(Buffer.from) }),
        async (bytes) => {
          const r = await send(bytes, { waitMs: 4000, settleMs: 100 });
          expect(r.closed, 'the server closes the connection').toBe(true);
          expect(r.raw.toString('latin1')).not.toContain(SECRET);
          const key = r.statuses.length ? r.statuses.join(',') : 'closed';
          tally.set(key, (tally.get(key) ?? 0) + 1);
        },
      ),
      { numRuns: runs },
    );
    await stillUp();
    console.log(
      `demo server fuzz, raw requests (${runs}): ${[...tally]
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k}: ${n}`)
        .join(', ')}`,
    );
  });

  it(`URL paths with the right Host (${runs} runs): 200 only for files inside the root, with their bytes`, async () => {
    const inside = new Map([
      ['a.txt', 'hello a'],
      ['link-in', 'hello a'],
      ['sub/b.json', '{"b":1}'],
    ]);
    let served = 0;
    await fc.assert(
      fc.asyncProperty(target, async (t) => {
        const r = await send(`GET ${t} HTTP/1.1\r\nHost: ${host()}\r\nConnection: close\r\n\r\n`, { waitMs: 4000 });
        expect(r.closed).toBe(true);
        expect(r.raw.toString('latin1')).not.toContain(SECRET);
        for (const s of r.statuses) expect([200, 400, 404, 414].includes(s), `${t}: ${s}`).toBe(true);
        if (r.statuses[0] === 200) {
          served++;
          const path = urlPath(t)!;
          const file = path.replace(/^\/r\//, '');
          if (path === '/') expect(body(r)).toContain('page');
          else if (path === '/api/info') expect(body(r)).toBe('{"ok":true}');
          else if (inside.has(file)) expect(body(r)).toBe(inside.get(file));
          else expect(readFileSync(join(www, file)).equals(r.raw.subarray(r.raw.indexOf('\r\n\r\n') + 4)), t).toBe(true);
        }
      }),
      { numRuns: runs },
    );
    await stillUp();
    console.log(`demo server fuzz, URL paths (${runs}): ${served} served from inside the root, the rest refused`);
  });
});

describe('demo server: load', () => {
  let child: ChildProcess | undefined;
  afterAll(() => child?.kill());

  it('many concurrent clients for a few seconds: no errors, every answer 2xx, memory after within a bound', async () => {
    const seconds = Number(process.env.EMOFUSE_LOAD_SECONDS ?? 3);
    const connections = Number(process.env.EMOFUSE_LOAD_CONNECTIONS ?? 32);
    // The server alone in a child process (its own RSS, its own event loop): demo-server.ts bundled (builtins only).
    const bundle = join(tmp, 'demo-server.mjs');
    await build({
      entryPoints: [join(root, 'packages/cli/src/demo-server.ts')],
      outfile: bundle,
      bundle: true,
      platform: 'node',
      format: 'esm',
      logLevel: 'error',
    });
    const main = join(tmp, 'serve.mjs');
    writeFileSync(
      main,
      `import { createDemoServer } from ${JSON.stringify(bundle)};
const server = createDemoServer({ files: { '/': ${JSON.stringify(join(tmp, 'page.html'))} }, roots: { '/r/': ${JSON.stringify(www)} },
  json: { '/api/info': { ok: true } }, log: (l) => process.send({ log: l }) });
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', () => { globalThis.gc?.(); process.send({ rss: process.memoryUsage().rss }); });`,
    );
    child = fork(main, [], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const logs: string[] = [];
    const next = <T>(key: string) =>
      new Promise<T>((ok) => {
        const on = (m: Record<string, unknown>) => {
          if ('log' in m) logs.push(String(m.log));
          if (key in m) {
            child!.off('message', on);
            ok(m[key] as T);
          }
        };
        child!.on('message', on);
      });
    const childPort = await next<number>('port');
    child.send('rss');
    const rssBefore = await next<number>('rss');
    const result = await autocannon({
      url: `http://127.0.0.1:${childPort}`,
      connections,
      duration: seconds,
      headers: { host: `127.0.0.1:${childPort}` },
      requests: [{ path: '/' }, { path: '/r/a.txt' }, { path: '/api/info' }, { path: '/r/sub/b.json' }, { path: '/r/m.wasm' }],
    });
    child.send('rss');
    const rssAfter = await next<number>('rss');
    const mb = (b: number) => (b / 2 ** 20).toFixed(0);
    console.log(
      `demo server load: ${connections} connections for ${seconds} s: ${result.requests.total} requests ` +
        `(${result.requests.average.toFixed(0)}/s mean, ${result.requests.min}/s min), latency p99 ${result.latency.p99} ms, ` +
        `errors ${result.errors}, timeouts ${result.timeouts}, non-2xx ${result.non2xx}; server RSS ${mb(rssBefore)} MB before, ` +
        `${mb(rssAfter)} MB after`,
    );
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.requests.total).toBeGreaterThan(0);
    expect(logs).toEqual([]);
    // A static server holds no per-request state: its memory after the run stays near where it started.
    expect(rssAfter - rssBefore).toBeLessThan(100 * 2 ** 20);
    expect(rssAfter).toBeLessThan(300 * 2 ** 20);
  }, 120_000);
});
