// The generic manifest for any corpus: CSV (header row) or JSONL, fields id, text, audio, label[, split, speaker].
// `audio` is relative to the manifest's folder (or absolute); empty when the corpus is text-only. The label set
// comes from `classes.json` beside the manifest (a JSON array) or the caller; otherwise it is the sorted set of
// labels found. Rows without a split get a stable one (by speaker when given, so splits stay speaker-independent).

import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { parse } from 'csv-parse/sync';
import { readUtf8File } from '../text-file.ts';
import { classIndex, cleanText, DatasetError, hashSplit, type Dataset, type DatasetItem } from './types.ts';

export interface ManifestRow {
  id: string;
  text: string;
  audio: string;
  label: string;
  split?: string;
  speaker?: string;
}

export interface ManifestOptions {
  classNames?: readonly string[];
  textOnly?: boolean;
}

/** The raw rows of a CSV (header row) or JSONL manifest, field names lower-cased for CSV. */
export function readManifestRows(file: string): Record<string, unknown>[] {
  const raw = readUtf8File(file, (detail) => new DatasetError(file, detail));
  if (/\.jsonl$/i.test(file) || /\.ndjson$/i.test(file)) {
    return raw.split('\n').flatMap((line, i) => {
      if (!line.trim()) return [];
      try {
        const row = JSON.parse(line);
        if (typeof row !== 'object' || row === null || Array.isArray(row)) throw new Error('not an object');
        return [row as Record<string, unknown>];
      } catch (err) {
        throw new DatasetError(file, `line ${i + 1} is not a JSON object (${(err as Error).message})`, i + 1);
      }
    });
  }
  try {
    return parse(raw, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), bom: true, skip_empty_lines: true, trim: false });
  } catch (err) {
    throw new DatasetError(file, `cannot parse CSV: ${(err as Error).message}`);
  }
}

export function readManifest(file: string, options: ManifestOptions = {}): Dataset {
  const path = resolve(file);
  if (!existsSync(path)) throw new DatasetError(path, 'manifest not found');
  const dir = dirname(path);
  const rows = readManifestRows(path);
  if (rows.length === 0) throw new DatasetError(path, 'manifest has no rows');
  const required = options.textOnly ? ['id', 'text', 'label'] : ['id', 'text', 'audio', 'label'];
  rows.forEach((row, i) => {
    for (const f of required) {
      if (row[f] === undefined || row[f] === null || (f !== 'text' && String(row[f]).trim() === '')) {
        throw new DatasetError(path, `missing '${f}' (a manifest needs ${required.join(', ')}; split and speaker are optional)`, i + 1, f);
      }
    }
  });
  let classNames = options.classNames;
  const classesFile = join(dir, 'classes.json');
  if (!classNames && existsSync(classesFile)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readUtf8File(classesFile, (detail) => new DatasetError(classesFile, detail)));
    } catch (err) {
      if (err instanceof DatasetError) throw err;
      throw new DatasetError(
        classesFile,
        `not valid JSON (${(err as Error).message}): it must be a JSON array of class names, e.g. ["angry", "happy"]`,
      );
    }
    if (!Array.isArray(parsed) || parsed.length < 2 || !parsed.every((c) => typeof c === 'string' && c.trim() !== '')) {
      throw new DatasetError(classesFile, 'must be a JSON array of at least 2 non-empty class names, e.g. ["angry", "happy"]');
    }
    classNames = parsed.map((c: string) => c.trim());
    if (new Set(classNames.map((c) => c.toLowerCase())).size !== classNames.length)
      throw new DatasetError(classesFile, 'lists a class name twice');
  }
  classNames ??= [...new Set(rows.map((r) => String(r.label).trim().toLowerCase()))].sort();
  classNames = classNames.map((c) => c.toLowerCase());
  const seen = new Set<string>();
  const items: DatasetItem[] = rows.map((row, i) => {
    for (const f of ['id', 'text', 'audio', 'label', 'split', 'speaker']) {
      const v = row[f];
      if (v !== undefined && v !== null && typeof v !== 'string' && !(typeof v === 'number' && f !== 'text')) {
        throw new DatasetError(path, `'${f}' must be a string, got ${JSON.stringify(v)}`, i + 1, f);
      }
    }
    const id = String(row.id).trim();
    if (seen.has(id)) throw new DatasetError(path, `duplicate id '${id}'`, i + 1, 'id');
    seen.add(id);
    const speaker = row.speaker === undefined || row.speaker === '' ? undefined : String(row.speaker);
    const audioField = row.audio === undefined ? '' : String(row.audio).trim();
    return {
      id,
      text: cleanText(String(row.text ?? '')),
      audio: options.textOnly || !audioField ? null : isAbsolute(audioField) ? audioField : join(dir, audioField),
      label: classIndex(String(row.label), classNames!, path, i + 1),
      // 'Train ' and 'TRAIN' are the train split: a split name is trimmed and lower-cased, never silently its own split
      split: row.split && String(row.split).trim() ? String(row.split).trim().toLowerCase() : hashSplit(speaker ?? id),
      ...(speaker !== undefined ? { speaker } : {}),
    };
  });
  return { name: 'manifest', classNames, items, source: path };
}
