// The demo's HTTP server: a small static server for one page on loopback, hardened as a network service. Any
// process on the machine and any web page the user opens can send it requests, so it answers every request with
// a well-formed status or a closed connection and never more than it was given:
//   - only GET and HEAD (405 otherwise); only origin-form targets ('/path?query'), at most LIMITS.urlChars long;
//     bad percent-encoding, NUL, backslashes, '.'/'..'/empty/hidden ('.x') segments: 400 or 404;
//   - exactly one Host header (400 otherwise), naming this server: localhost, 127.0.0.1, [::1] or the host it is
//     bound to, with its port (421 otherwise), so a page on another site that reaches 127.0.0.1 through DNS
//     rebinding gets nothing;
//   - files only from the exact paths and the folders it was given, after resolving symlinks (realpath), never a
//     directory listing, never a FIFO or device (opened non-blocking, fstat'ed as a regular file);
//   - limits on header size (431), header and request time (408, or closed), idle keep-alive and connections;
//   - every response carries nosniff, a Content-Security-Policy for the page, cross-origin isolation
//     (SharedArrayBuffer for onnxruntime-web's threads) and Cross-Origin-Resource-Policy: same-origin;
//   - an error on one request ends that request (500 or a closed socket) and logs one line, never the process.

import { constants, type promises as fsp, promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { extname, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream';

/** What the server serves: exact paths, folders below prefixes, and JSON answers. */
export interface DemoServerOptions {
  /** Exact URL paths to one file each ('/', '/app.js', '/checkpoint'); null: not available here (404). */
  files: Record<string, string | null>;
  /** URL prefixes ending in '/' to the folder served below them ('/models/' -> ./models); null: 404. */
  roots: Record<string, string | null>;
  /** Exact URL paths answered with this value as JSON ('/api/info'). */
  json?: Record<string, unknown>;
  /** The host it will be bound to (default 127.0.0.1): also accepted in the Host header. */
  host?: string;
  /** Limits for tests; the defaults are LIMITS. */
  limits?: Partial<DemoServerLimits>;
  /** Where the one line per failed request goes (default stderr); at most LIMITS.logLinesPerSecond lines a second. */
  log?: (line: string) => void;
}

export interface DemoServerLimits {
  /** Request line + headers, bytes (Node answers 431 beyond). */
  maxHeaderBytes: number;
  /** The request target, characters (414 beyond). */
  urlChars: number;
  /** Time to receive the headers (then 408 and close). */
  headersTimeoutMs: number;
  /** Time to receive the whole request (then 408 and close). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** A connection with no traffic either way (a client that stopped reading a download) is closed after this. */
  idleSocketMs: number;
  /** Open connections; more are refused (closed at once). */
  maxConnections: number;
  /** Log lines a second; the rest are counted and reported once. */
  logLinesPerSecond: number;
}

export const LIMITS: DemoServerLimits = {
  maxHeaderBytes: 16 * 1024,
  urlChars: 2048,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  idleSocketMs: 120_000,
  maxConnections: 256,
  logLinesPerSecond: 10,
};

/**
 * The page's policy: its own scripts (app.js, onnxruntime-web's .mjs under /ort/) and WebAssembly, workers from
 * itself or blobs, inline styles (index.html has a <style> block), media from the microphone and dropped files;
 * nothing from other origins, no plugins, no framing, no form posts.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval' blob:",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "media-src 'self' data: blob: mediastream:",
  "connect-src 'self' data: blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** On every response. Cross-origin isolation: SharedArrayBuffer, so onnxruntime-web runs Whisper on threads. */
const HEADERS = {
  'cache-control': 'no-store',
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
};

/** Content-Type by extension; anything else is application/octet-stream (with nosniff: never run or rendered). */
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.onnx': 'application/octet-stream',
  '.safetensors': 'application/octet-stream',
};

/** Status lines for the answers written straight to a socket (before Node parsed a request). */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  HPE_HEADER_OVERFLOW: [431, 'Request Header Fields Too Large'],
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Request Timeout'],
};

