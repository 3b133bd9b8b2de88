// Integrity of what emofuse reads back from disk (issue 23): checkpoints carry a checksum every load verifies;
// metadata that contradicts the tensors is refused by one check that every command loading a checkpoint goes through
// (predict, eval, export, the library), with the same words; a feature cache's index.json is checked field by field;
// a folder given as --checkpoint is named as one; joined caches that hold the same utterances are refused.
// Each refusal: exit 2 (the library: a DataError / FeatureCacheError), the file, the field or tensor, the fix.

import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  checkpointChecksum,
  CpuBackend,
  DataError,
  decodeSafetensors,
  DEFAULT_MODEL,
  FeatureCacheError,
  FusionModel,
  joinFeatureSets,
  loadCheckpoint,
  nodeSha256,
  openFeatureCache,
  readSafetensors,
  saveCheckpoint,
  writeSafetensors,
  type CheckpointMeta,
  type FusionConfig,
} from '@emofuse/model';
import { sha256Hex } from '../../packages/model/src/cache/sha256.ts';
import { resign } from '../helpers/checkpoint.ts';
import { buildCli, emofuse, type Run } from '../helpers/cli.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-integrity-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CONFIG: FusionConfig = {
  fusion: 'cross-self',
  width: 16,
  heads: 2,
  layers: 1,
  ffnMult: 2,
  dropout: 0,
  blockDropout: 0,
  linearSkip: true,
  seed: 3,
  textDim: 8,
  audioDim: 8,
  maxTextLen: 4,
  maxAudioLen: 4,
  numClasses: 3,
};
const CLASSES = ['anger', 'joy', 'sadness'];
const META: CheckpointMeta = {
  format: 1,
  config: CONFIG,
  classNames: CLASSES,
  step: 5,
  textEncoder: 'arrays',
  audioEncoder: 'arrays',
  metrics: {},
  train: { flags: { standardize: true } },
};
const ckpt = join(tmp, 'good.safetensors');
const put = (name: string, bytes: Uint8Array) => {
  const p = join(tmp, name);
  writeFileSync(p, bytes);
  return p;
};

/** The raw header of a safetensors file and a writer of a changed copy (its checksum re-made unless `sign` is false). */
function edit(name: string, f: (header: Record<string, any>, meta: Record<string, any>) => void, sign = true): string {
  const b = readFileSync(ckpt);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const meta = JSON.parse(header.__metadata__.emofuse);
  f(header, meta);
  header.__metadata__.emofuse = JSON.stringify(meta);
  let h = Buffer.from(JSON.stringify(header), 'utf8');
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  const out = Buffer.concat([len, h, b.subarray(8 + n)]);
  return put(name, sign ? resign(out) : out);
}

/** A copy of the good checkpoint with one bit of byte `at` of tensor `tensor`'s data flipped (checksum left as it was). */
function flip(name: string, tensor: string, at: number, bit = 6): string {
  const b = Buffer.from(readFileSync(ckpt));
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  b[8 + n + header[tensor].data_offsets[0] + at]! ^= 1 << bit;
  return put(name, b);
}

/** What a load of `file` throws (the library's one path), as its message; '' when it loads. */
function loadError(file: string): string {
  try {
    loadCheckpoint(new CpuBackend('f32'), file);
    return '';
  } catch (err) {
    expect(err).toBeInstanceOf(DataError);
    return (err as Error).message;
  }
}

const arraysFile = join(tmp, 'features.json');
const row = (s: number) => Array.from({ length: 8 }, (_, c) => Math.sin(s * 7 + c));
const evalArgs = (file: string) => [
  'eval',
  '--checkpoint',
  file,
  '--features',
  arraysFile,
  '--split',
  'dev',
  '--backend',
  'cpu',
  '--out',
  join(tmp, 'eval'),
];
const predictArgs = (file: string) => ['predict', '--checkpoint', file, '--text', 'hello there', '--backend', 'cpu'];
const exportArgs = (file: string) => ['export', '--checkpoint', file, '--onnx', join(tmp, 'x.onnx')];

