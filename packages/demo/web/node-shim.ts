// What the model package imports from Node, in the page: an in-memory file system (the page puts the checkpoint,
// the clip and the fetched asset files in it, and marks files the server has as present) and POSIX paths.
// Anything else (spawning ffmpeg, writing files) throws, so a code path that needs Node fails loudly.

import * as onnxProto from 'onnx-proto';

const files = new Map<string, Uint8Array | null>(); // null: present on the server, fetched by transformers.js itself

/** Makes `path` readable by the model code (bytes), or only visible to existsSync (null). */
export function putFile(path: string, bytes: Uint8Array | null): void {
  files.set(normalize(path), bytes);
}

function notHere(what: string): never {
  throw new Error(`${what} is not available in the browser`);
}

function normalize(p: string): string {
  const parts: string[] = [];
  for (const s of p.split('/')) {
    if (!s || s === '.') continue;
    if (s === '..') parts.pop();
    else parts.push(s);
  }
  return '/' + parts.join('/');
}

// ---------------------------------------------------------------------------------------------- node:fs
export function existsSync(p: string): boolean {
  return files.has(normalize(String(p)));
}
export function readFileSync(p: string, enc?: string | { encoding?: string }): Uint8Array | string {
  const b = files.get(normalize(String(p)));
  if (!b) {
    const e = new Error(`ENOENT: no such file in the page, '${p}'`) as Error & { code: string };
    e.code = 'ENOENT';
    throw e;
  }
  const encoding = typeof enc === 'string' ? enc : enc?.encoding;
  return encoding ? new TextDecoder().decode(b) : b;
}
export function statSync(p: string): { size: number; isDirectory(): boolean; isFile(): boolean } {
  const b = files.get(normalize(String(p)));
  if (b === undefined) {
    const e = new Error(`ENOENT: no such file in the page, '${p}'`) as Error & { code: string };
    e.code = 'ENOENT';
    throw e;
  }
  return { size: b?.length ?? 0, isDirectory: () => false, isFile: () => true };
}
export function readdirSync(): string[] {
  return [];
}
export const mkdirSync = () => undefined;
export const appendFileSync = () => notHere('writing files');
export const writeFileSync = () => notHere('writing files');
export const renameSync = () => notHere('writing files');
export const rmSync = () => notHere('writing files');
export const openSync = () => notHere('writing files');
export const readSync = () => notHere('reading part of a file');
export const writeSync = () => notHere('writing files');
export const closeSync = () => notHere('writing files');
export const fsyncSync = () => notHere('writing files');
export const createWriteStream = () => notHere('writing files');
// node:fs/promises (the Node-only model file cache of encoders/transformers-env.ts; not used in the page)
export const readFile = async (p: string, enc?: string | { encoding?: string }) => readFileSync(p, enc);
export const mkdir = async () => undefined;
export const rename = async () => notHere('writing files');
export const unlink = async () => notHere('writing files');

// ---------------------------------------------------------------------------------------------- node:path
export function join(...parts: string[]): string {
  return normalize(parts.join('/'));
}
export function resolve(...parts: string[]): string {
  let out = '/';
  for (const p of parts) out = p.startsWith('/') ? p : `${out}/${p}`;
  return normalize(out);
}
export function dirname(p: string): string {
  const n = normalize(p);
  return n.lastIndexOf('/') <= 0 ? '/' : n.slice(0, n.lastIndexOf('/'));
}
export function basename(p: string): string {
  const n = normalize(p);
  return n.slice(n.lastIndexOf('/') + 1);
}
export const isAbsolute = (p: string) => p.startsWith('/');
export const sep = '/';

// ---------------------------------------------------------------------------------------------- node:os, url, ...
export const homedir = () => '/';
export const tmpdir = () => '/tmp';
export const availableParallelism = () => navigator.hardwareConcurrency || 1;
export const fileURLToPath = (u: string | URL) => new URL(String(u), location.href).pathname;
export const pathToFileURL = (p: string) => new URL(p, location.href);
export const spawn = () => notHere('running programs (ffmpeg)');
export const spawnSync = () => ({ error: new Error('no programs in the browser'), status: null });
export const createRequire = () => (id: string) => (id === 'onnx-proto' ? onnxProto : notHere(`require('${id}')`));

// ---------------------------------------------------------------------------------------------- node:crypto
/** createHash('sha256') as Node's (update with strings or bytes, digest('hex')): the encoders' version strings name
 * their model files by a SHA-256 of parts of them, and the page shows the same versions as `emofuse predict`. */
export function createHash(algorithm: string): { update(d: string | Uint8Array): unknown; digest(enc: 'hex'): string } {
  if (algorithm !== 'sha256') notHere(`createHash('${algorithm}')`);
  const parts: Uint8Array[] = [];
  const h = {
    update(d: string | Uint8Array) {
      parts.push(typeof d === 'string' ? new TextEncoder().encode(d) : d.slice());
      return h;
    },
    digest: () => sha256(parts),
  };
  return h;
}

const K256 = Uint32Array.from({ length: 64 }, (_, i) => {
  // the first 32 bits of the fractional parts of the cube roots of the first 64 primes
  const primes: number[] = [];
  for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p)) primes.push(n);
  return Math.floor((Math.cbrt(primes[i]!) % 1) * 2 ** 32) >>> 0;
});

/** FIPS 180-4 SHA-256 of the concatenated parts, as hex. */
function sha256(parts: Uint8Array[]): string {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const padded = new Uint8Array(Math.ceil((n + 9) / 64) * 64); // message, 0x80, zeros, 64-bit big-endian bit length
  let at = 0;
  for (const p of parts) {
    padded.set(p, at);
    at += p.length;
  }
  padded[n] = 0x80;
  const dv = new DataView(padded.buffer);
  dv.setUint32(padded.length - 8, Math.floor(n / 2 ** 29));
  dv.setUint32(padded.length - 4, (n * 8) >>> 0);
  const H = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);
  const w = new Uint32Array(64);
  const rotr = (x: number, r: number) => (x >>> r) | (x << (32 - r));
  for (let off = 0; off < padded.length; off += 64) {
    for (let t = 0; t < 16; t++) w[t] = dv.getUint32(off + 4 * t);
    for (let t = 16; t < 64; t++) {
      const s0 = rotr(w[t - 15]!, 7) ^ rotr(w[t - 15]!, 18) ^ (w[t - 15]! >>> 3);
      const s1 = rotr(w[t - 2]!, 17) ^ rotr(w[t - 2]!, 19) ^ (w[t - 2]! >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) >>> 0;
    }
    let [a, b, c, d, e, f, g, h] = H as unknown as number[];
    for (let t = 0; t < 64; t++) {
      const t1 = (h! + (rotr(e!, 6) ^ rotr(e!, 11) ^ rotr(e!, 25)) + ((e! & f!) ^ (~e! & g!)) + K256[t]! + w[t]!) >>> 0;
      const t2 = ((rotr(a!, 2) ^ rotr(a!, 13) ^ rotr(a!, 22)) + ((a! & b!) ^ (a! & c!) ^ (b! & c!))) >>> 0;
      [h, g, f, e, d, c, b, a] = [g, f, e, (d! + t1) >>> 0, c, b, a, (t1 + t2) >>> 0];
    }
    [a, b, c, d, e, f, g, h].forEach((v, i) => {
      H[i] = (H[i]! + v!) >>> 0;
    });
  }
  return [...H].map((v) => v.toString(16).padStart(8, '0')).join('');
}

export default { existsSync, readFileSync, statSync, readdirSync, mkdirSync, join, resolve, dirname, basename, homedir };
