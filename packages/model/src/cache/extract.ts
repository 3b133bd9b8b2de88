// `emofuse extract`: encodes a dataset into a feature cache (the format: ./feature-cache.ts). It walks the dataset
// in order in shards of `shardSize` items; each shard and then the index are written to a temp file and renamed
// into place, so a killed run leaves a valid prefix and the next run resumes after the last complete shard.
// With `part` (extract --shard K/N) it walks only every N-th item from the K-th: a partial cache that
// ./merge.ts joins with the other N - 1 into the cache one process would have written.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AudioError, loadAudio } from '../audio/decode.ts';
import { loadAudioCached } from '../audio/clip-cache.ts';
import { AUGMENT_SEP, AUGMENT_VERSION, augmentClip, augmentedName, augmentSpec, type Augmentation } from '../audio/augment.ts';
import { writeFileAtomic } from '../io.ts';
import type { Dataset, DatasetItem } from '../datasets/types.ts';
import type { AudioEncoder, TextEncoder } from '../encoders/types.ts';
import { itemTokens } from '../encoders/types.ts';
import {
  CACHE_FORMAT,
  CACHE_FORMAT_VERSION,
  FeatureCacheError,
  NO_AUDIO,
  readCacheIndex,
  sha256,
  type CacheIndex,
  type EncoderRecord,
  type ShardRecord,
} from './feature-cache.ts';
import { encodeHalf } from './float16.ts';
import { bytesOf, encodeSafetensors } from './safetensors.ts';

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

/** Part K of N of a dataset: its items K, K + N, K + 2N, ... (extract --shard K/N). */
export interface ExtractPart {
  index: number;
  count: number;
}

/** Where part K of N goes inside an extraction's --out folder (every worker gets the same --out). */
export function partFolder(out: string, part: ExtractPart): string {
  return join(out, `part-${part.index}-of-${part.count}`);
}

/**
 * The part a worker extracts, from `--shard`: 'K/N'; or 'auto' / 'auto/N' with K (and N) from the cluster engine's
 * environment: a Kubernetes Indexed Job's JOB_COMPLETION_INDEX (N is the Job's completions, which Kubernetes does
 * not put in the environment: give it as auto/N), or a Slurm job array's SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN
 * and SLURM_ARRAY_TASK_COUNT (a contiguous array: --array=0-7 or 1-8).
 */
export function resolveShard(spec: string, env: Record<string, string | undefined> = process.env): ExtractPart {
  const bad = (m: string): never => {
    throw new FeatureCacheError(`--shard ${spec}: ${m}`);
  };
  const m = /^(auto|\d+)(?:\/(\d+))?$/.exec(spec.trim());
  if (!m) bad("expected K/N (part K of N, K from 0), 'auto' or 'auto/N' (K from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID)");
  let count = m![2] === undefined ? undefined : Number(m![2]);
  let index: number;
  if (m![1] !== 'auto') {
    if (count === undefined) bad('give the number of parts too: K/N');
    index = Number(m![1]);
  } else if (env.JOB_COMPLETION_INDEX !== undefined) {
    index = Number(env.JOB_COMPLETION_INDEX);
    if (count === undefined)
      bad("Kubernetes does not put a Job's completions in the environment: give them as --shard auto/N (N = spec.completions)");
  } else if (env.SLURM_ARRAY_TASK_ID !== undefined) {
    const [id, min, max, n, step] = ['ID', 'MIN', 'MAX', 'COUNT', 'STEP'].map((k) => env[`SLURM_ARRAY_TASK_${k}`]);
    if (
      (step ?? '1') !== '1' ||
      (min !== undefined && max !== undefined && n !== undefined && Number(max) - Number(min) + 1 !== Number(n))
    ) {
      bad(
        `the Slurm array must be contiguous (e.g. --array=0-${Number(n ?? 1) - 1}); SLURM_ARRAY_TASK_MIN=${min} MAX=${max} ` +
          `COUNT=${n} STEP=${step ?? 1}`,
      );
    }
    index = Number(id) - Number(min ?? 0);
    if (n !== undefined && count !== undefined && Number(n) !== count)
      bad(`the Slurm array has ${n} tasks (SLURM_ARRAY_TASK_COUNT), not ${count}`);
    count ??= n === undefined ? bad('SLURM_ARRAY_TASK_COUNT is not set: give --shard auto/N') : Number(n);
  } else {
    return bad('neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm job array) is set: give --shard K/N');
  }
  if (!(Number.isInteger(count) && count! >= 1 && Number.isInteger(index) && index >= 0 && index < count!))
    bad(`part ${index} of ${count}: K must be an integer in [0, N)`);
  return { index, count: count! };
}

