// What the model package imports from Node, in the page: an in-memory file system (the page puts the checkpoint,
// the clip and the fetched asset files in it, and marks files the server has as present) and POSIX paths.
// Anything else (spawning ffmpeg, writing files) throws, so a code path that needs Node fails loudly.

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
export const createHash = () => notHere('node:crypto');
export const createRequire = () => () => notHere('require()');

export default { existsSync, readFileSync, statSync, readdirSync, mkdirSync, join, resolve, dirname, basename, homedir };
