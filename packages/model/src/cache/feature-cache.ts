// The feature cache: what `emofuse extract` writes and training reads.
//
//   <cache>/index.json           format, dataset (name, source, class names, fingerprint), encoders (id, version,
//                                dim), shards (file, item range, bytes, sha256), failures, per-split ids + labels
//   <cache>/shard-00000.safetensors   float16 tensors text.<k> [Tt, Ct] and audio.<k> [Ta, Ca] for the k-th stored
//                                utterance of the shard; __metadata__ holds ids, labels and splits as JSON
//
// Extraction walks the dataset in order in shards of `shardSize` items; each shard and then the index are
// written to a temp file and renamed into place, so a killed run leaves a valid prefix and the next run resumes
// after the last complete shard. Opening verifies the format, the encoders asked for, every shard's size and
// sha256 and its tensors, and refuses an incomplete cache.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AudioError, loadAudio } from '../audio/decode.ts';
import { writeFileAtomic } from '../io.ts';
import type { Dataset, DatasetItem } from '../datasets/types.ts';
import type { AudioEncoder, TextEncoder } from '../encoders/types.ts';
import { itemTokens } from '../encoders/types.ts';
import type { FeatureBatch, FeatureSet, FeatureSplit } from '../features.ts';
import { decodeHalfInto, encodeHalf } from './float16.ts';
import { bytesOf, decodeSafetensors, encodeSafetensors, SafetensorsError } from './safetensors.ts';

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
  splits: Record<string, { ids: string[]; labels: number[] }>;
  complete: boolean;
  /** Utterances per second of encoder time, over this cache's extraction runs. */
  throughput: { text: number; audio: number; decode: number };
  seconds: { text: number; audio: number; decode: number };
}