/**
 * A hardened static server for the demo, not yet listening: the caller listens on `host` (a port in use is its
 * message to give). Node builtins only, so a test can run it alone in a child process.
 */
export function createDemoServer(o: DemoServerOptions): Server {
  const limits = { ...LIMITS, ...o.limits };
  const log = throttled(o.log ?? ((line) => console.error(line)), limits.logLinesPerSecond);
  const boundHost = o.host ?? '127.0.0.1';
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    // How often Node checks the two timeouts above (default 30 s, which would let a slow client stay that long).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, limits.headersTimeoutMs / 4)),
    requireHostHeader: false, // checked below, with this server's headers (Node's own 400 has none of them)
  });
  server.maxConnections = limits.maxConnections;
  server.setTimeout(limits.idleSocketMs, (socket: Socket) => socket.destroy());

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    answer(req, res).catch((err: Error) => {
      log(`emofuse demo: ${req.method} ${printable(req.url)}: ${err.message}`);
      if (!res.headersSent) plain(res, 500, 'internal error');
      else res.destroy();
    });
  });
  // Requests Node could not parse (malformed, headers too large, too slow): a status line if the socket still
  // takes one, then close. A client that hung up gets nothing and logs nothing.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    const code = err.code ?? '';
    // Node's own rule: no status line into a socket that is already sending a response.
    const answering = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage?.headersSent;
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable || answering) return void socket.destroy();
    const [status, text] = CLIENT_ERRORS[code] ?? [400, 'Bad Request'];
    log(`emofuse demo: refused a request from ${socket.remoteAddress ?? '?'}: ${status} (${code || err.message})`);
    socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    socket.destroySoon();
  });

  async function answer(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { port } = (server.address() as AddressInfo | null) ?? { port: 0 };
    const hosts = req.rawHeaders.filter((_, i) => i % 2 === 0 && req.rawHeaders[i]!.toLowerCase() === 'host').length;
    if (hosts !== 1) return plain(res, 400, 'one Host header'); // RFC 9112 3.2: none or several is a 400
    if (!hostAllowed(req.headers.host, boundHost, port)) return plain(res, 421, 'wrong Host');
    if (req.method !== 'GET' && req.method !== 'HEAD') return plain(res, 405, 'only GET and HEAD', { allow: 'GET, HEAD' });
    const target = req.url ?? '';
    if (target.length > limits.urlChars) return plain(res, 414, 'URL too long');
    const path = urlPath(target);
    if (path === null) return plain(res, 400, 'bad URL');

    if (Object.hasOwn(o.json ?? {}, path)) {
      const body = Buffer.from(JSON.stringify(o.json![path]));
      res.writeHead(200, { ...HEADERS, 'content-type': TYPES['.json'], 'content-length': body.length });
      return void res.end(req.method === 'HEAD' ? undefined : body);
    }
    if (Object.hasOwn(o.files, path)) return send(req, res, o.files[path] ?? null, null);
    for (const [prefix, root] of Object.entries(o.roots)) {
      if (!path.startsWith(prefix)) continue;
      const segments = path.slice(prefix.length).split('/');
      // Every segment a plain name: no '', '.', '..', no hidden files (.git, .env), so no listing and no way up.
      if (!root || segments.some((s) => s === '' || s.startsWith('.'))) break;
      return send(req, res, resolve(root, ...segments), root);
    }
    plain(res, 404, `not found: ${path}`);
  }

  /** `file`, when it is a regular file (and inside `root` after resolving symlinks, when a root is given); else 404. */
  async function send(req: IncomingMessage, res: ServerResponse, file: string | null, root: string | null): Promise<void> {
    const real = file === null ? null : await inside(file, root);
    let handle: fsp.FileHandle | null = null;
    try {
      // Non-blocking: a FIFO without a writer would otherwise hold a thread of the pool forever.
      handle = real === null ? null : await fs.open(real, constants.O_RDONLY | constants.O_NONBLOCK).catch(() => null);
      const stat = handle ? await handle.stat() : null;
      if (!handle || !stat?.isFile()) return plain(res, 404, 'not found');
      // The type of the name asked for (a symlink's own name, not its target's).
      const type = TYPES[extname(file!).toLowerCase()] ?? 'application/octet-stream';
      res.writeHead(200, { ...HEADERS, 'content-type': type, 'content-length': stat.size });
      if (req.method === 'HEAD') return void res.end();
      const stream = handle.createReadStream();
      handle = null; // the stream closes it
      pipeline(stream, res, (err: NodeJS.ErrnoException | null) => {
        // A client that went away mid-download is not an error of ours; a read error is (the socket is closed).
        if (err && !['ERR_STREAM_PREMATURE_CLOSE', 'ECONNRESET', 'EPIPE'].includes(err.code ?? ''))
          log(`emofuse demo: GET ${printable(req.url)}: ${err.message}`);
      });
    } finally {
      await handle?.close();
    }
  }
  return server;
}

