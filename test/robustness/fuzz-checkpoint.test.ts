// Property-based tests (fast-check) over the checkpoint and feature-cache readers (issue 23): the safetensors reader,
// a checkpoint's bytes (layout, checksum, metadata, tensors against the metadata: loadCheckpointBytes), its `emofuse`
// metadata, and a cache's index.json. Random and mutated inputs (flipped bytes, truncations, huge declared lengths,
// shapes and offsets, fields deleted or of the wrong type) must end in the reader's own error (SafetensorsError,
// DataError, FeatureCacheError: what the CLI prints at exit 2) with a bounded message naming the file, or in a
// correct result: a checkpoint that still loads holds exactly the original parameters. Never another exception, a
// hang (each case is timed), or memory beyond MAX_GROWTH. fuzzRuns(n) cases per property; EMOFUSE_FUZZ_RUNS raises it.

import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkCacheIndex,
  CpuBackend,
  type CpuTensor,
  DataError,
  decodeSafetensors,
  encodeSafetensors,
  FeatureCacheError,
  FusionModel,
  loadCheckpointBytes,
  nodeSha256,
  openFeatureCache,
  readCheckpointMeta,
  SafetensorsError,
  saveCheckpoint,
  type FusionConfig,
} from '@emofuse/model';
import { resign } from '../helpers/checkpoint.ts';
import { type ErrorClass, fuzzRuns, readerOutcome } from '../helpers/fuzz.ts';

const dir = mkdtempSync(join(tmpdir(), 'emofuse-fuzz-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** No case slower than this: nothing loops on a declared size. */
const MAX_CASE_MS = 2000;
/** Resident memory may grow by at most this over a property (a huge declared size must never be allocated). */
const MAX_GROWTH = 256 << 20;
/** A property's time limit: its cases at up to 50 ms each (a load builds a small model), and a minute to spare. */
const LIMIT = 60_000 + fuzzRuns(300) * 50;

/** readerOutcome with this file's time bound per case. */
function outcome<T>(read: () => T, errors: ErrorClass[], file: string, check: (v: T) => void = () => {}): 'ok' | 'error' {
  return readerOutcome(read, errors, file, check, MAX_CASE_MS);
}

/** Runs a property and checks the memory bound; returns how many cases ended ok / in an error. */
function property<T>(arb: fc.Arbitrary<T>, run: (v: T) => 'ok' | 'error', n: number): { ok: number; error: number } {
  const counts = { ok: 0, error: 0 };
  const before = process.memoryUsage().rss;
  fc.assert(
    fc.property(arb, (v) => {
      counts[run(v)]++;
    }),
    { numRuns: fuzzRuns(n), seed: Number(process.env.EMOFUSE_FUZZ_SEED ?? 23) },
  );
  expect(process.memoryUsage().rss - before).toBeLessThan(MAX_GROWTH);
  return counts;
}

const CONFIG: FusionConfig = {
  fusion: 'cross-self',
  width: 8,
  heads: 2,
  layers: 1,
  ffnMult: 2,
  dropout: 0,
  blockDropout: 0,
  linearSkip: true,
  seed: 1,
  textDim: 4,
  audioDim: 4,
  maxTextLen: 2,
  maxAudioLen: 2,
  numClasses: 2,
};
const FILE = 'fuzzed.safetensors';
let good: Buffer;
let params: Map<string, Float32Array | Float64Array>;

beforeAll(async () => {
  const model = FusionModel.create(new CpuBackend('f32'), CONFIG);
  const norm = (w: number) => ({ mean: new Float32Array(w).fill(0.5), std: new Float32Array(w).fill(1.5) });
  model.setInputNorm({ text: norm(4), audio: norm(4), pooled: norm(model.pooledNormWidth) });
  const file = join(dir, 'good.safetensors');
  await saveCheckpoint(model, file, {
    format: 1,
    config: CONFIG,
    classNames: ['a', 'b'],
    step: 1,
    textEncoder: 'arrays',
    audioEncoder: 'arrays',
    metrics: {},
    train: {},
  });
  good = readFileSync(file);
  params = new Map([...(await model.readState())].map(([k, s]) => [k, s.value]));
});

const headerOf = (b: Uint8Array) => {
  const n = Number(Buffer.from(b).readBigUInt64LE(0));
  return { n, header: JSON.parse(Buffer.from(b.subarray(8, 8 + n)).toString('utf8')) as Record<string, any> };
};
const withHeader = (header: unknown, data: Uint8Array) => {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
};

/** A load of `bytes` ends in a DataError or in a model holding exactly the original parameters. */
function loads(bytes: Uint8Array): 'ok' | 'error' {
  return outcome(
    () => loadCheckpointBytes(new CpuBackend('f32'), bytes, FILE, { hash: nodeSha256 }),
    [DataError],
    FILE,
    ({ model }) => {
      for (const p of model.params) {
        const want = params.get(p.name)!;
        expect(Array.from((p.value as CpuTensor).data), p.name).toEqual(Array.from(want));
      }
    },
  );
}

/** Values of every JSON type, the odd ones emphasised: huge and negative numbers, NaN-ish strings, nesting. */
const oddValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(-1, 0, 1.5, 2 ** 31, 2 ** 53, Number.MAX_VALUE, 1e308, '', 'F32', 'I32', '__proto__', null, [], {}, [2 ** 40, 2 ** 40]),
);

describe('safetensors reader', () => {
  it(
    'random bytes: a SafetensorsError or a valid table',
    () => {
      const r = property(
        fc.uint8Array({ maxLength: 300 }),
        (b) => outcome(() => decodeSafetensors(b, FILE), [SafetensorsError], FILE),
        300,
      );
      console.log(`safetensors, random bytes: ${JSON.stringify(r)}`);
    },
    LIMIT,
  );

  it(
    'random headers (a valid length, JSON of any shape) and huge declared sizes: never allocated, never a TypeError',
    () => {
      const entry = fc.record(
        {
          dtype: fc.oneof(fc.constantFrom('F32', 'F16', 'I32', 'U8', 'constructor', 'toString'), oddValue),
          shape: oddValue,
          data_offsets: oddValue,
        },
        { requiredKeys: [] },
      );
      const header = fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__metadata__')), fc.oneof(entry, oddValue), {
        maxKeys: 4,
      });
      const r = property(
        fc.tuple(fc.oneof(header, oddValue), fc.nat(64)),
        ([h, pad]) => outcome(() => decodeSafetensors(withHeader(h, new Uint8Array(pad)), FILE), [SafetensorsError], FILE),
        300,
      );
      console.log(`safetensors, random headers: ${JSON.stringify(r)}`);
      for (const len of [2n ** 64n - 1n, 2n ** 53n + 1n, 101n << 20n, 0n]) {
        const b = Buffer.from(good);
        b.writeBigUInt64LE(len);
        outcome(
          () => decodeSafetensors(b, FILE),
          [SafetensorsError],
          FILE,
          () => expect.unreachable(),
        );
      }
    },
    LIMIT,
  );

  it(
    'a valid file truncated anywhere is refused; only the whole file reads',
    () => {
      const r = property(
        fc.nat(good.length),
        (cut) =>
          outcome(
            () => decodeSafetensors(good.subarray(0, cut), FILE),
            [SafetensorsError],
            FILE,
            () => expect(cut).toBe(good.length),
          ),
        300,
      );
      console.log(`safetensors, truncated: ${JSON.stringify(r)}`);
    },
    LIMIT,
  );
});