export class FeatureCacheError extends Error {
  override name = 'FeatureCacheError';
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Identifies the dataset content: ids, labels, splits, texts and audio paths, in order. */
export function datasetFingerprint(ds: Dataset): string {
  const h = createHash('sha256');
  h.update(JSON.stringify(ds.classNames));
  for (const it of ds.items) h.update(JSON.stringify([it.id, it.label, it.split, it.text, it.audio]));
  return h.digest('hex').slice(0, 32);
}



export interface ExtractProgress {
  /** Dataset items processed (this run and earlier ones). */
  done: number;
  total: number;
  failed: number;
  /** Items processed by this run (for the rate). */
  doneThisRun: number;
}

export interface ExtractOptions {
  dataset: Dataset;
  textEncoder: TextEncoder;
  /** null: a text-only cache. */
  audioEncoder: AudioEncoder | null;
  out: string;
  batchSize?: number;
  shardSize?: number;
  onProgress?: (p: ExtractProgress) => void;
  /** Stop (cleanly, after the current shard) when aborted; the next run resumes. */
  signal?: AbortSignal;
}

export interface ExtractReport {
  cacheDir: string;
  index: CacheIndex;
  /** Items that were already in the cache when this run started. */
  resumedFrom: number;
  processedThisRun: number;
  stopped: boolean;
}

function readIndex(dir: string): CacheIndex {
  const file = join(dir, 'index.json');
  if (!existsSync(file)) throw new FeatureCacheError(`${dir}: no index.json: not a feature cache (make one with 'emofuse extract ... --out ${dir}')`);
  let index: CacheIndex;
  try {
    index = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new FeatureCacheError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (index.format !== CACHE_FORMAT) throw new FeatureCacheError(`${file}: not an emofuse feature cache index (format '${String(index.format)}')`);
  if (index.formatVersion !== CACHE_FORMAT_VERSION) throw new FeatureCacheError(`${file}: cache format version ${index.formatVersion}, this emofuse reads version ${CACHE_FORMAT_VERSION}: extract again`);
  return index;
}

export async function extractFeatures(options: ExtractOptions): Promise<ExtractReport> {
  const { dataset, textEncoder, audioEncoder } = options;
  const dir = resolve(options.out);
  const batchSize = options.batchSize ?? 16;
  const shardSize = options.shardSize ?? 256;
  mkdirSync(dir, { recursive: true });
  const textRec: EncoderRecord = { id: textEncoder.id, version: textEncoder.version, dim: textEncoder.dim };
  const audioRec: EncoderRecord = audioEncoder ? { id: audioEncoder.id, version: audioEncoder.version, dim: audioEncoder.dim } : { ...NO_AUDIO };
  const fingerprint = datasetFingerprint(dataset);

  let index: CacheIndex;
  if (existsSync(join(dir, 'index.json'))) {
    index = readIndex(dir);
    const same = (a: EncoderRecord, b: EncoderRecord) => a.id === b.id && a.version === b.version && a.dim === b.dim;
    if (!same(index.text, textRec) || !same(index.audio, audioRec) || index.dataset.fingerprint !== fingerprint) {
      throw new FeatureCacheError(
        `${dir} already holds a cache of ${index.dataset.name} with text '${index.text.id}' and audio '${index.audio.id}'` +
          `${index.dataset.fingerprint !== fingerprint ? ' from different dataset contents' : ''}; ` +
          `it cannot be resumed with text '${textRec.id}', audio '${audioRec.id}' on this dataset: choose another --out or delete it`,
      );
    }
    // A shard listed in the index but missing or damaged is redone, with everything after it.
    const good: ShardRecord[] = [];
    for (const s of index.shards) {
      const f = join(dir, s.file);
      if (!existsSync(f) || statSync(f).size !== s.bytes) break;
      good.push(s);
    }
    const covered = good.length ? good[good.length - 1]!.end : 0;
    index.shards = good;
    index.failures = index.failures.filter((f) => dataset.items.findIndex((it) => it.id === f.id) < covered);
  } else {
    index = {
      format: CACHE_FORMAT,
      formatVersion: CACHE_FORMAT_VERSION,
      dtype: 'float16',
      dataset: { name: dataset.name, source: dataset.source, classNames: [...dataset.classNames], items: dataset.items.length, fingerprint },
      text: textRec,
      audio: audioRec,
      shards: [],
      failures: [],
      splits: {},
      complete: false,
      throughput: { text: 0, audio: 0, decode: 0 },
      seconds: { text: 0, audio: 0, decode: 0 },
    };
  }
  const resumedFrom = index.shards.length ? index.shards[index.shards.length - 1]!.end : 0;
  // Stored utterances so far, to rebuild per-split lists.
  const stored: { id: string; label: number; split: string }[] = [];
  const failedIds = new Set(index.failures.map((f) => f.id));
  for (const it of dataset.items.slice(0, resumedFrom)) if (!failedIds.has(it.id)) stored.push(it);
  const rebuildSplits = () => {
    const splits: CacheIndex['splits'] = {};
    for (const u of stored) (splits[u.split] ??= { ids: [], labels: [] }).ids.push(u.id), splits[u.split]!.labels.push(u.label);
    index.splits = splits;
  };
  const seconds = { ...index.seconds };
  const encodedCounts = { text: Math.round(index.throughput.text * index.seconds.text), audio: Math.round(index.throughput.audio * index.seconds.audio) };
  let doneThisRun = 0;
  let stopped = false;

  for (let start = resumedFrom; start < dataset.items.length; start += shardSize) {
    if (options.signal?.aborted) {
      stopped = true;
      break;
    }
    const end = Math.min(dataset.items.length, start + shardSize);
    const tensors: Record<string, { dtype: 'F16'; shape: number[]; data: Uint8Array }> = {};
    const meta = { ids: [] as string[], labels: [] as number[], splits: [] as string[] };
    for (let b = start; b < end; b += batchSize) {
      const batch = dataset.items.slice(b, Math.min(end, b + batchSize));
      // Decode audio; a bad file is recorded and skipped.
      const ok: { item: DatasetItem; clip: Float32Array | null }[] = [];
      const t0 = performance.now();
      for (const item of batch) {
        if (!audioEncoder) {
          ok.push({ item, clip: null });
          continue;
        }
        if (!item.audio) {
          index.failures.push({ id: item.id, file: null, problem: 'missing', message: `${item.id}: no audio file for this utterance` });
          continue;
        }
        try {
          ok.push({ item, clip: loadAudio(item.audio) });
        } catch (err) {
          if (!(err instanceof AudioError)) throw err;
          index.failures.push({ id: item.id, file: item.audio, problem: err.problem, message: err.message });
        }
      }
      const t1 = performance.now();
      seconds.decode += (t1 - t0) / 1000;
      if (ok.length) {
        const text = await textEncoder.encode(ok.map((o) => o.item.text));
        const t2 = performance.now();
        seconds.text += (t2 - t1) / 1000;
        encodedCounts.text += ok.length;
        const audio = audioEncoder ? await audioEncoder.encode(ok.map((o) => o.clip!)) : null;
        seconds.audio += (performance.now() - t2) / 1000;
        if (audio) encodedCounts.audio += ok.length;
        ok.forEach((o, i) => {
          const k = meta.ids.length;
          const tt = itemTokens(text, i);
          tensors[`text.${k}`] = { dtype: 'F16', shape: [text.lengths[i]!, text.C], data: bytesOf(encodeHalf(tt)) };
          if (audio) {
            const at = itemTokens(audio, i);
            tensors[`audio.${k}`] = { dtype: 'F16', shape: [audio.lengths[i]!, audio.C], data: bytesOf(encodeHalf(at)) };
          }
          meta.ids.push(o.item.id);
          meta.labels.push(o.item.label);
          meta.splits.push(o.item.split);
          stored.push(o.item);
        });
      }
      doneThisRun += batch.length;
      options.onProgress?.({ done: b + batch.length, total: dataset.items.length, failed: index.failures.length, doneThisRun });
    }
    const file = `shard-${String(index.shards.length).padStart(5, '0')}.safetensors`;
    const bytes = encodeSafetensors(tensors, { ids: JSON.stringify(meta.ids), labels: JSON.stringify(meta.labels), splits: JSON.stringify(meta.splits) });
    writeFileAtomic(join(dir, file), bytes);
    index.shards.push({ file, start, end, utterances: meta.ids.length, bytes: bytes.length, sha256: sha256(bytes) });
    rebuildSplits();
    index.seconds = seconds;
    index.throughput = {
      text: seconds.text > 0 ? encodedCounts.text / seconds.text : 0,
      audio: seconds.audio > 0 ? encodedCounts.audio / seconds.audio : 0,
      decode: seconds.decode > 0 ? encodedCounts.audio / seconds.decode : 0,
    };
    index.complete = end === dataset.items.length;
    writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 1));
  }
  if (dataset.items.length === 0 || (resumedFrom === dataset.items.length && !index.complete)) {
    index.complete = true;
    rebuildSplits();
    writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 1));
  }
  return { cacheDir: dir, index, resumedFrom, processedThisRun: doneThisRun, stopped };
}

