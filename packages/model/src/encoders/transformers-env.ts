// Loads @huggingface/transformers lazily (it pulls in onnxruntime-node) and applies emofuse's model settings to
// its `env`: local models folder, remote downloads on/off, cache folder.

import { createWriteStream, existsSync, statSync } from 'node:fs';
import { mkdir, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { modelSettings } from './settings.ts';

/**
 * onnxruntime session options for the encoders and the speech recognizer, which run once per clip on inputs of every
 * length: no CPU memory arena and no memory patterns. With the defaults each session keeps the memory of the largest
 * activations it has seen (the arena grows and never gives back; a pattern is planned and kept per input shape), so a
 * long `emofuse analyze` grew by steps as longer segments came (Whisper's 30 s window alone: two 54 MB attention maps
 * per layer). Without them each run's activations are malloc'd and freed. Where memory comes from, not what is
 * computed: the outputs are the same bits.
 */
export const ENCODER_SESSION = { enableCpuMemArena: false, enableMemPattern: false } as const;

type Transformers = typeof import('@huggingface/transformers');
let loaded: Promise<Transformers> | undefined;

/**
 * A local file (config, tokenizer, ...) as transformers.js reads it from a cache: a Response with no stream behind it,
 * whose contents are read from the file when asked, never before.
 */
function localFile(path: string): Response {
  const r = new Response(null, { status: 200, headers: { 'content-length': String(statSync(path).size) } });
  const bytes = async () => {
    const data = await readFile(path);
    // a file's Buffer owns its whole ArrayBuffer (only small Buffers share a pool): no copy then
    return (
      data.byteOffset === 0 && data.byteLength === data.buffer.byteLength
        ? data.buffer
        : data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)
    ) as ArrayBuffer;
  };
  return Object.defineProperties(r, {
    arrayBuffer: { value: bytes },
    text: { value: () => readFile(path, 'utf8') },
    json: { value: async () => JSON.parse(await readFile(path, 'utf8')) },
    blob: { value: async () => new Blob([await bytes()]) },
    // made only when asked for (a progress callback reads the body)
    body: {
      get: () =>
        new ReadableStream<Uint8Array>({
          async start(controller) {
            controller.enqueue(new Uint8Array(await bytes()));
            controller.close();
          },
        }),
    },
  });
}

/**
 * transformers.js's file cache, without its leak. Its FileResponse (what it makes for every local model file and every
 * file in its cache folder) starts streaming the whole file into a ReadableStream in its constructor, and for the ONNX
 * files that onnxruntime opens by path nobody reads that stream: the file's bytes pile up in the stream's queue at 64 KB
 * per turn of the event loop until the whole file is in memory (Whisper tiny.en's 198 MB decoder, 33 MB encoder, MiniLM's
 * 90 MB, ...), freed only when the read ends. In `emofuse analyze` that was the RSS growing by about 2 MB per segment. This
 * cache answers with the file itself (read when asked) for a local file and for one in the cache folder (keyed as
 * transformers.js's FileCache keys it: <model>/<file> on the main revision, <model>/<revision>/<file> on another), and
 * writes downloads there as FileCache does.
 */
export class LocalFileCache {
  constructor(
    private readonly t: Transformers,
    private readonly dir: string,
  ) {}
  /**
   * Where a request's file is: a local path as is; a download URL in the models folder (where transformers.js looked
   * first: it asks again by URL for a file it found there), else in the cache folder by its model and file.
   */
  private where(request: string): string[] {
    if (isAbsolute(request)) return [request];
    const host = this.t.env.remoteHost.replace(/\/+$/, '') + '/';
    if (!request.startsWith(host)) return [join(this.dir, request)];
    const m = /^(.+?)\/resolve\/([^/]+)\/(.+)$/.exec(request.slice(host.length));
    if (!m) return [];
    const [, model, revision, file] = m as unknown as [string, string, string, string];
    const rev = decodeURIComponent(revision);
    const local = this.t.env.allowLocalModels && this.t.env.localModelPath ? [join(this.t.env.localModelPath, model, file)] : [];
    return [...local, rev === 'main' ? join(this.dir, model, file) : join(this.dir, model, rev, file)];
  }
  /**
   * A file found: an ONNX file as its path (onnxruntime opens it by path, as before: transformers.js takes a string from
   * a cache as the path; a Response it would read into a buffer, 200-400 MB of them at load), any other as localFile.
   */
  async match(request: string): Promise<Response | string | undefined> {
    const p = this.where(request).find((f) => existsSync(f) && statSync(f).isFile());
    if (!p) return undefined;
    return /\.onnx(_data|\.data)?$/.test(p) ? p : localFile(p);
  }
  async put(request: string, response: Response, progress?: (d: { progress: number; loaded: number; total: number }) => void) {
    const p = this.where(request).at(-1);
    if (!p || !response.body) return;
    const tmp = `${p}.tmp.${process.pid}.${Math.random().toString(36).slice(2)}`;
    const total = Number(response.headers.get('content-length') ?? 0);
    let loaded = 0;
    try {
      await mkdir(dirname(p), { recursive: true });
      const out = createWriteStream(tmp);
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        await new Promise<void>((res, rej) => out.write(value, (err) => (err ? rej(err) : res())));
        loaded += value.length;
        progress?.({ progress: total ? (100 * loaded) / total : 0, loaded, total });
      }
      await new Promise<void>((res, rej) => out.close((err) => (err ? rej(err) : res())));
      await rename(tmp, p);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }
}

export function loadTransformers(): Promise<Transformers> {
  loaded ??= import('@huggingface/transformers').then((t) => {
    t.env.localModelPath = modelSettings.modelsDir + '/';
    t.env.allowLocalModels = true;
    t.env.allowRemoteModels = !modelSettings.offline;
    t.env.cacheDir = modelSettings.cacheDir;
    // In Node only: the demo page (no process.versions.node) fetches its files, which its own transformers.js reads.
    if (typeof process !== 'undefined' && process.versions?.node) {
      t.env.useCustomCache = true;
      t.env.customCache = new LocalFileCache(t, modelSettings.cacheDir) as unknown as typeof t.env.customCache;
    }
    return t;
  });
  return loaded;
}
