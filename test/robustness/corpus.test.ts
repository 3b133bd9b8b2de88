// The robustness corpus: bad inputs and faults across extract, train, eval, predict, ablate and quickstart, each
// run through the built CLI as a user would, generated small in a temp folder. Every case asserts the exit code,
// that the message names the file / flag / field at fault (or, for a handled case, that the result is right),
// that no "unexpected error" or stack trace reaches the user, and that no file that existed before was changed.
// The cases run a few at a time in beforeAll; each is then one test.

import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resign } from '../helpers/checkpoint.ts';
import { bin, emofuse, type Run } from '../helpers/cli.ts';
import { CLASSES, makeManifestDataset, modified, snapshot, tone, wav } from './inputs.ts';

const tmp = mkdtempSync(join(tmpdir(), 'emofuse-robust-'));
const fx = join(tmp, 'fixture'); // the good inputs every case starts from: never modified
const data = join(fx, 'data');
const cache = join(fx, 'cache');
const textCache = join(fx, 'cache-text');
const runDir = join(fx, 'run');
const textRun = join(fx, 'run-text');
const ckpt = join(runDir, 'best.safetensors');
/** `args` with the value after `flag` replaced. */
const withFlag = (args: readonly string[], flag: string, value: string) => args.map((a, i) => (args[i - 1] === flag ? value : a));
const small = ['--backend', 'cpu', '--width', '16', '--heads', '2', '--layers', '1', '--epochs', '1', '--batch-size', '4', '--no-progress'];

interface Case {
  name: string;
  /** Files for the case under its own folder `dir`; returns the CLI arguments. */
  args: (dir: string) => string[] | Promise<string[]>;
  /** Expected exit code ('nonzero': any failure code but 1, which is "unexpected error"). */
  code: number | 'nonzero';
  /** What the output (stdout + stderr) must say: the file, flag or field at fault, or the handled result. */
  says: RegExp;
  /** Extra checks on the case folder after the run. */
  check?: (dir: string, r: Run) => void;
  env?: Record<string, string | undefined>;
  /** Files under this folder of the case may change (a resumed run continues its own files). */
  mayChange?: string;
}

// ------------------------------------------------------------------------------------------ damaged inputs

/** A copy of `file` with its safetensors tensor `name` (F32) given `value` at element 0. */
function poke(file: string, out: string, pick: (name: string) => boolean, value: number): void {
  const b = Buffer.from(readFileSync(file));
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const [name, t] = Object.entries(header).find(([k, v]) => k !== '__metadata__' && pick(k) && (v.dtype === 'F32' || v.dtype === 'F16'))!;
  const at = 8 + n + t.data_offsets[0];
  if (t.dtype === 'F32') b.writeFloatLE(value, at);
  else b.writeUInt16LE(Number.isNaN(value) ? 0x7e00 : 0x7c00, at); // F16 NaN / +Inf
  // A checkpoint's NaN as a diverged run writes it: with a checksum that holds (a cache shard has its sha256 in index.json)
  writeFileSync(out, name.startsWith('param.') ? resign(b) : b);
}

