// transformers.js's model files are read through LocalFileCache (packages/model/src/encoders/transformers-env.ts), not its
// FileResponse, which starts streaming the whole file into a ReadableStream nobody reads: for the ONNX files onnxruntime
// opens by path that queued the whole model in memory (Whisper tiny.en's 198 MB decoder), about 2 MB per segment of
// `emofuse analyze` until the read ended. Checked on the tiny random BERT fixture: no read stream is opened on a model file
// while the encoder loads, and it still encodes; the cache's answers (a path for ONNX, the bytes on demand for the rest,
// the download URL found in the models folder, a download written where transformers.js's FileCache wrote it).
import fs, { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createBertEncoder } from '../../packages/model/src/encoders/transformers.ts';
import { LocalFileCache, loadTransformers } from '../../packages/model/src/encoders/transformers-env.ts';

const fixtures = join(import.meta.dirname, '../fixtures/models');
const bertDir = join(fixtures, 'tiny-random-bert');
const tmp = mkdtempSync(join(tmpdir(), 'emofuse-tcache-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('transformers.js model files (LocalFileCache)', () => {
  it('loading an encoder opens no read stream on its files, and the encoder works', async () => {
    const spy = vi.spyOn(fs, 'createReadStream');
    try {
      const enc = await createBertEncoder(bertDir);
      const onModel = spy.mock.calls.map((c) => String(c[0])).filter((p) => p.startsWith(fixtures));
      expect(onModel).toEqual([]); // transformers.js's FileResponse opened one per file: config, tokenizer, model.onnx
      const batch = await enc.encode(['hello world']);
      expect(batch.lengths[0]).toBe(4);
      await enc.dispose?.();
    } finally {
      spy.mockRestore();
    }
  });

  it('answers a path for ONNX, a stream-less Response for the rest, nothing for a missing file', async () => {
    const t = await loadTransformers();
    const cache = new LocalFileCache(t, tmp);
    const onnx = join(bertDir, 'onnx', 'model.onnx');
    expect(await cache.match(onnx)).toBe(onnx);
    const cfg = (await cache.match(join(bertDir, 'config.json'))) as Response;
    expect(cfg).toBeInstanceOf(Response);
    expect(Number(cfg.headers.get('content-length'))).toBe(readFileSync(join(bertDir, 'config.json')).length);
    expect(await cfg.json()).toEqual(JSON.parse(readFileSync(join(bertDir, 'config.json'), 'utf8')));
    expect(await cache.match(join(bertDir, 'nope.json'))).toBeUndefined();
    // asked again by download URL for a file found in the models folder
    const saved = t.env.localModelPath;
    t.env.localModelPath = fixtures + '/';
    try {
      const url = `${t.env.remoteHost.replace(/\/+$/, '')}/tiny-random-bert/resolve/main/onnx/model.onnx`;
      expect(await cache.match(url)).toBe(join(fixtures, 'tiny-random-bert', 'onnx', 'model.onnx'));
    } finally {
      t.env.localModelPath = saved;
    }
  });

  it('writes a download where FileCache did (<model>/<file>; <model>/<revision>/<file> off main) and finds it there', async () => {
    const t = await loadTransformers();
    const cache = new LocalFileCache(t, tmp);
    const host = t.env.remoteHost.replace(/\/+$/, '');
    await cache.put(`${host}/org/m/resolve/main/tokenizer.json`, new Response('{"a":1}', { headers: { 'content-length': '7' } }));
    expect(readFileSync(join(tmp, 'org/m/tokenizer.json'), 'utf8')).toBe('{"a":1}');
    await cache.put(`${host}/org/m/resolve/v2/onnx/model.onnx`, new Response('xyz'));
    expect(readFileSync(join(tmp, 'org/m/v2/onnx/model.onnx'), 'utf8')).toBe('xyz');
    const saved = t.env.localModelPath;
    t.env.localModelPath = join(tmp, 'elsewhere') + '/';
    try {
      expect(await ((await cache.match(`${host}/org/m/resolve/main/tokenizer.json`)) as Response).text()).toBe('{"a":1}');
      expect(await cache.match(`${host}/org/m/resolve/v2/onnx/model.onnx`)).toBe(join(tmp, 'org/m/v2/onnx/model.onnx'));
    } finally {
      t.env.localModelPath = saved;
    }
  });
});
