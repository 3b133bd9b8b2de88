// The feature cache: what `emofuse extract` writes (./extract.ts) and training reads (`openFeatureCache`).
//
//   <cache>/index.json           format, dataset (name, source, class names, fingerprint), encoders (id, version,
//                                dim, whisper's window), shards (file, item range, bytes, sha256), failures, per-split ids + labels
//   <cache>/shard-00000.safetensors   float16 tensors text.<k> [Tt, Ct] and audio.<k> [Ta, Ca] for the k-th stored
//                                utterance of the shard; __metadata__ holds ids, labels and splits as JSON
//
// Opening verifies the format, the encoders asked for, every shard's size and sha256 and its tensors, and refuses
// an incomplete cache.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { originalName } from '../audio/augment.ts';
import { packBatch, type FeatureSet, type FeatureSplit } from '../features.ts';
import { decodeHalfInto } from './float16.ts';
import { decodeSafetensors, SafetensorsError } from './safetensors.ts';

export const CACHE_FORMAT = 'emofuse-feature-cache';
export const CACHE_FORMAT_VERSION = 1;
/**
 * The audio "encoder" of a text-only cache: every utterance has zero audio tokens (audioLen 0, width 1). Training
 * accepts that for `--fusion text` and stops the bimodal variants with a message (packages/model/src/train/data.ts).
 */
export const NO_AUDIO = { id: 'none', version: 'none', dim: 1 } as const;

export interface EncoderRecord {
  id: string;
  version: string;
  dim: number;
  /** Whisper: the window its network attended over, 'sliced' (the clip's own frames) or 'full' (30 s); also part of
   * `version`, so a cache never mixes the two. Absent for encoders without the choice (and caches written before). */
  window?: 'sliced' | 'full';
  /** Whisper '@all': each token holds this many layers, [layers, dim / layers]; absent = 1. */
  layers?: number;
}
export interface ShardRecord {
  file: string;
  /** Dataset items [start, end) were processed into this shard (failures included). */
  start: number;
  end: number;
  utterances: number;
  bytes: number;
  sha256: string;
}
export interface FailureRecord {
  id: string;
  file: string | null;
  problem: string;
  message: string;
  /** The item's position in the dataset (partial caches only: what `cache merge` orders by). */
  item?: number;
}
export interface CacheIndex {
  format: typeof CACHE_FORMAT;
  formatVersion: number;
  dtype: 'float16';
  dataset: { name: string; source: string; classNames: string[]; items: number; fingerprint: string };
  text: EncoderRecord;
  audio: EncoderRecord;
  shards: ShardRecord[];
  failures: FailureRecord[];
  /** Per split: ids and labels in order (and each utterance's speaker, where the index records it). */
  splits: Record<string, { ids: string[]; labels: number[]; speakers?: string[] }>;
  complete: boolean;
  /** Utterances per second of encoder time, over this cache's extraction runs. */
  throughput: { text: number; audio: number; decode: number };
  seconds: { text: number; audio: number; decode: number };
  /**
   * A partial cache (extract --shard K/N): dataset items K, K + N, ... (`items` of them, in shards of `shardSize`,
   * the size the merged cache's shards get); shard ranges count those
   * items, and each shard's metadata adds `items`, the dataset position of each stored utterance. Training refuses
   * it: `emofuse cache merge` joins the N parts into a whole cache.
   */
  part?: { index: number; count: number; items: number; shardSize: number };
  /**
   * extract --augment: the train split's audio augmentations (as given, e.g. 'speed:0.9') and their version
   * (audio/augment.ts AUGMENT_VERSION); each train utterance has a copy per item, `<id>~speed0.9`. Absent: none.
   */
  augment?: { version: number; list: string[] };
}

