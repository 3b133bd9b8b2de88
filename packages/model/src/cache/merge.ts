// `emofuse cache merge`: joins the N partial caches of `extract --shard K/N` (./extract.ts) into the cache one
// process would have written: the same shards (items [0, shardSize), [shardSize, 2 shardSize), ... of the whole
// dataset), holding the same tensors, ids, labels and splits in the same order, and the failures in dataset order.
// It streams: the parts are read shard by shard in dataset order, so memory stays a few shards whatever the size.

import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeFileAtomic } from '../io.ts';
import {
  FeatureCacheError,
  readCacheIndex,
  readShard,
  sha256,
  type CacheIndex,
  type FailureRecord,
  type ShardRecord,
} from './feature-cache.ts';
import { encodeSafetensors, type SafeTensor } from './safetensors.ts';

export interface MergeOptions {
  /** Partial cache folders, or one folder holding them (its subfolders with a partial index.json). */
  parts: readonly string[];
  out: string;
  /** Utterances per output shard (default: the parts' --shard-size, what one process would have used). */
  shardSize?: number;
}

export interface MergeReport {
  cacheDir: string;
  index: CacheIndex;
  parts: string[];
}

/** One stored utterance of a part, in the part's order. */
interface PartUtterance {
  item: number;
  id: string;
  label: number;
  split: string;
  tensors: [string, SafeTensor][]; // text, then audio (as extract wrote them)
}

/** The part folders named by `parts`: each a partial cache, or a folder of them. */
export function findParts(parts: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of parts) {
    const dir = resolve(p);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new FeatureCacheError(`${p}: no such folder (a partial cache from extract --shard, or a folder of them)`);
    if (existsSync(join(dir, 'index.json'))) {
      out.push(dir);
      continue;
    }
    const subs = readdirSync(dir)
      .map((n) => join(dir, n))
      .filter((d) => statSync(d).isDirectory() && existsSync(join(d, 'index.json')));
    if (!subs.length) throw new FeatureCacheError(`${p}: neither a feature cache (no index.json) nor a folder of partial caches`);
    out.push(...subs.sort());
  }
  return out;
}

/** Reads a part's stored utterances shard by shard (checking each shard's size and sha256), in its order. */
function* partUtterances(dir: string, index: CacheIndex): Generator<PartUtterance> {
  for (const s of index.shards) {
    const file = join(dir, s.file);
    const decoded = readShard(dir, s, { again: 'extract this part again' });
    const m = decoded.metadata;
    const [ids, labels, splits, items] = [m.ids, m.labels, m.splits, m.items].map((v) => JSON.parse(v ?? '[]') as unknown[]) as [
      string[],
      number[],
      string[],
      number[],
    ];
    if (items.length !== ids.length)
      throw new FeatureCacheError(`${file}: no dataset position for each utterance (metadata 'items'): not written by extract --shard`);
    for (let k = 0; k < ids.length; k++) {
      const tensors: [string, SafeTensor][] = [];
      for (const m of ['text', 'audio']) {
        const t = decoded.tensors.get(`${m}.${k}`);
        if (t) tensors.push([m, t as SafeTensor]);
      }
      yield { item: items[k]!, id: ids[k]!, label: labels[k]!, split: splits[k]!, tensors };
    }
  }
}

/** Checks that `dirs` are the N complete parts of one extraction; returns their indexes in part order. */
function checkParts(dirs: readonly string[]): { dir: string; index: CacheIndex }[] {
  const parts = dirs.map((dir) => ({ dir, index: readCacheIndex(dir) }));
  const whole = parts.find((p) => !p.index.part);
  if (whole) throw new FeatureCacheError(`${whole.dir}: a whole cache, not a part from extract --shard K/N: nothing to merge`);
  const first = parts[0]!.index;
  const N = first.part!.count;
  const byK = new Map<number, string>();
  for (const { dir, index } of parts) {
    const p = index.part!;
    const differs =
      p.count !== N
        ? `is part ${p.index} of ${p.count}, not of ${N}`
        : p.shardSize !== first.part!.shardSize
          ? `was extracted with --shard-size ${p.shardSize}, not ${first.part!.shardSize}`
          : index.dataset.fingerprint !== first.dataset.fingerprint
            ? 'was extracted from other dataset contents'
            : index.text.id !== first.text.id ||
                index.text.version !== first.text.version ||
                index.audio.id !== first.audio.id ||
                index.audio.version !== first.audio.version
              ? `was extracted with text '${index.text.id}', audio '${index.audio.id}', not '${first.text.id}', '${first.audio.id}'`
              : '';
    if (differs) throw new FeatureCacheError(`${dir} ${differs} (like ${parts[0]!.dir}): merge the parts of one extraction`);
    if (byK.has(p.index)) throw new FeatureCacheError(`part ${p.index} of ${N} given twice: ${byK.get(p.index)} and ${dir}`);
    byK.set(p.index, dir);
    if (!index.complete)
      throw new FeatureCacheError(
        `${dir}: part ${p.index} of ${N} is incomplete (${index.shards.at(-1)?.end ?? 0} of ${p.items} items): run its extract ` +
          `--shard ${p.index}/${N} again to finish it`,
      );
  }
  const missing = Array.from({ length: N }, (_, k) => k).filter((k) => !byK.has(k));
  if (missing.length)
    throw new FeatureCacheError(
      `parts ${missing.join(', ')} of ${N} are missing (have ${[...byK.keys()].sort((a, b) => a - b).join(', ')}): extract them ` +
        `with --shard K/${N}`,
    );
  return parts.sort((a, b) => a.index.part!.index - b.index.part!.index);
}