/** The three commands that load a checkpoint, on `file`: each must exit 2 with the same first line of stderr. */
async function commands(file: string): Promise<Run[]> {
  return Promise.all([emofuse(evalArgs(file)), emofuse(predictArgs(file)), emofuse(exportArgs(file))]);
}
function sameRefusal(runs: Run[], says: RegExp): void {
  const first = runs.map((r) => r.stderr.split('\n').find((l) => l.startsWith('emofuse:')) ?? r.stderr);
  for (const [i, r] of runs.entries()) {
    expect(r.code, `${['eval', 'predict', 'export'][i]}: ${r.stderr}`).toBe(2);
    expect(r.stderr).not.toMatch(/unexpected error|\n\s+at /);
    expect(first[i]).toMatch(says);
  }
  // the same words from every command (eval and export prefix nothing else)
  expect(new Set(first).size, first.join('\n')).toBe(1);
}

beforeAll(async () => {
  const model = FusionModel.create(new CpuBackend('f32'), CONFIG);
  const norm = (w: number) => ({ mean: new Float32Array(w).fill(0.1), std: new Float32Array(w).fill(2) });
  model.setInputNorm({ text: norm(8), audio: norm(8), pooled: norm(model.pooledNormWidth) });
  await saveCheckpoint(model, ckpt, META);
  const utt = (i: number) => ({ id: `u${i}`, label: CLASSES[i % 3], text: [row(i), row(i + 1)], audio: [row(i + 2)] });
  writeFileSync(arraysFile, JSON.stringify({ classNames: CLASSES, textDim: 8, audioDim: 8, splits: { dev: [0, 1, 2, 3].map(utt) } }));
  await buildCli();
}, 300_000);