export class FeatureCacheError extends Error {
  override name = 'FeatureCacheError';
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** index.json of the cache in `dir`, checked for the format and its version. */
export function readCacheIndex(dir: string): CacheIndex {
  const file = join(dir, 'index.json');
  if (!existsSync(file))
    throw new FeatureCacheError(`${dir}: no index.json: not a feature cache (make one with 'emofuse extract ... --out ${dir}')`);
  let index: CacheIndex;
  try {
    index = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FeatureCacheError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (index.format !== CACHE_FORMAT)
    throw new FeatureCacheError(`${file}: not an emofuse feature cache index (format '${String(index.format)}')`);
  if (index.formatVersion !== CACHE_FORMAT_VERSION)
    throw new FeatureCacheError(
      `${file}: cache format version ${index.formatVersion}, this emofuse reads version ${CACHE_FORMAT_VERSION}: extract again`,
    );
  checkCacheIndex(index, file);
  return index;
}

type FieldCheck = (v: unknown) => boolean;
const isObj: FieldCheck = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStr: FieldCheck = (v) => typeof v === 'string';
const isUint: FieldCheck = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isPosInt: FieldCheck = (v) => Number.isSafeInteger(v) && (v as number) >= 1;
const listOf =
  (f: FieldCheck): FieldCheck =>
  (v) =>
    Array.isArray(v) && v.every(f);
const OBJECT = [isObj, 'an object'] as const;
const STRING = [isStr, 'a string'] as const;
const UINT = [isUint, 'an integer >= 0'] as const;
const ENCODER = (m: string) =>
  [
    [m, ...OBJECT],
    [`${m}.id`, ...STRING],
    [`${m}.version`, ...STRING],
    [`${m}.dim`, isPosInt, 'an integer >= 1'],
    [`${m}.window?`, (v: unknown) => v === 'sliced' || v === 'full', "'sliced' or 'full'"],
    [`${m}.layers?`, isPosInt, 'an integer >= 1'],
  ] as const;

/**
 * index.json's fields, one row each: the field's path (`a.b`; `[]` every element of a list, `*` every value of an
 * object; `?` an optional field), its check and what it must be. checkCacheIndex walks it, parents first, so a
 * missing or mistyped field anywhere is named before any reader touches it.
 */
const INDEX_FIELDS: readonly (readonly [string, FieldCheck, string])[] = [
  ['dtype?', (v) => v === 'float16', "'float16'"],
  ['dataset', ...OBJECT],
  ['dataset.name', ...STRING],
  ['dataset.source?', ...STRING],
  [
    'dataset.classNames',
    (v) => Array.isArray(v) && v.length > 0 && v.every((x) => isStr(x) && x !== '') && new Set(v).size === v.length,
    'a list of distinct class names',
  ],
  ['dataset.items', ...UINT],
  ['dataset.fingerprint?', ...STRING],
  ...ENCODER('text'),
  ...ENCODER('audio'),
  ['shards', Array.isArray, 'a list'],
  ['shards[]', ...OBJECT],
  // a plain name inside the cache folder: never a path that leaves it
  ['shards[].file', (v) => isStr(v) && /^[^/\\]+$/.test(v as string) && v !== '.' && v !== '..', 'a file name in the cache folder'],
  ['shards[].start', ...UINT],
  ['shards[].end', ...UINT],
  ['shards[].utterances', ...UINT],
  ['shards[].bytes', ...UINT],
  ['shards[].sha256', (v) => isStr(v) && /^[0-9a-f]{64}$/.test(v as string), '64 hex digits'],
  ['failures?', Array.isArray, 'a list'],
  ['failures[]', ...OBJECT],
  ['failures[].id', ...STRING],
  ['failures[].message?', ...STRING],
  ['failures[].item?', ...UINT],
  ['splits', ...OBJECT],
  ['splits.*', ...OBJECT],
  ['splits.*.ids', listOf(isStr), 'a list of utterance ids'],
  ['splits.*.labels', listOf(isUint), 'a list of class indices'],
  ['splits.*.speakers?', listOf(isStr), 'a list of speaker names'],
  ['complete', (v) => typeof v === 'boolean', 'true or false'],
  ['throughput?', ...OBJECT],
  ['seconds?', ...OBJECT],
  ['part?', ...OBJECT],
  ['part.index', ...UINT],
  ['part.count', isPosInt, 'an integer >= 1'],
  ['part.items', ...UINT],
  ['part.shardSize', isPosInt, 'an integer >= 1'],
  ['augment?', ...OBJECT],
  ['augment.version', isPosInt, 'an integer >= 1'],
  ['augment.list', (v) => Array.isArray(v) && v.length > 0 && v.every(isStr), "a list of augmentations ('speed:0.9', 'noise:20')"],
];

/** The values at `path` (see INDEX_FIELDS), each with its concrete name (`shards[2].file`); absent parents give none. */
function fieldsAt(root: unknown, path: string): [string, unknown][] {
  let at: [string, unknown][] = [['', root]];
  for (const seg of path.split('.')) {
    const next: [string, unknown][] = [];
    const key = seg.replace(/(\[\])?\??$/, '');
    for (const [name, v] of at) {
      if (!isObj(v)) continue;
      const o = v as Record<string, unknown>;
      const keys = key === '*' ? Object.keys(o) : [key];
      for (const k of keys) {
        const child = `${name ? `${name}.` : ''}${k}`;
        if (!seg.includes('[]')) next.push([child, Object.hasOwn(o, k) ? o[k] : undefined]);
        else if (Array.isArray(o[k])) for (const [i, x] of (o[k] as unknown[]).entries()) next.push([`${child}[${i}]`, x]);
      }
    }
    at = next;
  }
  return at;
}

/**
 * index.json checked field by field against INDEX_FIELDS, then what ties fields together (labels against class names
 * and ids, shard ranges): a FeatureCacheError naming the file and the field. A class name no utterance is labelled
 * with is a warning (a model trained on it has an output that never learns), not an error.
 */
export function checkCacheIndex(index: unknown, file: string): asserts index is CacheIndex {
  const bad = (field: string, what: string) =>
    new FeatureCacheError(`${file}: field '${field}' ${what}: the index is damaged or hand-edited; extract again (or restore it)`);
  for (const [path, ok, want] of INDEX_FIELDS) {
    const optional = path.endsWith('?');
    for (const [name, v] of fieldsAt(index, path.replace(/\?$/, ''))) {
      if (v === undefined) {
        if (!optional) throw bad(name, 'is missing');
      } else if (!ok(v)) throw bad(name, `is ${JSON.stringify(v)?.slice(0, 60) ?? String(v)}, not ${want}`);
    }
  }
  const ix = index as CacheIndex;
  const K = ix.dataset.classNames.length;
  const used = new Set<number>();
  for (const [name, sp] of Object.entries(ix.splits)) {
    if (sp.labels.length !== sp.ids.length) {
      const n = Math.min(sp.labels.length, sp.ids.length);
      const first = sp.ids.length > n ? `: id '${sp.ids[n]!.slice(0, 80)}' (splits.${name}.ids[${n}]) has none` : '';
      throw bad(`splits.${name}.labels`, `has ${sp.labels.length} labels for ${sp.ids.length} ids${first}`);
    }
    if (sp.speakers && sp.speakers.length !== sp.ids.length)
      throw bad(`splits.${name}.speakers`, `has ${sp.speakers.length} speakers for ${sp.ids.length} ids`);
    const at = sp.labels.findIndex((y) => y >= K);
    if (at >= 0) throw bad(`splits.${name}.labels[${at}]`, `is ${sp.labels[at]}, but dataset.classNames has ${K} classes (0..${K - 1})`);
    for (const y of sp.labels) used.add(y);
  }
  ix.shards.forEach((s, i) => {
    if (s.end < s.start) throw bad(`shards[${i}].end`, `is ${s.end}, before its start ${s.start}`);
    if (s.utterances > s.end - s.start) throw bad(`shards[${i}].utterances`, `is ${s.utterances}, more than its ${s.end - s.start} items`);
  });
  const unused = ix.dataset.classNames.filter((_, k) => !used.has(k));
  if (ix.complete && unused.length && !warnedUnused.has(file)) {
    warnedUnused.add(file);
    console.warn(
      `emofuse: warning: ${file}: dataset.classNames lists ${K} classes, but no utterance is labelled ` +
        `${unused.map((c) => `'${c}'`).join(', ')}: a model trained on it has outputs for them that never learn`,
    );
  }
}

/** index.json files warned about already (once per process). */
const warnedUnused = new Set<string>();

interface StoredUtterance {
  id: string;
  label: number;
  text: Uint16Array;
  textLen: number;
  audio: Uint16Array | null;
  audioLen: number;
}

/**
 * The speaker of each utterance, for the corpora whose ids name it (the same names the dataset readers give:
 * RAVDESS 'actorAA' from ..-AA, EmoDB 'SS' from SSTTTEV, CREMA-D 'AAAA' from AAAA_...); a split's `speakers` if the
 * index records them; undefined otherwise (MELD's ids do not name the speaker).
 */
export function cacheSpeakers(index: Pick<CacheIndex, 'dataset'>, split: { ids: string[]; speakers?: string[] }): string[] | undefined {
  if (split.speakers?.length === split.ids.length) return split.speakers;
  const pattern = SPEAKER_IN_ID[index.dataset.name];
  if (!pattern) return undefined;
  // an augmented copy '<id>~speed0.9' (extract --augment) is its own pseudo-speaker '<speaker>~speed0.9'
  const speakers = split.ids.map((id) => {
    const original = originalName(id);
    const s = pattern.re.exec(original)?.[1];
    return s === undefined ? undefined : pattern.name(s) + id.slice(original.length);
  });
  return speakers.every((x) => x !== undefined) ? (speakers as string[]) : undefined;
}

/** Corpora whose utterance ids hold the speaker: the id's pattern (first group) and the speaker's name as the reader gives it. */
const SPEAKER_IN_ID: Record<string, { re: RegExp; name: (x: string) => string }> = {
  ravdess: { re: /^(?:.*\/)?\d\d-\d\d-\d\d-\d\d-\d\d-\d\d-(\d\d)$/, name: (x) => `actor${x}` },
  emodb: { re: /^(?:.*\/)?(\d\d)[a-z]\d\d[A-Z][a-z]$/, name: (x) => x },
  'crema-d': { re: /^(?:.*\/)?(\d{4})_[A-Z]{3}_[A-Z]{3}_[A-Z]{2}$/i, name: (x) => x },
};

function cacheSplit(utts: StoredUtterance[], textDim: number, audioDim: number, speakers: string[] | undefined): FeatureSplit {
  const dims = { text: textDim, audio: audioDim };
  return {
    size: utts.length,
    ...(speakers ? { speakers } : {}),
    ids: utts.map((u) => u.id),
    labels: Int32Array.from(utts, (u) => u.label),
    textLens: Int32Array.from(utts, (u) => u.textLen),
    audioLens: Int32Array.from(utts, (u) => u.audioLen),
    batch: (indices, shape) =>
      packBatch(utts, indices, textDim, audioDim, shape, (u, m, dst, offset, len) =>
        decodeHalfInto(u[m]!.subarray(0, len * dims[m]), dst, offset),
      ),
  };
}

export interface OpenCacheOptions {
  /** Refuse the cache unless it was made with these encoders (ids as given to extract). */
  textEncoder?: string;
  audioEncoder?: string;
  /** Check each shard's sha256 (default true); sizes and tensor shapes are always checked. */
  verifyHashes?: boolean;
}

export type FeatureCache = FeatureSet & { index: CacheIndex; dir: string };

/**
 * Reads and decodes one shard of a cache folder, checking it against its index record: present, the recorded
 * size, the recorded sha256 (unless `verifyHash` is false). `again` is the fix the errors name.
 */
export function readShard(
  dir: string,
  s: ShardRecord,
  o: { verifyHash?: boolean; again?: string } = {},
): ReturnType<typeof decodeSafetensors> {
  const file = join(dir, s.file);
  const again = o.again ?? 'extract again';
  if (!existsSync(file)) throw new FeatureCacheError(`${file}: shard listed in index.json is missing: ${again}`);
  const bytes = new Uint8Array(readFileSync(file));
  if (bytes.length !== s.bytes)
    throw new FeatureCacheError(
      `${file}: ${bytes.length} bytes, index.json says ${s.bytes}: the shard is truncated or was replaced; ${again}`,
    );
  if ((o.verifyHash ?? true) && sha256(bytes) !== s.sha256)
    throw new FeatureCacheError(`${file}: sha256 differs from index.json: the shard is corrupt; ${again}`);
  try {
    return decodeSafetensors(bytes, file);
  } catch (err) {
    if (err instanceof SafetensorsError) throw new FeatureCacheError(err.message);
    throw err;
  }
}

/** Opens and verifies a feature cache; returns the FeatureSet training reads. */
export function openFeatureCache(cacheDir: string, options: OpenCacheOptions = {}): FeatureCache {
  const dir = resolve(cacheDir);
  const index = readCacheIndex(dir);
  if (index.part) {
    throw new FeatureCacheError(
      `${dir}: a partial cache (part ${index.part.index} of ${index.part.count}, from extract --shard): join all ` +
        `${index.part.count} parts with 'emofuse cache merge <parts...> --out <cache>' and use that`,
    );
  }
  if (!index.complete) {
    throw new FeatureCacheError(
      `${dir}: extraction is incomplete (${index.shards.length ? index.shards[index.shards.length - 1]!.end : 0} of ` +
        `${index.dataset.items} utterances): run the same 'emofuse extract' again to resume`,
    );
  }
  for (const [want, have, what] of [
    [options.textEncoder, index.text.id, 'text'],
    [options.audioEncoder, index.audio.id, 'audio'],
  ] as const) {
    if (want !== undefined && want !== have)
      throw new FeatureCacheError(
        `${dir}: made with ${what} encoder '${have}', not '${want}': extract again with --${what}-encoder ${want} (into another --out)`,
      );
  }
  const byId = new Map<string, StoredUtterance>();
  for (const s of index.shards) {
    const file = join(dir, s.file);
    const decoded = readShard(dir, s, { verifyHash: options.verifyHashes ?? true });
    const ids = JSON.parse(decoded.metadata.ids ?? '[]') as string[];
    const labels = JSON.parse(decoded.metadata.labels ?? '[]') as number[];
    if (ids.length !== s.utterances)
      throw new FeatureCacheError(`${file}: holds ${ids.length} utterances, index.json says ${s.utterances}`);
    ids.forEach((id, k) => {
      const t = decoded.tensors.get(`text.${k}`);
      const a = decoded.tensors.get(`audio.${k}`);
      if (t?.dtype !== 'F16' || t.shape[1] !== index.text.dim)
        throw new FeatureCacheError(`${file}: text tensor of '${id}' is missing or not [T, ${index.text.dim}] F16`);
      if (index.audio.id !== NO_AUDIO.id && (a?.dtype !== 'F16' || a.shape[1] !== index.audio.dim))
        throw new FeatureCacheError(`${file}: audio tensor of '${id}' is missing or not [T, ${index.audio.dim}] F16`);
      byId.set(id, {
        id,
        label: labels[k]!,
        text: new Uint16Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 2),
        textLen: t.shape[0]!,
        audio: a ? new Uint16Array(a.data.buffer, a.data.byteOffset, a.data.byteLength / 2) : null,
        audioLen: a ? a.shape[0]! : 0, // a text-only cache: no audio tokens
      });
    });
  }
  const splits: Record<string, FeatureSplit> = {};
  for (const [name, sp] of Object.entries(index.splits)) {
    const utts = sp.ids.map((id) => {
      const u = byId.get(id);
      if (!u) throw new FeatureCacheError(`${dir}: split '${name}' lists '${id}', which no shard holds: extract again`);
      return u;
    });
    splits[name] = cacheSplit(utts, index.text.dim, index.audio.dim, cacheSpeakers(index, sp));
  }
  return {
    dir,
    index,
    classNames: index.dataset.classNames,
    textDim: index.text.dim,
    audioDim: index.audio.dim,
    ...(index.audio.layers ? { audioLayers: index.audio.layers } : {}),
    textEncoder: index.text.id,
    audioEncoder: index.audio.id,
    splits,
  };
}