export interface ExtractOptions {
  dataset: Dataset;
  /** Only this part of the dataset: a partial cache for `emofuse cache merge`. */
  part?: ExtractPart;
  /** Keep the decoded 16 kHz clips here (../audio/clip-cache.ts): the next extraction with another encoder skips decoding. */
  audioCache?: string;
  textEncoder: TextEncoder;
  /** null: a text-only cache. */
  audioEncoder: AudioEncoder | null;
  out: string;
  batchSize?: number;
  shardSize?: number;
  onProgress?: (p: ExtractProgress) => void;
  /** Stop (cleanly, after the current shard) when aborted; the next run resumes. */
  signal?: AbortSignal;
  /**
   * Audio augmentations of the train split (../audio/augment.ts): each train utterance is followed by one copy per
   * augmentation, `<id>~<name>` of pseudo-speaker `<speaker>~<name>`; recorded in index.json (`augment`).
   */
  augment?: readonly Augmentation[];
}

/**
 * The extraction settings --augment cannot go with (a FeatureCacheError naming the fix): a shard of a parallel
 * extraction, or no audio encoder (--text-only). The CLI asks before it loads the encoders; extractFeatures asks again.
 */
export function refuseAugmentWith(augment: readonly Augmentation[], o: { part?: unknown; audio: boolean }): void {
  if (!augment.length) return;
  if (o.part) throw new FeatureCacheError('--augment and --shard do not go together yet: extract an augmented cache in one process');
  if (!o.audio) throw new FeatureCacheError('--augment changes the audio: it needs an audio encoder (drop --text-only)');
}

/** A dataset item as the extractor walks it: an original, or an augmented copy of one (`augment`). */
type WalkItem = DatasetItem & { augment?: Augmentation; original?: DatasetItem };

/**
 * The items an extraction walks: the dataset's, each train utterance followed by its augmented copies. Refuses an
 * id or speaker that holds the separator '~' (an augmented copy's name could then be another utterance's).
 */
export function augmentedItems(dataset: Dataset, augment: readonly Augmentation[]): WalkItem[] {
  if (!augment.length) return dataset.items;
  const out: WalkItem[] = [];
  for (const it of dataset.items) {
    for (const [field, v] of [
      ['id', it.id],
      ['speaker', it.speaker],
    ] as const) {
      if (v?.includes(AUGMENT_SEP))
        throw new FeatureCacheError(
          `${dataset.source}: utterance '${it.id}' has '${AUGMENT_SEP}' in its ${field}, which --augment keeps for the ` +
            `augmented copies' names ('<id>${AUGMENT_SEP}speed0.9'): rename it, or extract without --augment`,
        );
    }
    out.push(it);
    if (it.split !== 'train' || !it.audio) continue;
    for (const a of augment) {
      out.push({
        ...it,
        id: augmentedName(it.id, a),
        ...(it.speaker === undefined ? {} : { speaker: augmentedName(it.speaker, a) }),
        augment: a,
        original: it,
      });
    }
  }
  return out;
}

export interface ExtractReport {
  cacheDir: string;
  index: CacheIndex;
  /** Items that were already in the cache when this run started. */
  resumedFrom: number;
  processedThisRun: number;
  stopped: boolean;
  /** Shards of an earlier run found missing, truncated or corrupt (sha256): they and everything after were redone. */
  repaired: { file: string; problem: string }[];
}