interface StoredUtterance {
  id: string;
  label: number;
  text: Uint16Array;
  textLen: number;
  audio: Uint16Array | null;
  audioLen: number;
}

function cacheSplit(utts: StoredUtterance[], textDim: number, audioDim: number): FeatureSplit {
  const ids = utts.map((u) => u.id);
  const labels = Int32Array.from(utts, (u) => u.label);
  return {
    size: utts.length,
    ids,
    labels,
    batch(indices): FeatureBatch {
      const chosen = indices.map((i) => {
        const u = utts[i];
        if (!u) throw new RangeError(`utterance index ${i} out of range [0, ${utts.length})`);
        return u;
      });
      const B = chosen.length;
      const Tt = Math.max(1, ...chosen.map((u) => u.textLen));
      const Ta = Math.max(1, ...chosen.map((u) => u.audioLen));
      const text = new Float32Array(B * Tt * textDim); // [B, Tt, textDim]
      const textMask = new Float32Array(B * Tt); // [B, Tt]
      const audio = new Float32Array(B * Ta * audioDim); // [B, Ta, audioDim]
      const audioMask = new Float32Array(B * Ta); // [B, Ta]
      chosen.forEach((u, b) => {
        decodeHalfInto(u.text, text, b * Tt * textDim);
        textMask.fill(1, b * Tt, b * Tt + u.textLen);
        if (u.audio) decodeHalfInto(u.audio, audio, b * Ta * audioDim);
        audioMask.fill(1, b * Ta, b * Ta + u.audioLen);
      });
      return { ids: chosen.map((u) => u.id), labels: Int32Array.from(chosen, (u) => u.label), text, textMask, Tt, audio, audioMask, Ta };
    },
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

/** Opens and verifies a feature cache; returns the FeatureSet training reads. */
export function openFeatureCache(cacheDir: string, options: OpenCacheOptions = {}): FeatureCache {
  const dir = resolve(cacheDir);
  const index = readIndex(dir);
  if (!index.complete) {
    throw new FeatureCacheError(`${dir}: extraction is incomplete (${index.shards.length ? index.shards[index.shards.length - 1]!.end : 0} of ${index.dataset.items} utterances): run the same 'emofuse extract' again to resume`);
  }
  for (const [want, have, what] of [
    [options.textEncoder, index.text.id, 'text'],
    [options.audioEncoder, index.audio.id, 'audio'],
  ] as const) {
    if (want !== undefined && want !== have) throw new FeatureCacheError(`${dir}: made with ${what} encoder '${have}', not '${want}': extract again with --${what}-encoder ${want} (into another --out)`);
  }
  const byId = new Map<string, StoredUtterance>();
  for (const s of index.shards) {
    const file = join(dir, s.file);
    if (!existsSync(file)) throw new FeatureCacheError(`${file}: shard listed in index.json is missing: extract again`);
    const bytes = new Uint8Array(readFileSync(file));
    if (bytes.length !== s.bytes) throw new FeatureCacheError(`${file}: ${bytes.length} bytes, index.json says ${s.bytes}: the shard is truncated or was replaced; extract again`);
    if ((options.verifyHashes ?? true) && sha256(bytes) !== s.sha256) throw new FeatureCacheError(`${file}: sha256 differs from index.json: the shard is corrupt; extract again`);
    let decoded;
    try {
      decoded = decodeSafetensors(bytes, file);
    } catch (err) {
      if (err instanceof SafetensorsError) throw new FeatureCacheError(err.message);
      throw err;
    }
    const ids = JSON.parse(decoded.metadata.ids ?? '[]') as string[];
    const labels = JSON.parse(decoded.metadata.labels ?? '[]') as number[];
    if (ids.length !== s.utterances) throw new FeatureCacheError(`${file}: holds ${ids.length} utterances, index.json says ${s.utterances}`);
    ids.forEach((id, k) => {
      const t = decoded.tensors.get(`text.${k}`);
      const a = decoded.tensors.get(`audio.${k}`);
      if (!t || t.dtype !== 'F16' || t.shape[1] !== index.text.dim) throw new FeatureCacheError(`${file}: text tensor of '${id}' is missing or not [T, ${index.text.dim}] F16`);
      if (index.audio.id !== NO_AUDIO.id && (!a || a.dtype !== 'F16' || a.shape[1] !== index.audio.dim)) throw new FeatureCacheError(`${file}: audio tensor of '${id}' is missing or not [T, ${index.audio.dim}] F16`);
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
    splits[name] = cacheSplit(utts, index.text.dim, index.audio.dim);
  }
  return {
    dir,
    index,
    classNames: index.dataset.classNames,
    textDim: index.text.dim,
    audioDim: index.audio.dim,
    textEncoder: index.text.id,
    audioEncoder: index.audio.id,
    splits,
  };
}