describe('checkpoint bytes (loadCheckpointBytes: layout, checksum, metadata, tensors)', () => {
  it(
    '1 to 4 flipped bytes anywhere: a DataError, or (a change that means nothing, e.g. in padding) the same parameters',
    () => {
      const flips = fc.array(fc.tuple(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 });
      const r = property(
        flips,
        (fl) => {
          const b = Buffer.from(good);
          for (const [at, x] of fl) b[at]! ^= x;
          return loads(b);
        },
        300,
      );
      console.log(`checkpoint, flipped bytes: ${JSON.stringify(r)}`);
      expect(r.error).toBeGreaterThan(r.ok); // nearly every flip is caught
    },
    LIMIT,
  );

  it(
    'a flipped byte in the data section is always refused (the checksum)',
    () => {
      const { n } = headerOf(good);
      property(
        fc.tuple(fc.integer({ min: 8 + n, max: good.length - 1 }), fc.integer({ min: 1, max: 255 })),
        ([at, x]) => {
          const b = Buffer.from(good);
          b[at]! ^= x;
          return outcome(
            () => loadCheckpointBytes(new CpuBackend('f32'), b, FILE, { hash: nodeSha256 }),
            [DataError],
            FILE,
            () => expect.unreachable('a changed weight loaded'),
          );
        },
        300,
      );
    },
    LIMIT,
  );

  it(
    'the emofuse metadata with a field deleted or of any type, signed again (so the checks behind the checksum run)',
    () => {
      const { header } = headerOf(good);
      const meta = JSON.parse(header.__metadata__.emofuse);
      const paths: string[][] = [];
      const walk = (o: unknown, at: string[]) => {
        if (typeof o !== 'object' || o === null) return;
        for (const [k, v] of Object.entries(o)) {
          paths.push([...at, k]);
          walk(v, [...at, k]);
        }
      };
      walk(meta, []);
      const data = good.subarray(8 + headerOf(good).n);
      const r = property(
        fc.tuple(fc.constantFrom(...paths), fc.option(oddValue, { nil: undefined })),
        ([path, value]) => {
          const m = structuredClone(meta);
          let o = m;
          for (const k of path.slice(0, -1)) o = o[k];
          if (value === undefined) delete o[path.at(-1)!];
          else o[path.at(-1)!] = value;
          const h = structuredClone(header);
          h.__metadata__.emofuse = JSON.stringify(m);
          outcome(() => readCheckpointMeta(h.__metadata__, FILE), [DataError], FILE);
          let bytes: Uint8Array;
          try {
            bytes = resign(withHeader(h, data));
          } catch {
            return 'error'; // metadata that is not an object: nothing to sign (readCheckpointMeta refused it above)
          }
          return loads(bytes);
        },
        300,
      );
      console.log(`checkpoint metadata, signed: ${JSON.stringify(r)}`);
    },
    LIMIT,
  );

  it(
    'a tensor entry (dtype, shape, offsets) replaced by any value, signed again: refused, never a TypeError or a huge allocation',
    () => {
      const { header } = headerOf(good);
      const names = Object.keys(header).filter((k) => k !== '__metadata__');
      const data = good.subarray(8 + headerOf(good).n);
      const r = property(
        fc.tuple(fc.constantFrom(...names), fc.constantFrom('dtype', 'shape', 'data_offsets'), oddValue),
        ([name, field, value]) => {
          const h = structuredClone(header);
          h[name][field] = value;
          let bytes: Uint8Array;
          try {
            bytes = resign(withHeader(h, data));
          } catch (err) {
            expect(err).toBeInstanceOf(SafetensorsError);
            bytes = withHeader(h, data);
          }
          return loads(bytes);
        },
        300,
      );
      console.log(`checkpoint tensor table, signed: ${JSON.stringify(r)}`);
    },
    LIMIT,
  );
});

