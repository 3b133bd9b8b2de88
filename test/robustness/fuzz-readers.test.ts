// Property-based tests (fast-check) over every reader of outside data but the checkpoint and cache readers (their
// own fuzz tests): the WAV decoder, compressed audio through ffmpeg, CSV / JSONL manifests, the JSON arrays file,
// MELD CSVs, subtitle files and label map files. Random and mutated inputs (truncations, flipped bytes, huge declared
// sizes, wrong types, odd unicode, invalid UTF-8) must end in the reader's own error (the kind the CLI prints as
// file, field, fix at exit 2) with a message of bounded length naming the file, or in a result that holds the
// reader's invariants; never another exception (a TypeError, a RangeError: "unexpected error"), a hang, or memory
// beyond the stated bound. Each property runs fuzzRuns(n) cases (EMOFUSE_FUZZ_RUNS raises it); the plain cases
// after each property are the inputs the fuzzer found that failed before their fix.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { AnalyzeError } from '../../packages/model/src/analyze/errors.ts';
import { readSubtitles } from '../../packages/model/src/analyze/subtitles.ts';
import { AudioError, decodeWav, loadAudio } from '../../packages/model/src/audio/decode.ts';
import { readArraysFile } from '../../packages/model/src/datasets/feature-sets.ts';
import { parseLabelMap, readLabelMapFile } from '../../packages/model/src/datasets/label-map.ts';
import { readManifest } from '../../packages/model/src/datasets/manifest.ts';
import { readMELD } from '../../packages/model/src/datasets/meld.ts';
import { cleanText, DatasetError } from '../../packages/model/src/datasets/types.ts';
import { DataError } from '../../packages/model/src/errors.ts';
import { firstInvalidUtf8 } from '../../packages/model/src/text-file.ts';
import type { FeatureSet } from '../../packages/model/src/features.ts';
import { fuzzRuns, readerOutcome } from '../helpers/fuzz.ts';
import { tone, wav } from './inputs.ts';

// A long run (EMOFUSE_FUZZ_RUNS) may take up to a second a case (ffmpeg under load): the test timeout grows with it.
if (process.env.EMOFUSE_FUZZ_RUNS) vi.setConfig({ testTimeout: Math.max(120_000, fuzzRuns(1) * 1000) });

const dir = mkdtempSync(join(tmpdir(), 'emofuse-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const put = (name: string, bytes: Uint8Array | string) => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

// ------------------------------------------------------------------------------------------ mutations of bytes

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'byte'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; n: number };

/** Sizes a header might declare: zero, one, the sign bit, the streaming-encoder marker, and near the top. */
const HUGE = fc.constantFrom(0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffff0, 0xffffffff, 0xffff, 0x10000);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.oneof(HUGE, fc.nat()) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 16 }) }),
);

/** `base` with `ms` applied in order (positions taken modulo the current length; a header's fields get most). */
function mutate(base: Uint8Array, ms: readonly Mutation[], headerBias = 0): Uint8Array {
  let b = Uint8Array.from(base);
  for (const m of ms) {
    const span = headerBias && m.at % 2 === 0 ? Math.min(headerBias, b.length) : b.length;
    const at = span ? m.at % span : 0;
    switch (m.kind) {
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'flip':
        if (b.length) b[at] ^= 1 << m.bit;
        break;
      case 'byte':
        if (b.length) b[at] = m.value;
        break;
      case 'u32':
        if (at + 4 <= b.length) new DataView(b.buffer, b.byteOffset).setUint32(at, m.value >>> 0, true);
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.n)]);
        break;
    }
  }
  return b;
}

const mutations = (max = 4) => fc.array(mutation, { minLength: 1, maxLength: max });