export async function extractFeatures(options: ExtractOptions): Promise<ExtractReport> {
  const { dataset, textEncoder, audioEncoder } = options;
  const dir = resolve(options.out);
  const batchSize = options.batchSize ?? 16;
  const shardSize = options.shardSize ?? 256;
  mkdirSync(dir, { recursive: true });
  const textRec: EncoderRecord = { id: textEncoder.id, version: textEncoder.version, dim: textEncoder.dim };
  const audioRec: EncoderRecord = audioEncoder
    ? {
        id: audioEncoder.id,
        version: audioEncoder.version,
        dim: audioEncoder.dim,
        ...(audioEncoder.window ? { window: audioEncoder.window } : {}),
        ...(audioEncoder.layers ? { layers: audioEncoder.layers } : {}),
      }
    : { ...NO_AUDIO };
  const fingerprint = datasetFingerprint(dataset);
  const part = options.part;
  if (
    part &&
    !(Number.isInteger(part.count) && part.count >= 1 && Number.isInteger(part.index) && part.index >= 0 && part.index < part.count)
  ) {
    throw new FeatureCacheError(
      `shard ${part.index}/${part.count}: the shard index K of K/N must be an integer in [0, N) and N a positive integer`,
    );
  }
  // the dataset positions this run encodes (all, or every N-th from the K-th), and their items
  const augment = options.augment ?? [];
  refuseAugmentWith(augment, { part, audio: !!audioEncoder });
  const walk = augmentedItems(dataset, augment);
  const augmentRec = augment.length ? { version: AUGMENT_VERSION, list: augment.map(augmentSpec) } : undefined;
  // every utterance has a speaker: the index records them (the augmented copies' pseudo-speakers included)
  const recordSpeakers = augment.length > 0 && walk.every((it) => it.speaker);
  const positions = walk.map((_, i) => i).filter((i) => !part || i % part.count === part.index);
  const items = positions.map((i) => walk[i]!);

  let index: CacheIndex;
  const repaired: ExtractReport['repaired'] = [];
  if (existsSync(join(dir, 'index.json'))) {
    index = readCacheIndex(dir);
    const same = (a: EncoderRecord, b: EncoderRecord) => a.id === b.id && a.version === b.version && a.dim === b.dim;
    if (index.part?.index !== part?.index || index.part?.count !== part?.count) {
      const says = (p?: ExtractPart) => (p ? `part ${p.index}/${p.count}` : 'a whole cache');
      throw new FeatureCacheError(
        `${dir} holds ${says(index.part)}, this run writes ${says(part)}: give the same --shard to resume, or another --out`,
      );
    }
    const augmentSays = (r: CacheIndex['augment']) => (r ? `${r.list.join(',')} (augmentation version ${r.version})` : 'none');
    const [had, wants] = [augmentSays(index.augment), augmentSays(augmentRec)];
    if (had !== wants)
      throw new FeatureCacheError(
        `${dir} was extracted with --augment ${had}, this run asks for --augment ${wants}: give the same --augment to resume, ` +
          'or another --out',
      );
    if (!same(index.text, textRec) || !same(index.audio, audioRec) || index.dataset.fingerprint !== fingerprint) {
      throw new FeatureCacheError(
        `${dir} already holds a cache of ${index.dataset.name} with text '${index.text.id}' and audio '${index.audio.id}'` +
          `${index.dataset.fingerprint !== fingerprint ? ' from different dataset contents' : ''}` +
          `${
            index.audio.id === audioRec.id && index.audio.version !== audioRec.version
              ? ` (audio encoder version ` +
                `${index.audio.version}${index.audio.window ? `, ${index.audio.window} window` : ''}; this run: ` +
                `${audioRec.version}${audioRec.window ? `, ${audioRec.window} window` : ''})`
              : ''
          }; ` +
          `it cannot be resumed with text '${textRec.id}', audio '${audioRec.id}' on this dataset: choose another --out or delete it`,
      );
    }
    // A shard listed in the index but missing or damaged (size or sha256) is redone, with everything after it.
    const good: ShardRecord[] = [];
    for (const s of index.shards) {
      const f = join(dir, s.file);
      const problem = !existsSync(f)
        ? 'missing'
        : statSync(f).size !== s.bytes
          ? 'truncated'
          : sha256(new Uint8Array(readFileSync(f))) !== s.sha256
            ? 'sha256 differs (corrupt)'
            : null;
      if (problem) {
        repaired.push({ file: f, problem });
        break;
      }
      good.push(s);
    }
    if (good.length < index.shards.length) index.complete = false;
    const covered = good.length ? good[good.length - 1]!.end : 0;
    index.shards = good;
    index.failures = index.failures.filter((f) => items.findIndex((it) => it.id === f.id) < covered);
  } else {
    index = {
      format: CACHE_FORMAT,
      formatVersion: CACHE_FORMAT_VERSION,
      dtype: 'float16',
      dataset: {
        name: dataset.name,
        source: dataset.source,
        classNames: [...dataset.classNames],
        items: walk.length,
        fingerprint,
      },
      text: textRec,
      audio: audioRec,
      shards: [],
      failures: [],
      splits: {},
      complete: false,
      throughput: { text: 0, audio: 0, decode: 0 },
      seconds: { text: 0, audio: 0, decode: 0 },
      ...(part ? { part: { ...part, items: items.length, shardSize } } : {}),
      ...(augmentRec ? { augment: augmentRec } : {}),
    };
  }
  const resumedFrom = index.shards.length ? index.shards[index.shards.length - 1]!.end : 0;
  // Stored utterances so far, to rebuild per-split lists.
  const stored: { id: string; label: number; split: string; speaker?: string }[] = [];
  const failedIds = new Set(index.failures.map((f) => f.id));
  for (const it of items.slice(0, resumedFrom)) if (!failedIds.has(it.id)) stored.push(it);
  const rebuildSplits = () => {
    const splits: CacheIndex['splits'] = {};
    for (const u of stored) {
      splits[u.split] ??= { ids: [], labels: [], ...(recordSpeakers ? { speakers: [] } : {}) };
      splits[u.split]!.ids.push(u.id);
      splits[u.split]!.labels.push(u.label);
      if (recordSpeakers) splits[u.split]!.speakers!.push(u.speaker!);
    }
    index.splits = splits;
  };
  const seconds = { ...index.seconds };
  const encodedCounts = {
    text: Math.round(index.throughput.text * index.seconds.text),
    audio: Math.round(index.throughput.audio * index.seconds.audio),
  };
  let doneThisRun = 0;
  let stopped = false;
  let last: { file: string; clip: Float32Array } | undefined;

  for (let start = resumedFrom; start < items.length; start += shardSize) {
    if (options.signal?.aborted) {
      stopped = true;
      break;
    }
    const end = Math.min(items.length, start + shardSize);
    const tensors: Record<string, { dtype: 'F16'; shape: number[]; data: Uint8Array }> = {};
    const meta = { ids: [] as string[], labels: [] as number[], splits: [] as string[] };
    const stored0 = stored.length;
    const failures0 = index.failures.length;
    for (let b = start; b < end; b += batchSize) {
      const batch = items.slice(b, Math.min(end, b + batchSize));
      // Decode audio; a bad file is recorded and skipped.
      const ok: { item: WalkItem; clip: Float32Array | null }[] = [];
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
          // an augmented copy follows its original: the original's clip is decoded once (`last`)
          const clip =
            last?.file === item.audio
              ? last.clip
              : options.audioCache
                ? loadAudioCached(item.audio, options.audioCache).samples
                : loadAudio(item.audio);
          last = { file: item.audio, clip };
          ok.push({ item, clip: item.augment ? augmentClip(clip, item.augment, item.original!.id) : clip });
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
          const at = audio ? itemTokens(audio, i) : null;
          // Features must be finite in float16 (|x| <= 65504): anything else is a failed utterance, never stored.
          const badText = firstNonHalf(tt);
          const badAudio = at ? firstNonHalf(at) : -1;
          if (badText >= 0 || badAudio >= 0) {
            const [which, arr, at0] = badText >= 0 ? (['text', tt, badText] as const) : (['audio', at!, badAudio] as const);
            index.failures.push({
              id: o.item.id,
              file: which === 'audio' ? (o.item.audio ?? null) : null,
              problem: 'non-finite',
              message:
                `${o.item.id}: the ${which} encoder gave a non-finite or float16-overflowing feature (${arr[at0]} at ` +
                `${at0})${which === 'audio' ? ` for ${o.item.audio}` : ''}`,
            });
            return;
          }
          tensors[`text.${k}`] = { dtype: 'F16', shape: [text.lengths[i]!, text.C], data: bytesOf(encodeHalf(tt)) };
          if (audio && at) {
            tensors[`audio.${k}`] = { dtype: 'F16', shape: [audio.lengths[i]!, audio.C], data: bytesOf(encodeHalf(at)) };
          }
          meta.ids.push(o.item.id);
          meta.labels.push(o.item.label);
          meta.splits.push(o.item.split);
          stored.push(o.item);
        });
      }
      doneThisRun += batch.length;
      options.onProgress?.({ done: b + batch.length, total: items.length, failed: index.failures.length, doneThisRun });
    }
    const file = `shard-${String(index.shards.length).padStart(5, '0')}.safetensors`;
    const shardMeta: Record<string, string> = {
      ids: JSON.stringify(meta.ids),
      labels: JSON.stringify(meta.labels),
      splits: JSON.stringify(meta.splits),
    };
    if (part) {
      // the dataset position of every stored and every failed item: what `cache merge` orders the parts by
      const pos = new Map(items.slice(start, end).map((it, j) => [it.id, positions[start + j]!]));
      shardMeta.items = JSON.stringify(stored.slice(stored0).map((it) => pos.get(it.id)!));
      for (const f of index.failures.slice(failures0)) f.item = pos.get(f.id)!;
    }
    const bytes = encodeSafetensors(tensors, shardMeta);
    writeFileAtomic(join(dir, file), bytes);
    index.shards.push({ file, start, end, utterances: meta.ids.length, bytes: bytes.length, sha256: sha256(bytes) });
    rebuildSplits();
    index.seconds = seconds;
    index.throughput = {
      text: seconds.text > 0 ? encodedCounts.text / seconds.text : 0,
      audio: seconds.audio > 0 ? encodedCounts.audio / seconds.audio : 0,
      decode: seconds.decode > 0 ? encodedCounts.audio / seconds.decode : 0,
    };
    index.complete = end === items.length;
    writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 1));
  }
  if (items.length === 0 || (resumedFrom === items.length && !index.complete)) {
    index.complete = true;
    rebuildSplits();
    writeFileAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 1));
  }
  return { cacheDir: dir, index, resumedFrom, processedThisRun: doneThisRun, stopped, repaired };
}

/** Index of the first value that is not finite in float16 (NaN, infinite, or beyond 65504), or -1. */
function firstNonHalf(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!(Math.abs(x[i]!) <= 65504)) return i;
  return -1;
}