// ------------------------------------------------------------------------------------------ index.json

const shard = encodeSafetensors(
  {
    'text.0': { dtype: 'F16', shape: [2, 4], data: new Uint8Array(16) },
    'audio.0': { dtype: 'F16', shape: [1, 4], data: new Uint8Array(8) },
    'text.1': { dtype: 'F16', shape: [1, 4], data: new Uint8Array(8) },
    'audio.1': { dtype: 'F16', shape: [3, 4], data: new Uint8Array(24) },
  },
  { ids: '["u0","u1"]', labels: '[0,1]' },
);
const INDEX = {
  format: 'emofuse-feature-cache',
  formatVersion: 1,
  dtype: 'float16',
  dataset: { name: 'toy', source: '/x', classNames: ['a', 'b'], items: 2, fingerprint: 'f' },
  text: { id: 'hash', version: 'v', dim: 4 },
  audio: { id: 'logmel', version: 'v', dim: 4, window: 'sliced' },
  shards: [{ file: 'shard-00000.safetensors', start: 0, end: 2, utterances: 2, bytes: shard.length, sha256: nodeSha256([shard]) }],
  failures: [{ id: 'u2', file: null, problem: 'empty', message: 'empty file', item: 2 }],
  splits: { train: { ids: ['u0'], labels: [0], speakers: ['s1'] }, dev: { ids: ['u1'], labels: [1] } },
  complete: true,
  throughput: { text: 1, audio: 1, decode: 1 },
  seconds: { text: 1, audio: 1, decode: 1 },
};

describe('index.json (checkCacheIndex, then the cache opened)', () => {
  const cache = join(dir, 'cache');
  beforeAll(() => {
    rmSync(cache, { recursive: true, force: true });
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, 'shard-00000.safetensors'), shard);
  });

  it(
    'any field deleted or replaced by a value of any type: a FeatureCacheError naming index.json, or a cache that opens',
    () => {
      const paths: string[][] = [];
      const walk = (o: unknown, at: string[]) => {
        if (typeof o !== 'object' || o === null) return;
        for (const [k, v] of Object.entries(o)) {
          paths.push([...at, k]);
          walk(v, [...at, k]);
        }
      };
      walk(INDEX, []);
      const file = join(cache, 'index.json');
      let opened = 0;
      const r = property(
        fc.array(fc.tuple(fc.constantFrom(...paths), fc.option(oddValue, { nil: undefined })), { minLength: 1, maxLength: 3 }),
        (edits) => {
          const ix: any = structuredClone(INDEX);
          for (const [path, value] of edits) {
            let o = ix;
            for (const k of path.slice(0, -1)) o = o?.[k];
            if (typeof o !== 'object' || o === null) continue;
            if (value === undefined) delete o[path.at(-1)!];
            else o[path.at(-1)!] = value;
          }
          const checked = outcome(() => checkCacheIndex(ix, file), [FeatureCacheError], file);
          if (checked === 'error' || (opened++ % 5 !== 0 && fuzzRuns(300) > 300)) return checked;
          writeFileSync(file, JSON.stringify(ix));
          return outcome(() => openFeatureCache(cache), [FeatureCacheError], cache);
        },
        300,
      );
      console.log(`index.json: ${JSON.stringify(r)}`);
    },
    LIMIT,
  );
});