describe('checkpoint checksum', () => {
  it('is written into the metadata and verified: the good file loads without a word, and the plain-TS SHA-256 is node:crypto’s', () => {
    const meta = JSON.parse(readSafetensors(ckpt).metadata.emofuse!);
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
    const d = decodeSafetensors(readFileSync(ckpt));
    expect(checkpointChecksum(d, meta, nodeSha256)).toBe(meta.sha256);
    expect(checkpointChecksum(d, meta)).toBe(meta.sha256); // the browser's hash
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n) % 256);
      expect(sha256Hex(b)).toBe(nodeSha256([b]));
    }
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(loadError(ckpt)).toBe('');
    expect(warn).not.toHaveBeenCalled();
    warn.mockRestore();
  });

  it('one flipped bit in a parameter (a weight becomes huge), in an AdamW moment, in the header or in the config is refused', () => {
    const cases = {
      weight: flip('flip-weight.safetensors', 'param.text.proj.w', 3), // the float's exponent byte: 0.02 -> ~1e18
      low: flip('flip-low.safetensors', 'param.classifier.b', 0, 0), // the least significant bit of a zero
      moment: flip('flip-moment.safetensors', 'adam.v.text.proj.w', 2),
      heads: edit('heads.safetensors', (_, m) => (m.config.heads = 4), false), // no tensor shows the head count
      classes: edit('swapped.safetensors', (_, m) => (m.classNames = ['joy', 'anger', 'sadness']), false),
      offsets: edit(
        'offsets.safetensors',
        (h) => {
          [h['param.text.proj.b'].data_offsets, h['param.audio.proj.b'].data_offsets] = [
            h['param.audio.proj.b'].data_offsets,
            h['param.text.proj.b'].data_offsets,
          ];
        },
        false,
      ),
    };
    for (const [what, file] of Object.entries(cases)) {
      const msg = loadError(file);
      expect(msg, what).toContain(file);
      expect(msg, what).toMatch(/is damaged: its contents do not match the sha256 checksum/);
      expect(msg, what).toMatch(/download or copy it again.*--resume/);
    }
    // a flip in the field's name would leave a file without a checksum: refused too, not loaded as an older one
    const renamed = edit(
      'renamed.safetensors',
      (_, m) => {
        m.sha2V6 = m.sha256;
        delete m.sha256;
      },
      false,
    );
    expect(loadError(renamed)).toMatch(/renamed\.safetensors is damaged: .*no checksum but a field 'sha2V6' emofuse never writes/);
    for (const [what, file] of Object.entries(cases)) {
      const msg = loadError(file);
      expect(msg, what).toMatch(/download or copy it again.*--resume/);
    }
  });

  it('an older checkpoint without a checksum loads, with one warning per file per process', () => {
    const old = edit('old.safetensors', (_, m) => delete m.sha256, false);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(loadError(old)).toBe('');
    expect(loadError(old)).toBe('');
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/old\.safetensors has no checksum .*loaded without an integrity check/);
    warn.mockRestore();
  });

  it('a copy without the AdamW moments (as scripts/slim-checkpoint.mjs makes) gets its own checksum, the kept bytes unchanged', () => {
    const { tensors, metadata } = readSafetensors(ckpt);
    const slim = join(tmp, 'slim.safetensors');
    writeSafetensors(slim, new Map([...tensors].filter(([k]) => !k.startsWith('adam.'))), metadata);
    expect(loadError(slim)).toBe('');
    const back = readSafetensors(slim).tensors;
    for (const [k, t] of back) expect(Buffer.compare(Buffer.from(t.data.buffer), Buffer.from(tensors.get(k)!.data.buffer)), k).toBe(0);
  });

  it('the shipped model carries a checksum that holds', () => {
    const meta = JSON.parse(readSafetensors(DEFAULT_MODEL.file).metadata.emofuse!);
    expect(meta.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(checkpointChecksum(decodeSafetensors(readFileSync(DEFAULT_MODEL.file)), meta, nodeSha256)).toBe(meta.sha256);
  });

  it("the shipped model's file altered or missing: the message says reinstall (DEFAULT_MODEL pointed at a copy)", () => {
    const real = DEFAULT_MODEL.file;
    const copy = join(tmp, 'shipped.safetensors');
    const b = Buffer.from(readFileSync(real));
    b[b.length - 3]! ^= 0x10; // a byte of the last tensor
    writeFileSync(copy, b);
    try {
      DEFAULT_MODEL.file = copy;
      expect(loadError(copy)).toMatch(/shipped\.safetensors is damaged: .*reinstall emofuse \(or 'git checkout -- packages\/model\/assets/);
      DEFAULT_MODEL.file = join(tmp, 'gone.safetensors');
      expect(loadError(DEFAULT_MODEL.file)).toMatch(/the shipped default model .*gone\.safetensors is missing: reinstall emofuse/);
    } finally {
      DEFAULT_MODEL.file = real;
    }
  });

  it("a linear model of a text-only cache (audio encoder 'none') loads: its head pools the missing audio to zeros", async () => {
    // ablate's linear reference run on MELD text was refused by the metadata check before this case existed
    const model = FusionModel.create(new CpuBackend('f32'), { ...CONFIG, fusion: 'linear' });
    const norm = (w: number) => ({ mean: new Float32Array(w).fill(0.1), std: new Float32Array(w).fill(2) });
    model.setInputNorm({ text: norm(8), audio: norm(8), pooled: norm(model.pooledNormWidth) });
    const file = join(tmp, 'linear-text-only.safetensors');
    await saveCheckpoint(model, file, { ...META, config: { ...CONFIG, fusion: 'linear' }, audioEncoder: 'none' });
    expect(loadError(file)).toBe('');
  });

  it('eval, predict and export refuse the flipped weight alike (exit 2, the file, damaged, the fix)', async () => {
    sameRefusal(await commands(join(tmp, 'flip-weight.safetensors')), /flip-weight\.safetensors is damaged: .*train --resume/);
  });
});

/** Metadata edits that contradict the tensors (the checksum re-made, so the check of the metadata is what refuses). */
const CONTRADICTIONS: [string, (h: Record<string, any>, m: Record<string, any>) => void, RegExp][] = [
  ["audio encoder 'none' beside audio weights", (_, m) => (m.audioEncoder = 'none'), /field 'audioEncoder' is 'none'.*reads audio/],
  ['a width the tensors do not have', (_, m) => (m.config.width = 32), /is \[8, 16\].*needs \[8, 32\] \(config\.width = 32\)/],
  [
    'a text width the tensors do not have',
    (_, m) => (m.config.textDim = 12),
    /'param\.text\.proj\.w' is \[8, 16\].*needs \[12, 16\] \(config\.textDim = 12\)/,
  ],
  [
    'more classes than the classifier has',
    (_, m) => {
      m.config.numClasses = 4;
      m.classNames.push('fear');
    },
    /classifier\.w' is \[16, 3\].*config\.numClasses = 4/,
  ],
  ['class names and numClasses disagree', (_, m) => m.classNames.push('fear'), /4 class names for a model of 3 classes/],
  ['another fusion variant', (_, m) => (m.config.fusion = 'text'), /skip\.w' is \[32, 3\], .*config\.fusion 'text'.*needs \[16, 3\]/],
  [
    'fewer self layers than the tensors',
    (_, m) => (m.config.layers = 0),
    /tensor 'param\.self\.0\.[a-z0-9.]+' \(and \d+ more\) is not part of the model/,
  ],
  ['more self layers than the tensors', (_, m) => (m.config.layers = 2), /no tensor 'param\.self\.1\..*', which its metadata/],
  ['no linear skip beside its weights', (_, m) => (m.config.linearSkip = false), /tensor 'param\.skip\.w' .*is not part of the model/],
  [
    'a width far beyond the tensors (refused before the model is allocated)',
    (_, m) => {
      m.config.width = 4096;
      m.config.heads = 32;
    },
    /field 'config' describes a model of .*, but the file holds \d+ parameter values/,
  ],
  [
    'a transposed shape with the right count',
    (h) => (h['param.text.proj.w'].shape = [16, 8]),
    /'param\.text\.proj\.w' is \[16, 8\].*needs \[8, 16\]/,
  ],
  [
    'a flattened shape with the right count',
    (h) => (h['param.text.proj.w'].shape = [128]),
    /'param\.text\.proj\.w' is \[128\].*needs \[8, 16\]/,
  ],
  ['a wrong dtype', (h) => (h['param.text.proj.b'].dtype = 'I32'), /'param\.text\.proj\.b' is I32; emofuse checkpoints hold F32 only/],
  ['a config field of the wrong type', (_, m) => (m.config.heads = '2'), /field 'config': heads must be a positive integer/],
  ['step missing', (_, m) => delete m.step, /field 'step' is missing, not an integer >= 0/],
];

/** Tensors missing or extra, written by emofuse's own writer (so layout and checksum hold): the metadata check refuses. */
const TENSOR_EDITS: [string, (t: Map<string, { shape: number[]; data: Float32Array }>) => void, RegExp][] = [
  ['a parameter missing', (t) => t.delete('param.text.proj.b'), /no tensor 'param\.text\.proj\.b', which its metadata .* needs/],
  [
    'an extra tensor',
    (t) => t.set('param.extra', { shape: [1], data: new Float32Array(1) }),
    /tensor 'param\.extra' is not part of the model/,
  ],
  ['AdamW moments of some parameters only', (t) => t.delete('adam.m.text.proj.b'), /AdamW moments for some parameters but not all/],
  [
    'input statistics of one modality missing',
    (t) => {
      t.delete('norm.text.mean');
      t.delete('norm.text.std');
    },
    /no input standardization 'norm\.text\.\*' beside 'norm\.audio\.\*'/,
  ],
  ['a norm of the wrong width', (t) => t.set('norm.text.std', { shape: [7], data: new Float32Array(7).fill(1) }), /norm\.text/],
];

describe('metadata that contradicts the tensors: one check, every command', () => {
  const files = new Map<string, string>();
  beforeAll(() => {
    for (const [i, [what, f]] of CONTRADICTIONS.entries()) files.set(what, edit(`contradiction-${i}.safetensors`, f));
    TENSOR_EDITS.forEach(([what, f], i) => {
      const { tensors, metadata } = readSafetensors(ckpt);
      f(tensors);
      const file = join(tmp, `tensors-${i}.safetensors`);
      writeSafetensors(file, tensors, metadata);
      files.set(what, file);
    });
  });

  it.each(CONTRADICTIONS.map(([what, , says]) => [what, says] as const))(
    '%s: the library refuses it naming the file and field',
    (what, says) => {
      const file = files.get(what)!;
      const msg = loadError(file);
      expect(msg).toContain(file);
      expect(msg).toMatch(says);
    },
  );

  it.each(TENSOR_EDITS.map(([what, , says]) => [what, says] as const))(
    '%s: the library refuses it naming the file and tensor',
    (what, says) => {
      const file = files.get(what)!;
      const msg = loadError(file);
      expect(msg).toContain(file);
      expect(msg).toMatch(says);
    },
  );

  it('a table that leaves a gap in the data (a tensor dropped from the header only) is refused as safetensors requires', () => {
    const gap = edit('gap.safetensors', (h) => delete h['param.text.proj.b'], false);
    expect(loadError(gap)).toMatch(
      /gap\.safetensors is not a safetensors checkpoint written by 'emofuse train': tensor '.*' starts at data byte \d+, where \d+ was/,
    );
  });

  it('eval, predict and export refuse each with the same message at exit 2 (before: predict ran two, threw on four)', async () => {
    for (const [what, , says] of [...CONTRADICTIONS, ...TENSOR_EDITS]) sameRefusal(await commands(files.get(what)!), says);
  }, 300_000);
});

describe('paths that are not a checkpoint file', () => {
  it('a folder is named as one, with the file inside it to pass', async () => {
    const run = join(tmp, 'run');
    cpSync(ckpt, join(run, 'best.safetensors'));
    sameRefusal(await commands(run), /checkpoint .*run is a folder, not a checkpoint file: pass .*run\/best\.safetensors/);
  });
});

// ------------------------------------------------------------------------------------------ feature caches

/** A small valid cache made by hand (two shards' worth of tiny utterances), as extract writes one. */
function makeCache(dir: string, o: { fingerprint?: string; ids?: string[] } = {}): string {
  const ids = o.ids ?? ['a1', 'a2', 'a3', 'a4'];
  const tensors: Record<string, { dtype: 'F16'; shape: number[]; data: Uint8Array }> = {};
  ids.forEach((_, k) => {
    tensors[`text.${k}`] = { dtype: 'F16', shape: [2, 4], data: new Uint8Array(16) };
    tensors[`audio.${k}`] = { dtype: 'F16', shape: [3, 4], data: new Uint8Array(24) };
  });
  const shard = encode(tensors, { ids: JSON.stringify(ids), labels: JSON.stringify(ids.map((_, i) => i % 2)) });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'shard-00000.safetensors'), shard);
  const index = {
    format: 'emofuse-feature-cache',
    formatVersion: 1,
    dtype: 'float16',
    dataset: { name: 'toy', source: '/nowhere', classNames: ['calm', 'loud'], items: ids.length, fingerprint: o.fingerprint ?? 'f1' },
    text: { id: 'hash', version: 'hash-v1', dim: 4 },
    audio: { id: 'logmel', version: 'logmel-v1', dim: 4 },
    shards: [
      {
        file: 'shard-00000.safetensors',
        start: 0,
        end: ids.length,
        utterances: ids.length,
        bytes: shard.length,
        sha256: nodeSha256([shard]),
      },
    ],
    failures: [],
    splits: { train: { ids: ids.slice(0, 2), labels: [0, 1] }, dev: { ids: ids.slice(2), labels: [0, 1] } },
    complete: true,
    throughput: { text: 1, audio: 1, decode: 1 },
    seconds: { text: 1, audio: 1, decode: 1 },
  };
  writeFileSync(join(dir, 'index.json'), JSON.stringify(index));
  return dir;
}
let encode: typeof import('@emofuse/model').encodeSafetensors;
beforeAll(async () => {
  encode = (await import('@emofuse/model')).encodeSafetensors;
});