/** Whether `b` is well-formed UTF-8 (what a fatal TextDecoder accepts). */
function isUtf8(b: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Odd text for fields: control characters, a BOM, bidi overrides, combining marks, astral characters, separators. */
const ODD = fc.constantFrom(
  '\u0000',
  '\uFEFF',
  '\u202E',
  '\u0301',
  '😀',
  '\u2028',
  '"',
  ',',
  '\n',
  '\r',
  '\r\n',
  '\t',
  '-->',
  '{',
  '[',
  'null',
  '__proto__',
  'constructor',
  'toString',
  '1e400',
  '-0',
  'Â€',
  ' ',
);
/** Invalid UTF-8 sequences: a lone continuation byte, a cut multi-byte character, an overlong form, a surrogate. */
const BAD_UTF8 = fc.constantFrom([0x80], [0xc3], [0xe2, 0x82], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff], [0xf4, 0x90, 0x80, 0x80]);

/** A text document mutated: odd strings and random text spliced in, lines cut, invalid UTF-8 bytes inserted. */
function textMutations(base: string): fc.Arbitrary<Uint8Array> {
  const edit = fc.oneof(
    fc.record({ at: fc.nat(), s: fc.oneof(ODD, fc.string({ unit: 'binary', maxLength: 12 })), cut: fc.nat({ max: 6 }) }),
    fc.record({ at: fc.nat(), bad: BAD_UTF8 }),
  );
  return fc.tuple(fc.array(edit, { minLength: 1, maxLength: 6 }), fc.option(fc.nat(), { nil: undefined })).map(([edits, cut]) => {
    let b = new TextEncoder().encode(base);
    for (const e of edits) {
      const at = b.length ? e.at % (b.length + 1) : 0;
      const ins = 's' in e ? new TextEncoder().encode(e.s) : Uint8Array.from(e.bad);
      const drop = 'cut' in e ? e.cut : 0;
      b = Uint8Array.from([...b.subarray(0, at), ...ins, ...b.subarray(at + drop)]);
    }
    return cut === undefined ? b : b.subarray(0, cut % (b.length + 1));
  });
}

const stats = (name: string) => {
  const s = { ok: 0, error: 0 };
  afterAll(() => console.log(`fuzz ${name}: ${s.ok} read, ${s.error} refused`));
  return s;
};

// ------------------------------------------------------------------------------------------ strict UTF-8

describe('fuzz: the strict UTF-8 reader every text reader uses', () => {
  /** Bytes near UTF-8: valid text with bad sequences and random bytes spliced in. */
  const nearUtf8 = fc
    .array(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 6 }).map((t) => [...new TextEncoder().encode(t)]),
        BAD_UTF8,
        fc.uint8Array({ maxLength: 3 }).map((u) => [...u]),
      ),
      {
        maxLength: 8,
      },
    )
    .map((parts) => Uint8Array.from(parts.flat()));
  it('firstInvalidUtf8 is -1 exactly when a fatal TextDecoder accepts, else the bytes before it decode', () => {
    fc.assert(
      fc.property(nearUtf8, (b) => {
        const at = firstInvalidUtf8(b);
        expect(at === -1).toBe(isUtf8(b));
        if (at >= 0) expect(isUtf8(b.subarray(0, at))).toBe(true);
      }),
      { numRuns: fuzzRuns(1000) },
    );
  });
});

// ------------------------------------------------------------------------------------------ WAV