/**
 * The Host rule: a name of this machine's loopback (localhost, 127.0.0.1, [::1]) or the bound host, and the bound
 * port (its absence only on port 80). A DNS-rebound name (attacker.example -> 127.0.0.1) fails it.
 */
export function hostAllowed(header: string | undefined, boundHost: string, port: number): boolean {
  if (!header) return false;
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header);
  if (!m) return false;
  const name = m[1]!.toLowerCase();
  const bound = boundHost.includes(':') ? `[${boundHost.toLowerCase()}]` : boundHost.toLowerCase();
  if (!['localhost', '127.0.0.1', '[::1]', bound].includes(name)) return false;
  return m[2] === undefined ? port === 80 : Number(m[2]) === port;
}

/** The decoded path of an origin-form target ('/a/b?q'), or null for anything else or anything suspicious. */
export function urlPath(target: string): string | null {
  if (!target.startsWith('/') || target.startsWith('//')) return null; // absolute-form, '*', scheme-relative
  const raw = target.split(/[?#]/, 1)[0]!;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return null; // bad percent-encoding
  }
  // Backslash (a separator on Windows), NUL and the other control characters.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing them is the point
  if (/[\\\x00-\x1f\x7f]/.test(path)) return null;
  if (path.split('/').some((s) => s === '..' || s === '.')) return null; // '..' and '%2e%2e' alike, after decoding
  return path;
}

/** The real path of `file` when it is inside the real path of `root` (or when no root is given); else null. */
async function inside(file: string, root: string | null): Promise<string | null> {
  try {
    const real = await fs.realpath(file);
    if (root === null) return real;
    const realRoot = await fs.realpath(root);
    return real.startsWith(realRoot + sep) ? real : null;
  } catch {
    return null;
  }
}

function plain(res: ServerResponse, status: number, body: string, extra: Record<string, string> = {}): void {
  const bytes = Buffer.from(`${body}\n`);
  res.writeHead(status, { ...HEADERS, ...extra, 'content-type': TYPES['.txt'], 'content-length': bytes.length });
  res.end(res.req?.method === 'HEAD' ? undefined : bytes);
}

/** A request target for a log line: short, no control characters. */
function printable(url: string | undefined): string {
  const s = (url ?? '').replace(/[^\x20-\x7e]/g, '?');
  return s.length > 120 ? `${s.slice(0, 120)}...` : s;
}

/** `log`, at most `perSecond` lines a second; what was dropped is counted in the next line that passes. */
function throttled(log: (line: string) => void, perSecond: number): (line: string) => void {
  let second = 0;
  let lines = 0;
  let dropped = 0;
  return (line) => {
    const now = Math.floor(Date.now() / 1000);
    if (now !== second) [second, lines] = [now, 0];
    if (++lines > perSecond) return void dropped++;
    log(dropped ? `${line} (${dropped} more not shown)` : line);
    dropped = 0;
  };
}