/** The cache's index.json edited by `f` (a fresh copy). */
function editIndex(name: string, f: (ix: Record<string, any>) => void): string {
  const dir = makeCache(join(tmp, name));
  const ix = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  f(ix);
  writeFileSync(join(dir, 'index.json'), JSON.stringify(ix));
  return dir;
}

const INDEX_EDITS: [string, (ix: Record<string, any>) => void, string][] = [
  ['shards[0].file a number', (ix) => (ix.shards[0].file = 5), "shards[0].file' is 5, not a file name"],
  ['shards[0].file a path out of the cache', (ix) => (ix.shards[0].file = '../x.safetensors'), 'shards[0].file\' is "../x.safetensors"'],
  ['shards[0].bytes missing', (ix) => delete ix.shards[0].bytes, "shards[0].bytes' is missing"],
  ['shards[0].sha256 not hex', (ix) => (ix.shards[0].sha256 = 'abc'), 'shards[0].sha256\' is "abc", not 64 hex digits'],
  ['shards not a list', (ix) => (ix.shards = {}), "field 'shards' is {}, not a list"],
  ['dataset missing', (ix) => delete ix.dataset, "field 'dataset' is missing"],
  ['dataset.classNames a string', (ix) => (ix.dataset.classNames = 'calm'), 'dataset.classNames\' is "calm"'],
  ['dataset.classNames twice one name', (ix) => (ix.dataset.classNames = ['calm', 'calm']), 'not a list of distinct class names'],
  ['dataset.items negative', (ix) => (ix.dataset.items = -1), "dataset.items' is -1, not an integer >= 0"],
  ['text.dim zero', (ix) => (ix.text.dim = 0), "text.dim' is 0, not an integer >= 1"],
  ['audio.id missing', (ix) => delete ix.audio.id, "audio.id' is missing"],
  ['audio.window unknown', (ix) => (ix.audio.window = 'half'), "audio.window' is \"half\", not 'sliced' or 'full'"],
  ['splits.train.ids a number', (ix) => (ix.splits.train.ids = 3), "splits.train.ids' is 3"],
  ['splits.dev.labels a string', (ix) => (ix.splits.dev.labels = ['0', 1]), 'splits.dev.labels\' is ["0",1]'],
  ['splits.dev.labels fewer than ids', (ix) => (ix.splits.dev.labels = [0]), "splits.dev.labels' has 1 labels for 2 ids"],
  [
    'a label past the class names',
    (ix) => (ix.splits.dev.labels = [0, 2]),
    "splits.dev.labels[1]' is 2, but dataset.classNames has 2 classes",
  ],
  ['complete a string', (ix) => (ix.complete = 'yes'), 'field \'complete\' is "yes", not true or false'],
  ['failures[0] without an id', (ix) => (ix.failures = [{ message: 'x' }]), "failures[0].id' is missing"],
  ['part.count zero', (ix) => (ix.part = { index: 0, count: 0, items: 1, shardSize: 1 }), "part.count' is 0"],
  ['a shard range shorter than its utterances', (ix) => (ix.shards[0].end = 0), "shards[0].utterances' is 4, more than its 0 items"],
];