describe('fuzz: WAV decoder', () => {
  const bases = [
    wav(tone(300, 0.05)),
    wav(tone(300, 0.05), { float: true }),
    wav(tone(300, 0.03), { channels: 2, rate: 44100 }),
    wav(tone(300, 0.03), { rate: 8000, float: true, channels: 3 }),
  ].map((b) => new Uint8Array(b));

  /** Output bound: 16 samples per input byte at most (8-bit mono at 1 kHz resampled to 16 kHz). */
  const checkAudio = (bytes: Uint8Array) => (x: Float32Array) => {
    expect(x).toBeInstanceOf(Float32Array);
    expect(x.length).toBeGreaterThan(0);
    expect(x.length).toBeLessThanOrEqual(16 * bytes.length + 64);
    for (let i = 0; i < x.length; i++) if (!(Math.abs(x[i]!) <= 1000)) throw new Error(`sample ${i} is ${x[i]}`);
  };

  const s = stats('WAV (loadAudio)');
  it('loadAudio on mutated WAV files: an AudioError or finite samples within the size bound', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: bases.length - 1 }), mutations(), (k, ms) => {
        const bytes = mutate(bases[k]!, ms, 48);
        const file = put('m.wav', bytes);
        s[readerOutcome(() => loadAudio(file, { rejectSilent: false }), [AudioError], file, checkAudio(bytes))]++;
      }),
      { numRuns: fuzzRuns(400) },
    );
  });

  it('decodeWav on random bytes after a RIFF/WAVE header: an AudioError or channels of equal length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (tail) => {
        const bytes = Uint8Array.from([...new TextEncoder().encode('RIFF\0\0\0\0WAVE'), ...tail]);
        readerOutcome(
          () => decodeWav(bytes, 'r.wav'),
          [AudioError],
          'r.wav',
          (d) => {
            expect(d.channels.length).toBeGreaterThan(0);
            for (const c of d.channels) expect(c.length).toBe(d.channels[0]!.length);
          },
        );
      }),
      { numRuns: fuzzRuns(400) },
    );
  });
});

// ------------------------------------------------------------------------------------------ compressed audio (ffmpeg)

const hasFfmpeg = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasFfmpeg)('fuzz: compressed audio through ffmpeg', () => {
  const src = put('src.wav', wav(tone(300, 1)));
  const make = (ext: string, args: string[]) => {
    const out = join(dir, `base.${ext}`);
    const r = spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', src, ...args, out]);
    if (r.status !== 0) throw new Error(String(r.stderr));
    return new Uint8Array(readFileSync(out));
  };
  const bases = { mp3: make('mp3', ['-b:a', '32k']), flac: make('flac', []), ogg: make('ogg', ['-c:a', 'libvorbis']) };
  const s = stats('compressed audio (loadAudio through ffmpeg)');

  it('loadAudio on mutated MP3 / FLAC / Ogg files: an AudioError or finite samples', () => {
    fc.assert(
      fc.property(fc.constantFrom(...(Object.keys(bases) as (keyof typeof bases)[])), mutations(3), (ext, ms) => {
        const bytes = mutate(bases[ext], ms, 64);
        const file = put(`m.${ext}`, bytes);
        s[
          readerOutcome(
            () => loadAudio(file, { rejectSilent: false }),
            [AudioError],
            file,
            (x) => {
              expect(x.length).toBeGreaterThan(0);
              expect(x.length).toBeLessThanOrEqual(16000 * 3);
            },
          )
        ]++;
      }),
      { numRuns: fuzzRuns(40) },
    );
  });
});

// ------------------------------------------------------------------------------------------ manifests