/** The checkpoint's metadata JSON edited by `f`, written to `out`. */
function editMeta(file: string, out: string, f: (meta: Record<string, any>) => void): void {
  const b = Buffer.from(readFileSync(file));
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8'));
  const meta = JSON.parse(header.__metadata__.emofuse);
  f(meta);
  header.__metadata__.emofuse = JSON.stringify(meta);
  let h = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (h.length % 8)) % 8;
  h = Buffer.concat([h, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(out, resign(Buffer.concat([len, h, b.subarray(8 + n)]))); // as a checkpoint written so would be
}

function copyCache(dir: string): string {
  const c = join(dir, 'cache');
  cpSync(cache, c, { recursive: true });
  return c;
}
const shardOf = (c: string) => join(c, readdirSync(c).find((f) => f.startsWith('shard-'))!);

/** A cache copy whose index.json is edited by `f`. */
function editIndex(dir: string, f: (ix: Record<string, any>) => void): string {
  const c = copyCache(dir);
  const ix = JSON.parse(readFileSync(join(c, 'index.json'), 'utf8'));
  f(ix);
  writeFileSync(join(c, 'index.json'), JSON.stringify(ix));
  return c;
}

function manifest(dir: string, rows: string[], name = 'm.csv', header = 'id,text,audio,label,split'): string {
  const file = join(dir, name);
  writeFileSync(file, (header ? header + '\n' : '') + rows.join('\n') + '\n');
  return file;
}
const clipOf = (id: string) => join(data, 'wav', `${id}.wav`);
const goodRows = () =>
  CLASSES.flatMap((c) =>
    [0, 1, 2, 3].map((k) => `${c}-${k},text ${c},${clipOf(`${c}-${k}`)},${c},${['train', 'train', 'dev', 'test'][k]}`),
  );

function arrays(dir: string, f: (a: any) => void = () => {}): string {
  const item = (id: string, label: number) => ({
    id,
    label,
    text: [
      [0.1, 0.2],
      [0.3, 0.1],
    ],
    audio: [[0.5, 0.1, 0.2]],
  });
  const a = {
    classNames: ['a', 'b'],
    textDim: 2,
    audioDim: 3,
    splits: {
      train: [item('t0', 0), item('t1', 1), item('t2', 0), item('t3', 1)],
      dev: [item('d0', 0), item('d1', 1)],
      test: [item('s0', 0), item('s1', 1)],
    },
  };
  f(a);
  const file = join(dir, 'arrays.json');
  writeFileSync(file, JSON.stringify(a));
  return file;
}

const nanWav = (dir: string, v = NaN, all = false) => {
  const x = tone(300, 0.4);
  if (all) x.fill(v);
  else x[100] = v;
  const f = join(dir, 'bad.wav');
  writeFileSync(f, wav(x, { float: true }));
  return f;
};

// ------------------------------------------------------------------------------------------ the cases

const C: Case[] = [];
const bad = (name: string, args: Case['args'], says: RegExp, extra: Partial<Case> = {}) => C.push({ name, args, code: 2, says, ...extra });

// train: flags
for (const [flag, value, says] of [
  ['--width', 'abc', /--width/],
  ['--width', '0', /--width/],
  ['--width', '100000', /--width/],
  ['--width', '1.5', /--width/],
  ['--heads', '3', /head/],
  ['--heads', '0', /--heads/],
  ['--layers', '-1', /--layers/],
  ['--ffn-mult', '0', /--ffn-mult/],
  ['--epochs', '0', /--epochs/],
  ['--epochs', '-2', /--epochs/],
  ['--epochs', 'ten', /--epochs/],
  ['--batch-size', '0', /--batch-size/],
  ['--batch-size', '100000', /--batch-size/],
  ['--lr', 'nan', /--lr/],
  ['--lr', 'Infinity', /--lr/],
  ['--lr', '-1', /--lr/],
  ['--lr', '0', /--lr/],
  ['--min-lr', 'x', /--min-lr/],
  ['--dropout', '1', /--dropout/],
  ['--dropout', '-0.1', /--dropout/],
  ['--block-dropout', '2', /--block-dropout/],
  ['--linear-skip', 'yes', /--linear-skip/],
  ['--label-smoothing', '1', /--label-smoothing/],
  ['--decay', 'step', /--decay/],
  ['--class-weights', '0,0', /--class-weights/],
  ['--class-weights', '1,2,3', /--class-weights/],
  ['--class-weights', 'a,b', /--class-weights/],
  ['--class-weights', '-1,1', /--class-weights/],
  ['--class-weights', 'NaN,1', /--class-weights/],
  ['--fusion', 'bogus', /--fusion/],
  ['--patience', '-1', /--patience/],
  ['--save-every', 'x', /--save-every/],
  ['--max-text-len', '0', /--max-text-len/],
  ['--max-audio-len', '-5', /--max-audio-len/],
  ['--warmup', '-3', /--warmup/],
  ['--seed', '-1', /--seed/],
  ['--weight-decay', 'nan', /--weight-decay/],
  ['--max-grad-norm', '-1', /--max-grad-norm/],
  ['--backend', 'bogus', /--backend/],
  ['--train-split', 'nope', /nope/],
  ['--dev-split', 'nope', /nope/],
] as const) {
  bad(`train ${flag} ${value}`, (d) => ['train', '--features', arrays(d), ...small, flag, value, '--out', join(d, 'run')], says);
}

bad(
  'train --synthetic-seed -1',
  (d) => ['train', '--synthetic', '--synthetic-seed', '-1', ...small, '--out', join(d, 'run')],
  /--synthetic-seed/,
);
bad(
  'train --resume and --force together',
  (d) => ['train', '--synthetic', ...small, '--resume', '--force', '--out', join(d, 'run')],
  /--resume.*--force/,
);

// train: data
bad('train without data', (d) => ['train', ...small, '--out', join(d, 'run')], /--features/);
bad(
  'train --features and --synthetic',
  (d) => ['train', '--features', arrays(d), '--synthetic', ...small, '--out', join(d, 'run')],
  /--synthetic/,
);
bad('train --features missing', (d) => ['train', '--features', join(d, 'nope.json'), ...small, '--out', join(d, 'run')], /nope\.json/);
bad(
  'train --features not JSON',
  (d) => (writeFileSync(join(d, 'x.json'), 'hello'), ['train', '--features', join(d, 'x.json'), ...small, '--out', join(d, 'run')]),
  /x\.json/,
);
bad(
  'train --features JSON array',
  (d) => (writeFileSync(join(d, 'x.json'), '[1,2]'), ['train', '--features', join(d, 'x.json'), ...small, '--out', join(d, 'run')]),
  /x\.json/,
);
bad(
  'train arrays with NaN feature',
  (d) => ['train', '--features', arrays(d, (a) => (a.splits.train[0].text[0][0] = 'NaN')), ...small, '--out', join(d, 'run')],
  /arrays\.json/,
);
bad(
  'train arrays with 1e39 feature',
  (d) => ['train', '--features', arrays(d, (a) => (a.splits.train[0].audio[0][1] = 1e39)), ...small, '--out', join(d, 'run')],
  /arrays\.json/,
);
bad(
  'train arrays label out of range',
  (d) => ['train', '--features', arrays(d, (a) => (a.splits.train[0].label = 7)), ...small, '--out', join(d, 'run')],
  /arrays\.json/,
);
bad(
  'train arrays wrong text width',
  (d) => ['train', '--features', arrays(d, (a) => (a.splits.train[1].text = [[1, 2, 3]])), ...small, '--out', join(d, 'run')],
  /arrays\.json/,
);
bad(
  'train arrays no train split',
  (d) => ['train', '--features', arrays(d, (a) => delete a.splits.train), ...small, '--out', join(d, 'run')],
  /train/,
);
bad(
  'train arrays classNames not an array',
  (d) => ['train', '--features', arrays(d, (a) => (a.classNames = 'ab')), ...small, '--out', join(d, 'run')],
  /classNames/,
);
bad(
  'train --features empty folder',
  (d) => (mkdirSync(join(d, 'empty')), ['train', '--features', join(d, 'empty'), ...small, '--out', join(d, 'run')]),
  /index\.json/,
);
bad(
  'train cache index.json not JSON',
  (d) => {
    const c = copyCache(d);
    writeFileSync(join(c, 'index.json'), '{"format":');
    return ['train', '--features', c, ...small, '--out', join(d, 'run')];
  },
  /index\.json/,
);
bad(
  'train cache wrong format',
  (d) => ['train', '--features', editIndex(d, (ix) => (ix.format = 'other')), ...small, '--out', join(d, 'run')],
  /index\.json/,
);
bad(
  'train cache incomplete',
  (d) => ['train', '--features', editIndex(d, (ix) => (ix.complete = false)), ...small, '--out', join(d, 'run')],
  /incomplete|resume/,
);
bad(
  'train cache shard missing',
  (d) => {
    const c = copyCache(d);
    rmSync(shardOf(c));
    return ['train', '--features', c, ...small, '--out', join(d, 'run')];
  },
  /shard-/,
);
bad(
  'train cache shard truncated',
  (d) => {
    const c = copyCache(d);
    truncateSync(shardOf(c), 100);
    return ['train', '--features', c, ...small, '--out', join(d, 'run')];
  },
  /shard-.*truncated/,
);
bad(
  'train cache shard one flipped byte',
  (d) => {
    const c = copyCache(d);
    const s = shardOf(c);
    const b = readFileSync(s);
    b[b.length - 3] ^= 0x40;
    writeFileSync(s, b);
    return ['train', '--features', c, ...small, '--out', join(d, 'run')];
  },
  /shard-.*sha256/,
);
bad(
  'train cache shard with a NaN feature (valid sha256)',
  async (d) => {
    const c = copyCache(d);
    const s = shardOf(c);
    poke(s, s, (k) => k.startsWith('audio.'), NaN);
    const { createHash } = await import('node:crypto');
    const ix = JSON.parse(readFileSync(join(c, 'index.json'), 'utf8'));
    const name = s.split('/').pop();
    const rec = ix.shards.find((x: { file: string }) => x.file === name);
    rec.sha256 = createHash('sha256').update(readFileSync(s)).digest('hex');
    writeFileSync(join(c, 'index.json'), JSON.stringify(ix));
    return ['train', '--features', c, ...small, '--out', join(d, 'run')];
  },
  /non-finite|NaN/,
);
bad(
  'train cache split lists unknown id',
  (d) => ['train', '--features', editIndex(d, (ix) => ix.splits.train.ids.push('ghost')), ...small, '--out', join(d, 'run')],
  /ghost/,
);
bad(
  'train text-only cache with a bimodal fusion',
  (d) => ['train', '--features', textCache, ...small, '--out', join(d, 'run')],
  /--fusion text|text-only|audio/,
);

// train: run folders
bad(
  'train --out is an existing file',
  (d) => (writeFileSync(join(d, 'f'), 'x'), ['train', '--synthetic', ...small, '--out', join(d, 'f')]),
  /--out|f\b/,
);
bad(
  'train --out under a file',
  (d) => (writeFileSync(join(d, 'f'), 'x'), ['train', '--synthetic', ...small, '--out', join(d, 'f', 'run')]),
  /--out|ENOTDIR|not a folder/,
);
bad(
  'train into a used run folder without --resume',
  (d) => (cpSync(runDir, join(d, 'run'), { recursive: true }), ['train', '--features', cache, ...small, '--out', join(d, 'run')]),
  /--resume|--force/,
);
bad(
  'train --resume with nothing to resume',
  (d) => ['train', '--features', cache, ...small, '--out', join(d, 'run'), '--resume'],
  /last\.safetensors|nothing to resume/,
);
bad(
  'train --resume with another --width',
  (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }),
    ['train', '--features', cache, ...withFlag(small, '--width', '32'), '--out', join(d, 'run'), '--resume']
  ),
  /--width/,
);
bad(
  'train --resume with another --batch-size',
  (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }),
    ['train', '--features', cache, ...withFlag(small, '--batch-size', '8'), '--out', join(d, 'run'), '--resume']
  ),
  /--batch-size/,
);
bad(
  'train --resume with another --seed',
  (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }),
    ['train', '--features', cache, ...small, '--seed', '9', '--out', join(d, 'run'), '--resume']
  ),
  /--seed/,
);
bad(
  'train --resume with another --fusion',
  (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }),
    ['train', '--features', cache, ...small, '--fusion', 'concat', '--out', join(d, 'run'), '--resume']
  ),
  /--fusion/,
);
bad(
  'train --resume with another --lr',
  (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }),
    ['train', '--features', cache, ...small, '--lr', '0.5', '--out', join(d, 'run'), '--resume']
  ),
  /--lr/,
);
bad(
  'train --resume on other features',
  (d) => (cpSync(runDir, join(d, 'run'), { recursive: true }), ['train', '--synthetic', ...small, '--out', join(d, 'run'), '--resume']),
  /features|synthetic|encoder/,
);
C.push({
  name: 'train --resume with a torn last metrics line continues',
  args: (d) => {
    cpSync(runDir, join(d, 'run'), { recursive: true });
    appendFileSync(join(d, 'run', 'metrics.jsonl'), '{"epoch": 2, "trai');
    return ['train', '--features', cache, ...withFlag(small, '--epochs', '2'), '--out', join(d, 'run'), '--resume'];
  },
  code: 0,
  says: /epoch 2/,
  mayChange: 'run/',
  check: (d) => {
    const lines = readFileSync(join(d, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.epoch)).toEqual([1, 2]);
    expect(lines[0].run).toBe(lines[1].run); // one run id across the resume
  },
});
C.push({
  name: 'train --force starts over in a used run folder',
  args: (d) => (
    cpSync(runDir, join(d, 'run'), { recursive: true }), ['train', '--features', cache, ...small, '--force', '--out', join(d, 'run')]
  ),
  code: 0,
  says: /best checkpoint/,
  mayChange: 'run/',
  check: (d) =>
    expect(
      readFileSync(join(d, 'run', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(1),
});
C.push({
  name: 'train --resume after a damaged last.safetensors falls back to best.safetensors',
  args: (d) => {
    cpSync(runDir, join(d, 'run'), { recursive: true });
    writeFileSync(join(d, 'run', 'last.safetensors'), readFileSync(join(d, 'run', 'last.safetensors')).subarray(0, 500));
    return ['train', '--features', cache, ...withFlag(small, '--epochs', '2'), '--out', join(d, 'run'), '--resume'];
  },
  code: 0,
  says: /damaged.*resuming from .*best\.safetensors/s,
  mayChange: 'run/',
});
bad(
  'train --resume with truncated last and best checkpoints',
  (d) => {
    cpSync(runDir, join(d, 'run'), { recursive: true });
    truncateSync(join(d, 'run', 'last.safetensors'), 200);
    truncateSync(join(d, 'run', 'best.safetensors'), 200);
    return ['train', '--features', cache, ...small, '--out', join(d, 'run'), '--resume'];
  },
  /last\.safetensors.*delete/s,
);

// eval
const evalArgs = (d: string, ck: string, extra: string[] = []) => [
  'eval',
  '--checkpoint',
  ck,
  '--features',
  cache,
  '--backend',
  'cpu',
  '--out',
  join(d, 'eval'),
  ...extra,
];
bad('eval --checkpoint missing', (d) => evalArgs(d, join(d, 'nope.safetensors')), /nope\.safetensors/);
bad(
  'eval --checkpoint empty file',
  (d) => (writeFileSync(join(d, 'e.safetensors'), ''), evalArgs(d, join(d, 'e.safetensors'))),
  /e\.safetensors/,
);
bad(
  'eval --checkpoint truncated',
  (d) => (writeFileSync(join(d, 't.safetensors'), readFileSync(ckpt).subarray(0, 3000)), evalArgs(d, join(d, 't.safetensors'))),
  /t\.safetensors/,
);
bad(
  'eval --checkpoint random bytes',
  (d) => (
    writeFileSync(join(d, 'r.safetensors'), Buffer.from(Array.from({ length: 500 }, (_, i) => (i * 37) % 256))),
    evalArgs(d, join(d, 'r.safetensors'))
  ),
  /r\.safetensors/,
);
bad('eval --checkpoint a folder', (d) => evalArgs(d, d), /checkpoint|folder|directory/);
bad(
  'eval --checkpoint with NaN parameters',
  (d) => (poke(ckpt, join(d, 'n.safetensors'), (k) => k.startsWith('param.'), NaN), evalArgs(d, join(d, 'n.safetensors'))),
  /n\.safetensors.*(non-finite|NaN)|(non-finite|NaN).*n\.safetensors/s,
);
bad(
  'eval --checkpoint with Inf parameters',
  (d) => (poke(ckpt, join(d, 'i.safetensors'), (k) => k.startsWith('param.'), Infinity), evalArgs(d, join(d, 'i.safetensors'))),
  /i\.safetensors/,
);
bad(
  'eval --checkpoint without emofuse metadata',
  (d) => (
    editMeta(ckpt, join(d, 'm.safetensors'), (m) => {
      for (const k of Object.keys(m)) delete m[k];
    }),
    evalArgs(d, join(d, 'm.safetensors'))
  ),
  /m\.safetensors/,
);
bad(
  'eval --checkpoint class names differ from the cache',
  (d) => (editMeta(ckpt, join(d, 'c.safetensors'), (m) => (m.classNames = ['w', 'x', 'y', 'z'])), evalArgs(d, join(d, 'c.safetensors'))),
  /predicts \[w, x, y, z\].*labelled \[angry/,
);
bad(
  'eval --checkpoint encoder differs from the cache',
  (d) => (editMeta(ckpt, join(d, 'x.safetensors'), (m) => (m.audioEncoder = 'speech')), evalArgs(d, join(d, 'x.safetensors'))),
  /encoder|speech/,
);
bad('eval --split nope', (d) => evalArgs(d, ckpt, ['--split', 'nope']), /nope/);
bad('eval --batch-size 0', (d) => evalArgs(d, ckpt, ['--batch-size', '0']), /--batch-size/);
bad(
  'eval on features of other widths',
  (d) => ['eval', '--checkpoint', ckpt, '--features', arrays(d), '--backend', 'cpu', '--out', join(d, 'eval')],
  /dim|width|features/,
);
bad(
  'eval --out is a file',
  (d) => (writeFileSync(join(d, 'f'), 'x'), ['eval', '--checkpoint', ckpt, '--features', cache, '--backend', 'cpu', '--out', join(d, 'f')]),
  /f\b|--out/,
);
bad('eval without data', (d) => ['eval', '--checkpoint', ckpt, '--backend', 'cpu', '--out', join(d, 'eval')], /--features/);

// predict
const clip = () => clipOf('happy-0');
const pred = (ck: string, extra: string[]) => ['predict', '--checkpoint', ck, '--backend', 'cpu', ...extra];
bad('predict --checkpoint missing', (d) => pred(join(d, 'nope.safetensors'), ['--text', 'hi', '--audio', clip()]), /nope\.safetensors/);
bad(
  'predict --checkpoint empty',
  (d) => (writeFileSync(join(d, 'e.safetensors'), ''), pred(join(d, 'e.safetensors'), ['--text', 'hi', '--audio', clip()])),
  /e\.safetensors/,
);
bad(
  'predict --checkpoint truncated',
  (d) => (
    writeFileSync(join(d, 't.safetensors'), readFileSync(ckpt).subarray(0, 3000)),
    pred(join(d, 't.safetensors'), ['--text', 'hi', '--audio', clip()])
  ),
  /t\.safetensors/,
);
bad(
  'predict --checkpoint foreign bytes',
  (d) => (
    writeFileSync(join(d, 'r.safetensors'), 'not a checkpoint at all, just words'),
    pred(join(d, 'r.safetensors'), ['--text', 'hi', '--audio', clip()])
  ),
  /r\.safetensors/,
);
bad(
  'predict --checkpoint with NaN parameters',
  (d) => (
    poke(ckpt, join(d, 'n.safetensors'), (k) => k.startsWith('param.'), NaN),
    pred(join(d, 'n.safetensors'), ['--text', 'hi', '--audio', clip()])
  ),
  /n\.safetensors/,
);
bad(
  'predict --checkpoint from synthetic data',
  (d) => ['predict', '--checkpoint', join(d, 'syn', 'best.safetensors'), '--text', 'hi', '--audio', clip(), '--backend', 'cpu'],
  /synthetic/,
  {
    args: async (d) => {
      const r = await emofuse(['train', '--synthetic', ...small, '--out', join(d, 'syn')]);
      if (r.code !== 0) throw new Error(r.stderr);
      return ['predict', '--checkpoint', join(d, 'syn', 'best.safetensors'), '--text', 'hi', '--audio', clip(), '--backend', 'cpu'];
    },
  },
);
bad('predict --audio missing', (d) => pred(ckpt, ['--text', 'hi', '--audio', join(d, 'nope.wav')]), /nope\.wav/);
bad('predict --audio a folder', (d) => (mkdirSync(join(d, 'x.wav')), pred(ckpt, ['--text', 'hi', '--audio', join(d, 'x.wav')])), /x\.wav/);
bad(
  'predict --audio empty file',
  (d) => (writeFileSync(join(d, 'e.wav'), ''), pred(ckpt, ['--text', 'hi', '--audio', join(d, 'e.wav')])),
  /e\.wav/,
);
bad(
  'predict --audio garbage',
  (d) => (writeFileSync(join(d, 'g.wav'), 'RIFFxxxxWAVEgarbage'), pred(ckpt, ['--text', 'hi', '--audio', join(d, 'g.wav')])),
  /g\.wav/,
);
bad(
  'predict --audio with a NaN sample',
  (d) => pred(ckpt, ['--text', 'hi', '--audio', nanWav(d)]),
  /bad\.wav.*(non-finite|NaN)|(non-finite|NaN).*bad\.wav/s,
);
bad('predict --audio with an Inf sample', (d) => pred(ckpt, ['--text', 'hi', '--audio', nanWav(d, Infinity)]), /bad\.wav/);
bad('predict --audio with 1e30 samples', (d) => pred(ckpt, ['--text', 'hi', '--audio', nanWav(d, 1e30)]), /bad\.wav/);
bad('predict --audio all NaN', (d) => pred(ckpt, ['--text', 'hi', '--audio', nanWav(d, NaN, true)]), /bad\.wav.*(non-finite|NaN)/s);
bad(
  'predict --audio unknown WAV format tag',
  (d) => (writeFileSync(join(d, 'u.wav'), wav(tone(200), { formatTag: 0x55 })), pred(ckpt, ['--text', 'hi', '--audio', join(d, 'u.wav')])),
  /u\.wav/,
);
bad(
  'predict --audio truncated header',
  (d) => (writeFileSync(join(d, 'h.wav'), readFileSync(clip()).subarray(0, 30)), pred(ckpt, ['--text', 'hi', '--audio', join(d, 'h.wav')])),
  /h\.wav/,
);
bad('predict without --audio', () => pred(ckpt, ['--text', 'hi']), /--audio/);
bad('predict --manifest and --text', (d) => pred(ckpt, ['--manifest', manifest(d, ['a,hi,x.wav']), '--text', 'hi']), /--manifest/);
bad('predict --manifest missing', (d) => pred(ckpt, ['--manifest', join(d, 'nope.csv')]), /nope\.csv/);
bad('predict --manifest empty', (d) => (writeFileSync(join(d, 'e.csv'), ''), pred(ckpt, ['--manifest', join(d, 'e.csv')])), /e\.csv/);
bad('predict --manifest without audio column', (d) => pred(ckpt, ['--manifest', manifest(d, ['a,hi'], 'm.csv', 'id,text')]), /audio/);
bad(
  'predict --manifest JSONL bad line',
  (d) => (writeFileSync(join(d, 'm.jsonl'), '{"id":"a","audio":"x.wav"}\n{oops\n'), pred(ckpt, ['--manifest', join(d, 'm.jsonl')])),
  /m\.jsonl.*2|line 2/s,
);
C.push({
  name: 'predict --manifest with one bad clip keeps the good predictions',
  args: (d) => {
    writeFileSync(join(d, 'bad.wav'), 'broken');
    return pred(ckpt, [
      '--manifest',
      manifest(d, [`a,hello,${clip()}`, `b,hello,${join(d, 'bad.wav')}`, `c,hello,${clipOf('sad-0')}`], 'm.csv', 'id,text,audio'),
      '--out',
      join(d, 'p.jsonl'),
    ]);
  },
  code: 'nonzero',
  says: /bad\.wav/,
  check: (d) => {
    const lines = readFileSync(join(d, 'p.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(['a', 'c']);
  },
});
bad(
  'predict --out is a folder',
  (d) => (
    mkdirSync(join(d, 'o')), pred(ckpt, ['--manifest', manifest(d, [`a,hello,${clip()}`], 'm.csv', 'id,text,audio'), '--out', join(d, 'o')])
  ),
  /\bo\b|--out/,
);
C.push({
  name: 'predict serves a text-only checkpoint',
  args: () => pred(join(textRun, 'best.safetensors'), ['--text', 'what a wonderful day']),
  code: 0,
  says: new RegExp(CLASSES.join('|')),
});

// extract
const ex = (d: string, m: string, extra: string[] = []) => [
  'extract',
  '--dataset',
  'manifest',
  '--data',
  m,
  '--out',
  join(d, 'out'),
  '--no-progress',
  ...extra,
];
bad('extract --dataset bogus', (d) => ['extract', '--dataset', 'bogus', '--data', d, '--out', join(d, 'out')], /bogus/);
bad('extract --data missing', (d) => ex(d, join(d, 'nope.csv')), /nope\.csv/);
bad('extract without --data', (d) => ['extract', '--dataset', 'manifest', '--out', join(d, 'out')], /--data/);
bad('extract --batch-size 0', (d) => ex(d, manifest(d, goodRows()), ['--batch-size', '0']), /--batch-size/);
bad('extract --shard-size x', (d) => ex(d, manifest(d, goodRows()), ['--shard-size', 'x']), /--shard-size/);
bad('extract --limit 0', (d) => ex(d, manifest(d, goodRows()), ['--limit', '0']), /--limit/);
bad('extract --text-encoder bogus', (d) => ex(d, manifest(d, goodRows()), ['--text-encoder', 'bogus']), /bogus/);
bad('extract --text-encoder hash:1', (d) => ex(d, manifest(d, goodRows()), ['--text-encoder', 'hash:1']), /hash/);
bad('extract --audio-encoder bogus', (d) => ex(d, manifest(d, goodRows()), ['--audio-encoder', 'bogus']), /bogus/);
bad('extract manifest empty', (d) => (writeFileSync(join(d, 'e.csv'), ''), ex(d, join(d, 'e.csv'))), /e\.csv/);
bad('extract manifest without label column', (d) => ex(d, manifest(d, ['a,hi,x.wav'], 'm.csv', 'id,text,audio')), /label/);
bad('extract manifest row without id', (d) => ex(d, manifest(d, [...goodRows(), `,hi,${clip()},happy,train`])), /id/);
bad('extract manifest unparsable CSV', (d) => ex(d, manifest(d, ['a,"unterminated,x.wav,happy,train'])), /m\.csv/);
bad(
  'extract JSONL text not a string',
  (d) => {
    writeFileSync(
      join(d, 'm.jsonl'),
      JSON.stringify({ id: 'a', text: 42, audio: clip(), label: 'happy' }) +
        '\n' +
        JSON.stringify({ id: 'b', text: 'x', audio: clip(), label: 'sad' }) +
        '\n',
    );
    return ex(d, join(d, 'm.jsonl'));
  },
  /text/,
);
bad('extract JSONL not objects', (d) => (writeFileSync(join(d, 'm.jsonl'), '[1]\n'), ex(d, join(d, 'm.jsonl'))), /m\.jsonl/);
bad(
  'extract classes.json not an array',
  (d) => (writeFileSync(join(d, 'classes.json'), '{"a":1}'), ex(d, manifest(d, goodRows()))),
  /classes\.json/,
);
bad(
  'extract classes.json not JSON',
  (d) => (writeFileSync(join(d, 'classes.json'), 'angry happy'), ex(d, manifest(d, goodRows()))),
  /classes\.json/,
);
bad(
  'extract label not in classes.json',
  (d) => (writeFileSync(join(d, 'classes.json'), '["angry","happy"]'), ex(d, manifest(d, goodRows()))),
  /neutral|sad|classes\.json/,
);
C.push({
  name: "extract reads the split 'Train ' as train",
  args: (d) =>
    ex(
      d,
      manifest(
        d,
        goodRows().map((r) => r.replace(/,train$/, ',Train ')),
      ),
      ['--json'],
    ),
  code: 0,
  says: /"train": 8/,
  check: (d) =>
    expect(Object.keys(JSON.parse(readFileSync(join(d, 'out', 'index.json'), 'utf8')).splits).sort()).toEqual(['dev', 'test', 'train']),
});
bad('extract duplicate ids', (d) => ex(d, manifest(d, [...goodRows(), goodRows()[0]!])), /angry-0|duplicate/);
bad(
  'extract --out is a file',
  (d) => (
    writeFileSync(join(d, 'f'), 'x'),
    ['extract', '--dataset', 'manifest', '--data', manifest(d, goodRows()), '--out', join(d, 'f'), '--no-progress']
  ),
  /\/f\b|--out/,
);
bad(
  'extract --out under a file',
  (d) => (
    writeFileSync(join(d, 'f'), 'x'),
    ['extract', '--dataset', 'manifest', '--data', manifest(d, goodRows()), '--out', join(d, 'f', 'c'), '--no-progress']
  ),
  /\/f\b|--out/,
);
bad(
  'extract emodb with EMOFUSE_ASSETS wrong',
  () => ['extract', '--dataset', 'emodb', '--out', join(tmp, 'never')],
  /EMOFUSE_ASSETS|emodb/,
  { env: { EMOFUSE_ASSETS: '/nonexistent/assets' } },
);
bad(
  'extract --dataset controlled on a non-dataset folder',
  (d) => ['extract', '--dataset', 'controlled', '--data', d, '--out', join(d, 'out')],
  /controlled|manifest|make-dataset/,
);
C.push({
  name: 'extract --dataset meld without test_sent_emo.csv says the cache has train and dev only',
  args: (d) => {
    const csv = (n: number) =>
      [
        'Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID',
        ...Array.from({ length: n }, (_, i) => `${i + 1},words ${i},Ross,${['joy', 'anger', 'neutral'][i % 3]},positive,${i},0`),
      ].join('\n') + '\n';
    writeFileSync(join(d, 'train_sent_emo.csv'), csv(6));
    writeFileSync(join(d, 'dev_sent_emo.csv'), csv(3));
    return ['extract', '--dataset', 'meld', '--data', d, '--text-only', '--out', join(d, 'out'), '--no-progress'];
  },
  code: 0,
  says: /no test_sent_emo\.csv.*train and dev only/,
});
bad(
  'extract --dataset meld on an empty folder',
  (d) => ['extract', '--dataset', 'meld', '--data', d, '--text-only', '--out', join(d, 'out')],
  /sent_emo|meld/i,
);
for (const [what, make, says] of [
  ['a NaN sample', (d: string) => nanWav(d), /non-finite|NaN/],
  ['an Inf sample', (d: string) => nanWav(d, -Infinity), /non-finite|Inf/],
  ['1e30 samples', (d: string) => nanWav(d, 1e30), /non-finite|range|1e\+30/],
  ['all NaN samples', (d: string) => nanWav(d, NaN, true), /NaN|non-finite/],
  [
    'an unknown WAV format tag',
    (d: string) => (writeFileSync(join(d, 'bad.wav'), wav(tone(200), { formatTag: 0x55 })), join(d, 'bad.wav')),
    /format/,
  ],
  ['a folder named bad.wav', (d: string) => (mkdirSync(join(d, 'bad.wav')), join(d, 'bad.wav')), /bad\.wav/],
  ['a missing clip', (d: string) => join(d, 'bad.wav'), /bad\.wav/],
  ['an empty clip', (d: string) => (writeFileSync(join(d, 'bad.wav'), ''), join(d, 'bad.wav')), /bad\.wav/],
  [
    'a truncated clip',
    (d: string) => (writeFileSync(join(d, 'bad.wav'), readFileSync(clip()).subarray(0, 40)), join(d, 'bad.wav')),
    /bad\.wav/,
  ],
] as const) {
  C.push({
    name: `extract skips and lists a clip with ${what}`,
    args: (d) => ex(d, manifest(d, [...goodRows(), `bad-0,hello,${make(d)},happy,train`]), ['--json']),
    code: 0,
    says,
    check: (d) => {
      const ix = JSON.parse(readFileSync(join(d, 'out', 'index.json'), 'utf8'));
      expect(ix.complete).toBe(true);
      expect(ix.failures.map((f: { id: string }) => f.id)).toEqual(['bad-0']);
      expect(ix.splits.train.ids).not.toContain('bad-0');
    },
  });
}
C.push({
  name: 'extract repairs a shard with a flipped byte',
  args: (d) => {
    const c = copyCache(d);
    const s = shardOf(c);
    const b = readFileSync(s);
    b[b.length - 3] ^= 0x40;
    writeFileSync(s, b);
    return ['extract', '--dataset', 'manifest', '--data', join(data, 'manifest.csv'), '--out', c, '--no-progress'];
  },
  code: 0,
  says: /sha256|damaged|re-extract/i,
  mayChange: 'cache/',
  check: (d) => expect(readFileSync(shardOf(join(d, 'cache')))).toEqual(readFileSync(shardOf(cache))),
});

// ablate
const ab = (d: string, extra: string[]) => ['ablate', '--features', arrays(d), ...small, '--out', join(d, 'ab'), ...extra];
bad('ablate --variants bogus', (d) => ab(d, ['--variants', 'cross,bogus']), /bogus/);
bad('ablate --width 0', (d) => ab(d, ['--width', '0']), /--width/);
bad('ablate --epochs 0', (d) => ab(d, ['--epochs', '0']), /--epochs/);
bad('ablate --class-weights 0,0', (d) => ab(d, ['--class-weights', '0,0']), /--class-weights/);
bad(
  'ablate --out is a file',
  (d) => (writeFileSync(join(d, 'f'), 'x'), ['ablate', '--features', arrays(d), ...small, '--out', join(d, 'f')]),
  /\/f\b|--out/,
);
bad(
  'ablate into a used folder',
  (d) => {
    mkdirSync(join(d, 'ab'));
    writeFileSync(join(d, 'ab', 'ablation.json'), '{}');
    return ab(d, []);
  },
  /--resume|--force/,
);
bad('ablate without data', (d) => ['ablate', ...small, '--out', join(d, 'ab')], /--features/);
bad('ablate --features missing', (d) => ['ablate', '--features', join(d, 'nope'), ...small, '--out', join(d, 'ab')], /nope/);

// quickstart
bad('quickstart --epochs 0', (d) => ['quickstart', '--epochs', '0', '--out', join(d, 'q')], /--epochs/, {
  check: (d) => expect(existsSync(join(d, 'q'))).toBe(false),
});
bad('quickstart --epochs x', (d) => ['quickstart', '--epochs', 'x', '--out', join(d, 'q')], /--epochs/, {
  check: (d) => expect(existsSync(join(d, 'q'))).toBe(false),
});
bad('quickstart --backend bogus', (d) => ['quickstart', '--backend', 'bogus', '--out', join(d, 'q')], /--backend/, {
  check: (d) => expect(existsSync(join(d, 'q'))).toBe(false),
});
bad('quickstart --out is a file', (d) => (writeFileSync(join(d, 'f'), 'x'), ['quickstart', '--out', join(d, 'f')]), /\/f\b|--out/);

// ------------------------------------------------------------------------------------------ running them

interface Outcome {
  run: Run;
  changed: string[];
  error?: string;
}
const outcomes = new Map<string, Outcome>();
let fixtureBefore: Map<string, string>;

async function runCase(c: Case, i: number): Promise<void> {
  const dir = join(tmp, 'cases', String(i).padStart(3, '0'));
  mkdirSync(dir, { recursive: true });
  try {
    const args = await c.args(dir);
    const before = snapshot(dir);
    const run = await emofuse(args, { env: c.env });
    outcomes.set(c.name, { run, changed: modified(before, snapshot(dir)).filter((f) => !c.mayChange || !f.startsWith(c.mayChange)) });
  } catch (err) {
    outcomes.set(c.name, { run: { code: -1, stdout: '', stderr: '' }, changed: [], error: String((err as Error).stack ?? err) });
  }
}

// ------------------------------------------------------------------------------------------ every backend

/**
 * The cases whose bad values reach the model (damaged features, parameters and audio samples, checkpoints that do
 * not fit the data) run again on ort and wgsl: each backend must refuse them the same way as cpu.
 */
const REACHES_THE_MODEL = [
  'train arrays with NaN',
  'train arrays with 1e39',
  'train cache shard with a NaN',
  'eval --checkpoint with NaN',
  'eval --checkpoint with Inf',
  'eval on features of other widths',
  'predict --checkpoint with NaN',
  'predict --audio with',
  'predict --audio all',
];
for (const c of C.filter((x) => REACHES_THE_MODEL.some((p) => x.name.startsWith(p)))) {
  for (const backend of ['ort', 'wgsl']) {
    C.push({
      ...c,
      name: `${c.name} [${backend}]`,
      args: async (d) => {
        const args = await c.args(d);
        return args.includes('--backend') ? withFlag(args, '--backend', backend) : [...args, '--backend', backend];
      },
    });
  }
}

async function fixture(): Promise<void> {
  makeManifestDataset(data);
  const steps = [
    ['extract', '--dataset', 'manifest', '--data', join(data, 'manifest.csv'), '--out', cache, '--no-progress'],
    ['extract', '--dataset', 'manifest', '--data', join(data, 'manifest.csv'), '--text-only', '--out', textCache, '--no-progress'],
  ];
  await Promise.all(
    steps.map(async (s) => {
      const r = await emofuse(s);
      if (r.code !== 0) throw new Error(`fixture: emofuse ${s.join(' ')}\n${r.stderr}`);
    }),
  );
  await Promise.all(
    [
      ['train', '--features', cache, ...small, '--out', runDir],
      ['train', '--features', textCache, ...small, '--fusion', 'text', '--out', textRun],
    ].map(async (s) => {
      const r = await emofuse(s);
      if (r.code !== 0) throw new Error(`fixture: emofuse ${s.join(' ')}\n${r.stderr}`);
    }),
  );
}

beforeAll(async () => {
  if (!existsSync(bin)) throw new Error(`${bin} is not built: run 'npm run build'`);
  await fixture();
  fixtureBefore = snapshot(fx);
  const queue = C.map((c, i) => [c, i] as const);
  const workers = Array.from({ length: Number(process.env.EMOFUSE_ROBUST_JOBS ?? 3) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await runCase(next[0], next[1]);
  });
  await Promise.all(workers);
}, 1_200_000);

/** One line per outcome class, as in the issue's table (printed after the run). */
function classify(c: Case, o: Outcome): string {
  const all = `${o.run.stdout}\n${o.run.stderr}`;
  if (o.error) return 'case setup failed';
  if (/unexpected error/.test(all)) return 'unexpected error';
  if (/\n\s+at .+:\d+:\d+\)?\n/.test(all)) return 'stack trace';
  if (o.changed.length) return 'pre-existing file modified';
  const codeOk = c.code === 'nonzero' ? ![0, 1].includes(o.run.code) : o.run.code === c.code;
  if (!codeOk) return o.run.code === 0 ? 'silent wrong result (exit 0)' : 'wrong exit code';
  if (!c.says.test(all)) return 'message does not name the file/flag';
  return c.code === 0 ? 'handled correctly' : 'clear error naming file / flag / field';
}

afterAll(() => {
  const counts = new Map<string, number>();
  for (const c of C) {
    const o = outcomes.get(c.name);
    if (!o) continue;
    const k = classify(c, o);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  console.log(`robustness corpus, ${C.length} cases:\n` + [...counts].map(([k, v]) => `  ${String(v).padStart(4)}  ${k}`).join('\n'));
});

describe('robustness corpus', () => {
  it('has at least 100 distinct cases', () => {
    expect(new Set(C.map((c) => c.name)).size).toBe(C.length);
    expect(C.length).toBeGreaterThanOrEqual(100);
  });

  it.each(C.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const o = outcomes.get(c.name)!;
    if (o.error) throw new Error(`case setup failed: ${o.error}`);
    const all = `${o.run.stdout}\n${o.run.stderr}`;
    const shown = `exit ${o.run.code}\n--- stdout\n${o.run.stdout.slice(-1500)}\n--- stderr\n${o.run.stderr.slice(-1500)}`;
    expect(all, shown).not.toMatch(/unexpected error/);
    expect(all, shown).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/); // no stack trace
    expect(all, shown).not.toMatch(/\bNaN%|undefined\b/);
    if (c.code === 'nonzero') expect([0, 1].includes(o.run.code), shown).toBe(false);
    else expect(o.run.code, shown).toBe(c.code);
    expect(all, shown).toMatch(c.says);
    expect(o.changed, 'pre-existing files modified').toEqual([]);
    c.check?.(join(tmp, 'cases', String(C.indexOf(c)).padStart(3, '0')), o.run);
  });

  it('two trainings into one --out: one succeeds, the other is refused with the reason', async () => {
    const out = join(tmp, 'concurrent');
    const args = ['train', '--synthetic', ...small, '--epochs', '2', '--out', out];
    const [a, b] = await Promise.all([emofuse(args), emofuse(args)]);
    expect([a.code, b.code].sort()).toEqual([0, 2]);
    const loser = a.code === 2 ? a : b;
    expect(loser.stderr).toMatch(/in use by another training \(pid \d+|already holds a training run/);
    expect(existsSync(join(out, '.lock'))).toBe(false);
  });

  it('kill -9 during checkpoint writes: every resume continues, and the run ends as an uninterrupted one', async () => {
    const args = (out: string) => ['train', '--synthetic', ...small, '--epochs', '3', '--save-every', '1', '--out', out];
    const ref = join(tmp, 'kill-ref');
    expect((await emofuse(args(ref))).code).toBe(0);
    const out = join(tmp, 'kill');
    for (const delayMs of [900, 1300, 1700, 2100]) {
      const extra = existsSync(join(out, 'last.safetensors')) ? ['--resume'] : existsSync(out) ? ['--force'] : [];
      const child = spawn(process.execPath, [bin, ...args(out), ...extra], { stdio: 'ignore' });
      // Listen for the exit from the start: on a quiet machine a resumed run can finish before the kill.
      const exited = new Promise((r) => child.on('exit', r));
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill('SIGKILL');
      await exited;
    }
    const extra = existsSync(join(out, 'last.safetensors')) ? ['--resume'] : existsSync(out) ? ['--force'] : [];
    const last = await emofuse([...args(out), ...extra]);
    expect(last.code, last.stderr).toBe(0);
    const tensors = (f: string) => {
      const b = readFileSync(f);
      return b.subarray(8 + Number(b.readBigUInt64LE(0)));
    };
    expect(tensors(join(out, 'last.safetensors')).equals(tensors(join(ref, 'last.safetensors')))).toBe(true);
    expect(readdirSync(out).filter((f) => /\.tmp-|^\.lock$/.test(f))).toEqual([]);
    const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).epoch);
    expect(epochs).toEqual([1, 2, 3]);
  }, 300_000);

  it('Ctrl-C in train stops at a safe point and prints the --resume command, which finishes the run', async () => {
    const out = join(tmp, 'sigint');
    const args = ['train', '--synthetic', ...withFlag(small, '--epochs', '6'), '--patience', '0', '--out', out];
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b) => {
      stderr += String(b);
      if (/epoch 1:/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code, stderr).toBe(130);
    const m = /Continue with:\n\s+(emofuse .*--resume)/.exec(stderr);
    expect(m, stderr).not.toBeNull();
    const again = await emofuse(m![1]!.split(' ').slice(1));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/epochs\s+6/);
  }, 300_000);

  it('Ctrl-C in extract exits non-zero and says to run the same command, which resumes', async () => {
    const d = join(tmp, 'extract-sigint');
    mkdirSync(d, { recursive: true });
    const rows = Array.from({ length: 240 }, (_, i) => {
      const c = CLASSES[i % 4]!;
      return `u${i},text ${i},${clipOf(`${c}-${i % 4}`)},${c},${['train', 'train', 'dev', 'test'][i % 4]}`;
    });
    const args = [
      'extract',
      '--dataset',
      'manifest',
      '--data',
      manifest(d, rows),
      '--out',
      join(d, 'out'),
      '--shard-size',
      '4',
      '--batch-size',
      '4',
      '--no-progress',
    ];
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stderr.on('data', (b) => (stderr += String(b)));
    child.stdout.on('data', (b) => (stdout += String(b)));
    const poll = setInterval(() => {
      if (existsSync(join(d, 'out', 'index.json')) && !child.killed) child.kill('SIGINT');
    }, 20);
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    clearInterval(poll);
    expect(code, stderr + stdout).toBe(130);
    expect(stderr).toMatch(/resume by running the same command/);
    const again = await emofuse(args);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/resumed after \d+ utterances/);
  }, 300_000);

  it('left the shared fixture untouched', () => {
    expect(modified(fixtureBefore, snapshot(fx))).toEqual([]);
  });
});