describe('index.json of a feature cache: every field checked, named when wrong', () => {
  it.each(INDEX_EDITS)('%s', (_, f, says) => {
    const dir = editIndex(`ix-${INDEX_EDITS.findIndex((e) => e[1] === f)}`, f);
    let err: unknown;
    try {
      openFeatureCache(dir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FeatureCacheError);
    expect((err as Error).message).toContain(join(dir, 'index.json'));
    expect((err as Error).message).toContain(says);
    expect((err as Error).message).toMatch(/extract again/);
  });

  // before: 'unexpected error: The "path" argument must be of type string'
  it('the CLI refuses the shard file of the wrong type at exit 2', async () => {
    const dir = editIndex('ix-cli', (ix) => (ix.shards[0].file = 5));
    const r = await emofuse(['train', '--features', dir, '--epochs', '1', '--out', join(tmp, 'ix-run'), '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/index\.json: field 'shards\[0\]\.file' is 5, not a file name in the cache folder/);
    expect(r.stderr).not.toMatch(/unexpected error/);
  });

  it('more class names than the labels use: a warning naming the classes, once; the cache still opens', () => {
    const dir = editIndex('ix-unused', (ix) => ix.dataset.classNames.push('quiet'));
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    expect(openFeatureCache(dir).classNames).toEqual(['calm', 'loud', 'quiet']);
    openFeatureCache(dir);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toMatch(/lists 3 classes, but no utterance is labelled 'quiet'/);
    warn.mockRestore();
  });
});

describe('joined caches that hold the same utterances', () => {
  it('the same data twice (one fingerprint), or two caches sharing utterances of one corpus, are refused naming both', () => {
    const a = openFeatureCache(makeCache(join(tmp, 'join-a')));
    const copy = openFeatureCache(makeCache(join(tmp, 'join-copy')));
    const overlap = openFeatureCache(makeCache(join(tmp, 'join-b'), { fingerprint: 'f2', ids: ['a4', 'b1', 'b2', 'b3'] }));
    const other = openFeatureCache(makeCache(join(tmp, 'join-c'), { fingerprint: 'f3', ids: ['c1', 'c2', 'c3', 'c4'] }));
    const join2 = (x: typeof a, y: typeof a) => () =>
      joinFeatureSets([
        { corpus: 'one', features: x },
        { corpus: 'two', features: y },
      ]);
    expect(join2(a, copy)).toThrow(/'one' \(.*join-a\) and 'two' \(.*join-copy\) hold the same data \(dataset\.fingerprint f1/);
    expect(join2(a, overlap)).toThrow(/join-a\) and 'two' \(.*join-b\) both hold utterance 'a4' of toy/);
    expect(join2(a, other)().splits.train!.size).toBe(4);
  });
});