describe('fuzz: CSV and JSONL manifests', () => {
  const csv =
    'id,text,audio,label,split,speaker\nu1,hello there,a/u1.wav,happy,train,s1\n' +
    'u2,"no, never",a/u2.wav,sad,dev,s2\nu3,ok,a/u3.wav,happy,,s3\n';
  const jsonl =
    '{"id":"u1","text":"hello","audio":"a/u1.wav","label":"happy","split":"train"}\n' +
    '{"id":"u2","text":"no","audio":"a/u2.wav","label":"sad","speaker":"s2"}\n{"id":3,"text":"ok","audio":"u3.wav","label":"happy"}\n';
  const checkDataset = (d: ReturnType<typeof readManifest>) => {
    expect(new Set(d.items.map((i) => i.id)).size).toBe(d.items.length);
    expect(new Set(d.classNames).size).toBe(d.classNames.length);
    for (const it of d.items) {
      expect(Number.isInteger(it.label) && it.label >= 0 && it.label < d.classNames.length).toBe(true);
      expect(typeof it.text).toBe('string');
      expect(it.split.length).toBeGreaterThan(0);
      expect(it.text).not.toContain('\uFFFD');
    }
  };
  for (const [ext, base] of [
    ['csv', csv],
    ['jsonl', jsonl],
  ] as const) {
    const s = stats(`manifest .${ext}`);
    it(`readManifest on mutated .${ext} manifests: a DatasetError or a consistent dataset; invalid UTF-8 is refused`, () => {
      fc.assert(
        fc.property(textMutations(base), fc.boolean(), (bytes, textOnly) => {
          const file = put(`manifest.${ext}`, bytes);
          const r = readerOutcome(() => readManifest(file, { textOnly }), [DatasetError], file, checkDataset);
          if (!isUtf8(bytes)) expect(r).toBe('error');
          s[r]++;
        }),
        { numRuns: fuzzRuns(300) },
      );
    });
  }
  /** Rows a user could write: any text (odd unicode included), ids unique after trimming, labels of any case. */
  const rowsArb = fc.uniqueArray(fc.stringMatching(/^[A-Za-z0-9_\-/.]{1,12}$/), { minLength: 1, maxLength: 8 }).chain((ids) =>
    fc.tuple(
      ...ids.map((id) =>
        fc.record({
          id: fc.constant(id),
          text: fc.oneof(fc.string({ unit: 'grapheme', maxLength: 20 }), ODD),
          label: fc.constantFrom('happy', 'Sad', ' ANGRY '),
          split: fc.constantFrom('', 'train', 'Dev', 'TEST '),
        }),
      ),
    ),
  );
  const quote = (v: string) => `"${v.replace(/"/g, '""')}"`;
  for (const ext of ['csv', 'jsonl'] as const) {
    it(`readManifest reads back every well-formed .${ext} manifest as written (round trip)`, () => {
      fc.assert(
        fc.property(rowsArb, (rows) => {
          const body =
            ext === 'csv'
              ? `id,text,audio,label,split\n${rows.map((r) => [r.id, r.text, 'a.wav', r.label, r.split].map(quote).join(',')).join('\n')}\n`
              : rows.map((r) => JSON.stringify({ ...r, audio: 'a.wav' })).join('\n');
          const file = put(`rt.${ext}`, body);
          const d = readManifest(file);
          expect(d.items.map((i) => i.id)).toEqual(rows.map((r) => r.id));
          expect(d.items.map((i) => d.classNames[i.label])).toEqual(rows.map((r) => r.label.trim().toLowerCase()));
          expect(d.items.map((i) => i.text)).toEqual(rows.map((r) => cleanText(r.text)));
          d.items.forEach((it, k) => {
            if (rows[k]!.split.trim()) expect(it.split).toBe(rows[k]!.split.trim().toLowerCase());
          });
        }),
        { numRuns: fuzzRuns(200) },
      );
    });
  }

  it('readManifest on random JSONL rows of any JSON values', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { maxLength: 6 }), (rows) => {
        const file = put('random.jsonl', rows.map((r) => JSON.stringify(r)).join('\n'));
        readerOutcome(() => readManifest(file), [DatasetError], file, checkDataset);
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

// ------------------------------------------------------------------------------------------ the JSON arrays file

describe('fuzz: the JSON arrays file', () => {
  const good = {
    classNames: ['calm', 'angry'],
    textDim: 2,
    audioDim: 3,
    splits: {
      train: [
        { id: 'a', label: 'calm', text: [[1, 2]], audio: [[1, 2, 3]] },
        { id: 'b', label: 1, text: [[0.5, -1]], audio: [[0, 0, 1]] },
      ],
      dev: [{ id: 'c', label: 'angry', text: [[1, 1]], audio: [[2, 2, 2]] }],
    },
  };
  const checkSet = (fs: FeatureSet) => {
    expect(new Set(fs.classNames).size).toBe(fs.classNames.length);
    expect(Number.isInteger(fs.textDim) && fs.textDim > 0).toBe(true);
    for (const [name, sp] of Object.entries(fs.splits)) {
      expect(Object.hasOwn(fs.splits, name)).toBe(true);
      expect(new Set(sp.ids).size).toBe(sp.size);
      for (const y of sp.labels) expect(y >= 0 && y < fs.classNames.length).toBe(true);
      for (const id of sp.ids) expect(id).not.toContain('\uFFFD');
    }
  };
  /** The good file with one subtree replaced by a random JSON value. */
  const replaced = fc.tuple(fc.nat(), fc.jsonValue({ maxDepth: 3 })).map(([n, v]) => {
    const doc = structuredClone(good) as unknown as Record<string, unknown>;
    const paths: (string | number)[][] = [];
    const walk = (x: unknown, path: (string | number)[]) => {
      paths.push(path);
      if (x && typeof x === 'object') for (const [k, c] of Object.entries(x)) walk(c, [...path, Array.isArray(x) ? Number(k) : k]);
    };
    walk(doc, []);
    const path = paths[n % paths.length]!;
    if (!path.length) return JSON.stringify(v);
    let at: Record<string | number, unknown> = doc;
    for (const k of path.slice(0, -1)) at = at[k] as Record<string | number, unknown>;
    at[path.at(-1)!] = v;
    return JSON.stringify(doc);
  });
  const s = stats('arrays file');
  it('readArraysFile on the good file with a subtree replaced by any JSON value: a DataError or a consistent set', () => {
    fc.assert(
      fc.property(replaced, (text) => {
        const file = put('arrays.json', text);
        s[readerOutcome(() => readArraysFile(file), [DataError], file, checkSet)]++;
      }),
      { numRuns: fuzzRuns(400) },
    );
  });
  it('readArraysFile on mutated bytes of the good file (odd unicode, invalid UTF-8, cuts)', () => {
    fc.assert(
      fc.property(textMutations(JSON.stringify(good)), (bytes) => {
        const file = put('arrays-m.json', bytes);
        const r = readerOutcome(() => readArraysFile(file), [DataError], file, checkSet);
        if (!isUtf8(bytes)) expect(r).toBe('error');
        s[r]++;
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

// ------------------------------------------------------------------------------------------ MELD CSVs

describe('fuzz: MELD CSVs', () => {
  const header = 'Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n';
  const base =
    header +
    '1,"Oh my God, he\u2019s lost it.",Monica,surprise,negative,0,0,8,21,"00:16:16,059","00:16:21,731"\n' +
    '2,Okay.,Joey,neutral,neutral,0,1,8,21,"00:16:21,731","00:16:23,232"\n' +
    '3,I hate it!,Ross,anger,negative,1,0,8,21,"00:16:23,232","00:16:25,000"\n';
  const s = stats('MELD CSV');
  it('readMELD (text only) on a mutated train CSV: a DatasetError or a consistent dataset; invalid UTF-8 is refused', () => {
    fc.assert(
      fc.property(textMutations(base), (bytes) => {
        const d = join(dir, 'meld');
        mkdirSync(d, { recursive: true });
        const file = join(d, 'train_sent_emo.csv');
        writeFileSync(file, bytes);
        const r = readerOutcome(
          () => readMELD(d, { textOnly: true }),
          [DatasetError],
          d,
          (ds) => {
            expect(new Set(ds.items.map((i) => i.id)).size).toBe(ds.items.length);
            for (const it of ds.items) {
              expect(it.label >= 0 && it.label < 7).toBe(true);
              expect(it.text).not.toContain('\uFFFD');
            }
          },
        );
        if (!isUtf8(bytes)) expect(r).toBe('error');
        s[r]++;
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

// ------------------------------------------------------------------------------------------ subtitles

describe('fuzz: subtitle files (analyze --text-from)', () => {
  const srt = '1\n00:00:01,000 --> 00:00:02,500\nHello there.\n\n2\n00:00:03,000 --> 00:00:04,000\n<i>Bye</i> now\n';
  const vtt = 'WEBVTT\n\nNOTE a note\n\n00:01.000 --> 00:02.500 align:start\nHello\n\n01:00:03.000 --> 01:00:04.000\nBye\n';
  for (const [ext, base] of [
    ['srt', srt],
    ['vtt', vtt],
  ] as const) {
    const s = stats(`subtitles .${ext}`);
    it(`readSubtitles on mutated .${ext} files: an AnalyzeError or sorted cues with finite times`, () => {
      fc.assert(
        fc.property(textMutations(base), (bytes) => {
          const file = put(`subs.${ext}`, bytes);
          const r = readerOutcome(
            () => readSubtitles(file),
            [AnalyzeError],
            file,
            (cues) => {
              expect(cues.length).toBeGreaterThan(0);
              for (let i = 0; i < cues.length; i++) {
                const c = cues[i]!;
                expect(Number.isFinite(c.start) && c.start >= 0 && c.end >= c.start).toBe(true);
                if (i) expect(c.start).toBeGreaterThanOrEqual(cues[i - 1]!.start);
                expect(c.text).not.toContain('\uFFFD');
              }
            },
          );
          if (!isUtf8(bytes)) expect(r).toBe('error');
          s[r]++;
        }),
        { numRuns: fuzzRuns(300) },
      );
    });
  }
});

// ------------------------------------------------------------------------------------------ label map files

describe('fuzz: label map files (--label-map FILE)', () => {
  const checkMap = (m: ReturnType<typeof readLabelMapFile>) => {
    expect(m.classes.length).toBeGreaterThanOrEqual(2);
    expect(new Set(m.classes).size).toBe(m.classes.length);
    for (const [from, to] of Object.entries(m.map)) {
      expect(from.length).toBeGreaterThan(0);
      if (to !== null) expect(m.classes).toContain(to);
    }
    expect(Object.getPrototypeOf(m.map)).toBe(Object.prototype);
  };
  const bases = {
    json: '{ "calm": "neutral", "happy": "joy", "boredom": null, "sad": "" }',
    csv: 'from,to\n# comment\ncalm,neutral\nhappy,joy\nboredom,\n',
    nested: '{ "classes": ["neutral", "joy"], "map": { "calm": "neutral", "happy": "joy" } }',
  };
  const s = stats('label map');
  it('readLabelMapFile on mutated JSON / CSV maps: a DatasetError or a map onto >= 2 distinct classes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...(Object.keys(bases) as (keyof typeof bases)[])).chain((k) => fc.tuple(fc.constant(k), textMutations(bases[k]))),
        ([k, bytes]) => {
          const file = put(`map.${k === 'csv' ? 'csv' : 'json'}`, bytes);
          const r = readerOutcome(() => readLabelMapFile(file), [DatasetError], file, checkMap);
          if (!isUtf8(bytes)) expect(r).toBe('error');
          s[r]++;
        },
      ),
      { numRuns: fuzzRuns(300) },
    );
  });
  it('readLabelMapFile on JSON objects with any keys and values', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.oneof(ODD, fc.string({ maxLength: 6 })), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 5 }), (o) => {
        const file = put('map-r.json', JSON.stringify(o));
        readerOutcome(() => readLabelMapFile(file), [DatasetError], file, checkMap);
      }),
      { numRuns: fuzzRuns(300) },
    );
  });
});

// ------------------------------------------------------------------------------------------ what the fuzzer found

/** The reader's error message, or 'read' when it read the input. */
const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return `${(err as Error).name}: ${(err as Error).message}`;
  }
  return 'read';
};

describe('regressions: inputs the fuzzer found (each failed before its fix)', () => {
  it('a WAV declaring 4,294,967,295 Hz is refused (was a filter of gigabytes: RangeError or out of memory)', () => {
    const b = wav(tone(300, 0.05));
    b.writeUInt32LE(0xffffffff, 24);
    expect(errorOf(() => loadAudio(put('rate-huge.wav', b)))).toMatch(
      /AudioError: .*rate-huge\.wav: WAV sample rate 4294967295 Hz is outside/,
    );
  });
  it('a WAV at an odd rate whose resampling filter passes the bound is refused with the fix; an odd rate under it is read', () => {
    const b = wav(tone(300, 0.05), { rate: 700_001 });
    expect(errorOf(() => loadAudio(put('rate-odd.wav', b)))).toMatch(
      /not a common rate .* \(at most 2097152\): convert it, e\.g\. 'ffmpeg/,
    );
    expect(loadAudio(put('rate-16001.wav', wav(tone(300, 0.05), { rate: 16_001 }))).length).toBe(800);
  });
  it.skipIf(!hasFfmpeg)('an MP3, M4A or FLAC cut in half is a truncated AudioError (was read as a shorter clip without a word)', () => {
    const src = put('four.wav', wav(tone(300, 4)));
    for (const [ext, args] of [
      ['mp3', ['-b:a', '32k']],
      ['m4a', ['-c:a', 'aac', '-movflags', '+faststart']],
      ['flac', []],
    ] as const) {
      const whole = join(dir, `four.${ext}`);
      expect(spawnSync('ffmpeg', ['-v', 'error', '-y', '-i', src, ...args, whole]).status).toBe(0);
      expect(loadAudio(whole).length).toBeGreaterThanOrEqual(63_000);
      const bytes = readFileSync(whole);
      const half = put(`half.${ext}`, bytes.subarray(0, bytes.length >> 1));
      expect(errorOf(() => loadAudio(half))).toMatch(
        /AudioError: .*half\.\w+: is truncated or damaged: it says it lasts 4\.\d+ s but only [0-9.]+ s decode/,
      );
      // predict's bound on long recordings reads the first seconds only: a cut beyond them is not looked for
      expect(loadAudio(half, { maxSeconds: 0.5 }).length).toBe(8000);
    }
  });
  it('text files that are not UTF-8 are refused with the line and byte (were read with U+FFFD in the text)', () => {
    const latin1 = (s: string) => Buffer.from(s, 'latin1');
    const m = put('latin1.csv', latin1('id,text,audio,label\nu1,caf\u00e9,a.wav,happy\nu2,ok,b.wav,sad\n'));
    expect(errorOf(() => readManifest(m))).toMatch(
      /DatasetError: .*latin1\.csv: is not UTF-8 text \(line 2, byte 26: 0xe9\): save it as UTF-8/,
    );
    const d = join(dir, 'meld-latin1');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'train_sent_emo.csv'), latin1('Utterance,Emotion,Dialogue_ID,Utterance_ID\nol\u00e9,joy,0,0\n'));
    expect(errorOf(() => readMELD(d, { textOnly: true }))).toMatch(/train_sent_emo\.csv: is not UTF-8 text \(line 2/);
    const s = put('latin1.srt', latin1('1\n00:00:01,000 --> 00:00:02,000\ncaf\u00e9\n'));
    expect(errorOf(() => readSubtitles(s))).toMatch(/AnalyzeError: .*latin1\.srt: is not UTF-8 text \(line 3/);
    const l = put('latin1-map.csv', latin1('calm,neutral\nf\u00e2ch\u00e9,anger\n'));
    expect(errorOf(() => readLabelMapFile(l))).toMatch(/DatasetError: .*latin1-map\.csv: is not UTF-8 text \(line 2/);
    const a = put('latin1-arrays.json', latin1('{"classNames":["a","\u00e9"]}'));
    expect(errorOf(() => readArraysFile(a))).toMatch(/DataError: .*latin1-arrays\.json: is not UTF-8 text \(line 1, byte 20/);
  });
  it('a MELD CSV row with the wrong column count is a DatasetError (was csv-parse\'s Error: "unexpected error")', () => {
    const d = join(dir, 'meld-cols');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'train_sent_emo.csv'), 'Utterance,Emotion,Dialogue_ID,Utterance_ID\n1\n');
    expect(errorOf(() => readMELD(d, { textOnly: true }))).toMatch(
      /DatasetError: .*train_sent_emo\.csv: cannot parse CSV: Invalid Record Length/,
    );
  });
  it('a MELD CSV with one utterance twice, or an id that is not a number, is refused (the second overwrote the first)', () => {
    const d = join(dir, 'meld-dup');
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'train_sent_emo.csv'), 'Utterance,Emotion,Dialogue_ID,Utterance_ID\nhi,joy,0,1\nho,fear,0,1\n');
    expect(errorOf(() => readMELD(d, { textOnly: true }))).toMatch(/row 3, field 'Utterance_ID': a second row for dialogue 0, utterance 1/);
    writeFileSync(join(d, 'train_sent_emo.csv'), 'Utterance,Emotion,Dialogue_ID,Utterance_ID\nhi,joy,x,1\n');
    expect(errorOf(() => readMELD(d, { textOnly: true }))).toMatch(/row 2, field 'Dialogue_ID': Dialogue_ID 'x' is not a whole number/);
  });
  describe('the arrays file', () => {
    const doc = (o: Record<string, unknown>) =>
      JSON.stringify({ classNames: ['calm', 'angry'], textDim: 1, audioDim: 1, splits: { train: [] }, ...o });
    const u = (id: unknown, label: unknown = 0) => ({ id, label, text: [[1]], audio: [[2]] });
    it.each([
      ['a JSON null (was a TypeError)', 'null', /must be a JSON object/],
      [
        'an utterance that is null (was a TypeError)',
        doc({ splits: { train: [null] } }),
        /splits\.train\[0\] must be an object .*got null/,
      ],
      [
        'a textDim of 2^52 (was RangeError: Invalid typed array length)',
        doc({ textDim: 2 ** 52 }),
        /"textDim" must be a positive integer \(at most 65536\)/,
      ],
      [
        'a class named twice (was read: two logits for one class)',
        doc({ classNames: ['calm', 'calm'] }),
        /"classNames" lists 'calm' twice/,
      ],
      [
        'an id twice in one split (was read: two utterances, one id)',
        doc({ splits: { train: [u('a'), u('a')] } }),
        /splits\.train\[1\] \(id 'a'\): id 'a' is also splits\.train\[0\]'s/,
      ],
      [
        'an id in two splits (was read: a train utterance scored on dev)',
        doc({ splits: { train: [u('a')], dev: [u('a')] } }),
        /splits\.dev\[0\].*also splits\.train\[0\]'s/,
      ],
    ])('refuses %s', (_what, text, says) => {
      expect(errorOf(() => readArraysFile(put('arrays-r.json', text)))).toMatch(says);
    });
    it("keeps a split named '__proto__' as a split (was the FeatureSet's prototype)", () => {
      const fs = readArraysFile(
        put(
          'arrays-proto.json',
          '{"classNames":["a","b"],"textDim":1,"audioDim":1,"splits":{"__proto__":[{"label":1,"text":[[1]],"audio":[[1]]}]}}',
        ),
      );
      expect(Object.keys(fs.splits)).toEqual(['__proto__']);
      expect(Object.getOwnPropertyDescriptor(fs.splits, '__proto__')?.value.size).toBe(1);
    });
    it('allocates only what the file holds: a textDim of 65,536 with a 1-value row is refused before any array is made', () => {
      const before = process.memoryUsage().arrayBuffers;
      const rows = Array.from({ length: 20_000 }, () => [1]);
      const text = doc({ textDim: 65_536, splits: { train: [{ id: 'x', label: 0, text: rows, audio: [[1]] }] } });
      expect(errorOf(() => readArraysFile(put('arrays-wide.json', text)))).toMatch(/text\[0\] has 1 values, but textDim is 65536/);
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 << 20); // was 5 GiB asked for at once
    });
  });
  it("label maps take labels named '__proto__' and 'constructor' as labels (were 'listed twice'), and no built-in is 'constructor'", () => {
    const m = readLabelMapFile(put('proto-map.json', '{"__proto__":"neutral","constructor":"joy","calm":"neutral"}'));
    expect(Object.keys(m.map)).toEqual(['__proto__', 'constructor', 'calm']);
    expect(m.classes).toEqual(['neutral', 'joy']);
    expect(Object.getPrototypeOf(m.map)).toBe(Object.prototype);
    // found by the 10,000-case run: a JSON key of spaces was kept as the label ''
    expect(errorOf(() => readLabelMapFile(put('blank-map.json', '{"!":"!"," ":"x"}')))).toMatch(
      /DatasetError: .*blank-map\.json, field 'from': an empty label \(" "\) maps to 'x': name the label/,
    );
    expect(errorOf(() => parseLabelMap('constructor'))).toMatch(/DatasetError: constructor: no such file, and not a built-in label map/);
  });
});