export function mergeFeatureCaches(o: MergeOptions): MergeReport {
  const dirs = findParts(o.parts);
  const parts = checkParts(dirs);
  const shardSize = o.shardSize ?? parts[0]!.index.part!.shardSize ?? 256;
  if (!Number.isInteger(shardSize) || shardSize < 1)
    throw new FeatureCacheError(`--shard-size must be a positive integer, got ${shardSize}`);
  const out = resolve(o.out);
  if (existsSync(join(out, 'index.json')))
    throw new FeatureCacheError(`${out} already holds a feature cache: merge into another --out, or delete it`);
  const first = parts[0]!.index;
  const N = parts.length;
  const total = first.dataset.items;
  const streams = parts.map((p) => partUtterances(p.dir, p.index));
  const next = streams.map((s) => s.next());
  const failures = new Map<number, FailureRecord>();
  for (const p of parts) {
    for (const f of p.index.failures) {
      if (f.item === undefined)
        throw new FeatureCacheError(`${p.dir}: failure '${f.id}' has no dataset position: not written by extract --shard`);
      const { item, ...rest } = f;
      failures.set(item, rest);
    }
  }
  const index: CacheIndex = {
    format: first.format,
    formatVersion: first.formatVersion,
    dtype: first.dtype,
    dataset: { ...first.dataset },
    text: first.text,
    audio: first.audio,
    shards: [],
    failures: [],
    splits: {},
    complete: false,
    throughput: { text: 0, audio: 0, decode: 0 },
    seconds: { text: 0, audio: 0, decode: 0 },
  };
  for (let start = 0; start < total; start += shardSize) {
    const end = Math.min(total, start + shardSize);
    const tensors: Record<string, SafeTensor> = {};
    const meta = { ids: [] as string[], labels: [] as number[], splits: [] as string[] };
    for (let item = start; item < end; item++) {
      const k = item % N;
      const n = next[k]!;
      if (!n.done && n.value.item === item) {
        const u = n.value;
        const j = meta.ids.length;
        for (const [m, t] of u.tensors) tensors[`${m}.${j}`] = t;
        meta.ids.push(u.id);
        meta.labels.push(u.label);
        meta.splits.push(u.split);
        index.splits[u.split] ??= { ids: [], labels: [] };
        const sp = index.splits[u.split];
        sp.ids.push(u.id);
        sp.labels.push(u.label);
        next[k] = streams[k]!.next();
      } else if (failures.has(item)) {
        index.failures.push(failures.get(item)!);
      } else {
        throw new FeatureCacheError(
          `${parts[k]!.dir}: dataset item ${item} is neither stored nor listed as a failure (the part is damaged): extract part ` +
            `${k}/${N} again`,
        );
      }
    }
    const file = `shard-${String(index.shards.length).padStart(5, '0')}.safetensors`;
    const bytes = encodeSafetensors(tensors, {
      ids: JSON.stringify(meta.ids),
      labels: JSON.stringify(meta.labels),
      splits: JSON.stringify(meta.splits),
    });
    writeFileAtomic(join(out, file), bytes);
    const rec: ShardRecord = { file, start, end, utterances: meta.ids.length, bytes: bytes.length, sha256: sha256(bytes) };
    index.shards.push(rec);
  }
  const leftover = next.findIndex((n) => !n.done);
  if (leftover >= 0)
    throw new FeatureCacheError(
      `${parts[leftover]!.dir}: holds item ${(next[leftover]!.value as PartUtterance).item}, beyond the dataset's ${total} items ` +
        `or out of order`,
    );
  // encoder time and rates over all the parts' runs (utterances = rate x seconds, as extract keeps them)
  for (const key of ['text', 'audio', 'decode'] as const) index.seconds[key] = parts.reduce((s, p) => s + p.index.seconds[key], 0);
  const count = (key: 'text' | 'audio') => parts.reduce((s, p) => s + Math.round(p.index.throughput[key] * p.index.seconds[key]), 0);
  index.throughput = {
    text: index.seconds.text > 0 ? count('text') / index.seconds.text : 0,
    audio: index.seconds.audio > 0 ? count('audio') / index.seconds.audio : 0,
    decode: index.seconds.decode > 0 ? count('audio') / index.seconds.decode : 0,
  };
  index.complete = true;
  writeFileAtomic(join(out, 'index.json'), JSON.stringify(index, null, 1));
  return { cacheDir: out, index, parts: parts.map((p) => p.dir) };
}
