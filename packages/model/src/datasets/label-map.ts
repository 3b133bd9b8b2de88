// Label maps: one class set across corpora. A feature cache keeps its corpus's own labels (one cache serves every
// map, and its fingerprint stays the corpus's); training maps them when it reads the cache: `applyLabelMap(features,
// map)` relabels every split onto the map's classes, drops the utterances whose label maps to nothing, and returns a
// report of how many utterances each label had per split, which the trainer prints (`formatLabelMapReport`) and
// saves in the checkpoint. The report holds the map itself (plain JSON), so eval and resume apply the same one.
//
// A map is a built-in (LABEL_MAPS: 'meld7') or a file:
//   JSON  { "calm": "neutral", "boredom": null, ... }  or  { "classes": [...], "map": { ... } }  (null or "" drops)
//   CSV   rows `from,to` (an optional header row `from,to`; `#` comments; an empty `to` drops the label)
// A built-in takes overrides after a colon: 'meld7:calm=drop,boredom=neutral'. A label the map does not list keeps its
// name when that is one of the map's classes (MELD's own labels under meld7); any other stops with the fix named.
// The classes of a file's map are its "classes" in that order, else its targets in order of first appearance.

import { existsSync, statSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { readUtf8File } from '../text-file.ts';
import { selectSplit, type FeatureSet, type FeatureSplit } from '../features.ts';
import { DataError } from '../errors.ts';
import type { CREMAD_CLASSES } from './crema-d.ts';
import type { EMODB_CLASSES } from './emodb.ts';
import { MELD_CLASSES } from './meld.ts';
import type { RAVDESS_CLASSES } from './ravdess.ts';
import { DatasetError } from './types.ts';
import type { LabelMap, LabelMapReport } from './label-map-types.ts';

export type { CorpusLabelMapReport, LabelMap, LabelMapReport } from './label-map-types.ts';

type Table<C extends readonly string[]> = Record<C[number], (typeof MELD_CLASSES)[number] | null>;

/**
 * meld7, corpus by corpus (every label of each corpus listed; the types check that none is missing). Two labels have
 * no MELD class, and both choices are open to measurement on dev (LABEL_MAP_CHOICES, e.g. 'meld7:calm=drop'). The
 * default follows one rule: map a label where MELD's own annotation scheme (neutral or one of six emotions) has one
 * clear answer for it, drop it where it has none.
 * - RAVDESS calm -> neutral: calm is a mild, low-arousal state that shows none of MELD's six emotions, and MELD
 *   annotates such an utterance as neutral. Dropping it would cost 144 of the 1,080 clips of actors 01-18 (13%);
 *   merged, neutral has 216 of those clips against 144 for each emotion.
 * - EmoDB boredom -> dropped: boredom is an emotion of its own (low arousal, negative valence: slow, monotone, low
 *   pitch) that MELD's scheme has no answer for (an annotator could pick neutral, sadness or disgust); mapped to
 *   neutral it would teach that a bored voice is neutral, though its prosody lies nearer sadness. Dropping costs 81
 *   of EmoDB's 535 clips (15%).
 */
const MELD7_BY_CORPUS = {
  meld: {
    neutral: 'neutral',
    joy: 'joy',
    surprise: 'surprise',
    anger: 'anger',
    sadness: 'sadness',
    disgust: 'disgust',
    fear: 'fear',
  } satisfies Table<typeof MELD_CLASSES>,
  ravdess: {
    neutral: 'neutral',
    calm: 'neutral',
    happy: 'joy',
    sad: 'sadness',
    angry: 'anger',
    fearful: 'fear',
    disgust: 'disgust',
    surprised: 'surprise',
  } satisfies Table<typeof RAVDESS_CLASSES>,
  emodb: {
    neutral: 'neutral',
    happiness: 'joy',
    boredom: null,
    anger: 'anger',
    sadness: 'sadness',
    disgust: 'disgust',
    fear: 'fear',
  } satisfies Table<typeof EMODB_CLASSES>,
  'crema-d': {
    anger: 'anger',
    disgust: 'disgust',
    fear: 'fear',
    happy: 'joy',
    neutral: 'neutral',
    sad: 'sadness',
  } satisfies Table<typeof CREMAD_CLASSES>,
};

/** The labels whose place under a built-in map is a choice to make on dev, and the choices. */
export const LABEL_MAP_CHOICES: Record<string, Record<string, readonly (string | null)[]>> = {
  meld7: { calm: ['neutral', null], boredom: ['neutral', null] },
};

/** One table of the built-in maps: name -> what it is for, its classes in order, and its label -> class entries. */
export const LABEL_MAPS: Record<
  string,
  {
    summary: string;
    classes: readonly string[];
    map: Readonly<Record<string, string | null>>;
    corpora: Record<string, Readonly<Record<string, string | null>>>;
  }
> = {
  meld7: {
    summary:
      "MELD's 7 emotions (neutral, joy, surprise, anger, sadness, disgust, fear) for MELD, RAVDESS, EmoDB and CREMA-D: RAVDESS " +
      'calm -> neutral, EmoDB boredom dropped',
    classes: MELD_CLASSES,
    map: mergeTables('meld7', MELD7_BY_CORPUS),
    corpora: MELD7_BY_CORPUS,
  },
};

/** One map from per-corpus tables; a label two corpora share must go to the same class (RAVDESS and CREMA-D 'happy'). */
function mergeTables(name: string, tables: Record<string, Readonly<Record<string, string | null>>>): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [corpus, t] of Object.entries(tables)) {
    for (const [from, to] of Object.entries(t)) {
      if (from in out && out[from] !== to)
        throw new Error(`label map ${name}: '${from}' goes to '${out[from]}' in one corpus and to '${to}' in ${corpus}`);
      out[from] = to;
    }
  }
  return out;
}

const norm = (s: string) => s.trim().toLowerCase();

/** The built-in map called `name`, or undefined (an own entry only: 'constructor' is not a built-in). */
const builtinMap = (name: string) => (Object.hasOwn(LABEL_MAPS, name) ? LABEL_MAPS[name] : undefined);

/** map[from] = to as an own property, also for a label named like an Object property ('__proto__', 'constructor'). */
function setEntry(map: Record<string, string | null>, from: string, to: string | null): void {
  Object.defineProperty(map, from, { value: to, enumerable: true, writable: true, configurable: true });
}

/**
 * A built-in map by name (with overrides: 'meld7:calm=drop,boredom=neutral') or a JSON / CSV file. A built-in's name
 * wins over a file of that name in the working folder (give that one as ./meld7).
 */
export function parseLabelMap(spec: string): LabelMap {
  const colon = spec.indexOf(':');
  const [name, overrides] = colon < 0 ? [spec, ''] : [spec.slice(0, colon), spec.slice(colon + 1)];
  const builtin = builtinMap(name.trim());
  if (!builtin) {
    if (existsSync(spec) && statSync(spec).isFile()) return readLabelMapFile(spec);
    const what = existsSync(spec) ? 'a folder, not a label map file' : 'no such file, and not a built-in label map';
    throw new DatasetError(
      spec,
      `${what} (built-in: ${Object.keys(LABEL_MAPS).join(', ')}; or a JSON file { "from": "to" } or a CSV file of from,to rows)`,
    );
  }
  const map: Record<string, string | null> = { ...builtin.map };
  for (const o of overrides.split(',').filter((x) => x.trim())) {
    const m = /^([^=]+)=(.*)$/.exec(o);
    if (!m || !m[1]!.trim()) throw new DatasetError(spec, `override '${o}' is not label=class (or label=drop): e.g. ${name}:calm=drop`);
    const [from, to] = [norm(m[1]!), norm(m[2]!)];
    if (to !== '' && to !== 'drop' && !builtin.classes.includes(to)) {
      throw new DatasetError(
        spec,
        `override '${o}': '${to}' is not one of ${name}'s classes (${builtin.classes.join(', ')}); use ${from}=drop to drop it`,
      );
    }
    setEntry(map, from, to === '' || to === 'drop' ? null : to);
  }
  return { name: spec.trim(), classes: [...builtin.classes], map };
}

/** A label map file: JSON (an object) or CSV (from,to rows), by extension or, failing that, by its first character. */
export function readLabelMapFile(file: string): LabelMap {
  let raw: string;
  try {
    raw = readUtf8File(file, (detail) => new DatasetError(file, detail));
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError(file, `cannot read the label map: ${(err as Error).message}`);
  }
  if (/\.json$/i.test(file) || (!/\.csv$/i.test(file) && raw.trimStart().startsWith('{'))) {
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (err) {
      throw new DatasetError(
        file,
        `not valid JSON (${(err as Error).message}): a label map is { "from": "to", ... } or { "classes": [...], "map": { ... } }`,
      );
    }
    return labelMapFromJSON(value, file);
  }
  let rows: { record: string[]; info: { lines: number } }[];
  try {
    rows = parse(raw, {
      info: true,
      skip_empty_lines: true,
      comment: '#',
      relax_column_count: true,
      trim: true,
      bom: true,
    }) as unknown as typeof rows;
  } catch (err) {
    throw new DatasetError(file, `cannot parse CSV: ${(err as Error).message}`);
  }
  if (rows.length && rows[0]!.record.map(norm).join(',') === 'from,to') rows = rows.slice(1);
  const entries: [string, string | null, number][] = rows.map(({ record, info }) => {
    if (record.length !== 2)
      throw new DatasetError(
        file,
        `${record.length} fields: a row is 'from,to' (an empty 'to' drops the label: '${record[0] ?? 'calm'},')`,
        info.lines,
      );
    if (!record[0]) throw new DatasetError(file, "empty label: a row is 'from,to'", info.lines, 'from');
    return [record[0], record[1] ? record[1] : null, info.lines];
  });
  return buildLabelMap(file, entries, undefined);
}

/**
 * A LabelMap from its JSON form: { "from": "to" | null | "" } or { "classes": [...], "map": { ... } } (what the
 * file holds, and what a report saved in a checkpoint holds under `labelMap`, with its "name").
 */
export function labelMapFromJSON(value: unknown, source: string): LabelMap {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new DatasetError(source, 'a label map is a JSON object: { "from": "to", ... } or { "classes": [...], "map": { ... } }');
  const o = value as Record<string, unknown>;
  const nested = typeof o.map === 'object' && o.map !== null && !Array.isArray(o.map);
  const map = (nested ? o.map : o) as Record<string, unknown>;
  let classes: string[] | undefined;
  if (nested && o.classes !== undefined) {
    if (!Array.isArray(o.classes) || !o.classes.every((c) => typeof c === 'string' && c.trim()))
      throw new DatasetError(source, '"classes" must be an array of class names', undefined, 'classes');
    classes = (o.classes as string[]).map(norm);
  }
  const entries = Object.entries(map).map(([from, to]): [string, string | null, number | undefined] => {
    if (to !== null && typeof to !== 'string')
      throw new DatasetError(
        source,
        `'${from}' maps to ${JSON.stringify(to)}: give a class name, or null (or "") to drop the label`,
        undefined,
        from,
      );
    return [from, to ? to : null, undefined];
  });
  return buildLabelMap(nested && typeof o.name === 'string' ? o.name : source, entries, classes);
}

function buildLabelMap(name: string, entries: [string, string | null, number | undefined][], classes: string[] | undefined): LabelMap {
  const map: Record<string, string | null> = {};
  const targets: string[] = [];
  for (const [rawFrom, rawTo, row] of entries) {
    const [from, to] = [norm(rawFrom), rawTo === null ? null : norm(rawTo)];
    if (from === '')
      throw new DatasetError(
        name,
        `an empty label (${JSON.stringify(rawFrom)}) maps to ${to === null ? 'nothing' : `'${to}'`}: name the label`,
        row,
        'from',
      );
    if (Object.hasOwn(map, from)) throw new DatasetError(name, `'${from}' is listed twice`, row, 'from');
    if (to === '') throw new DatasetError(name, `'${from}' maps to an empty name`, row, 'to');
    if (to !== null && classes && !classes.includes(to))
      throw new DatasetError(name, `'${from}' maps to '${to}', which is not one of "classes" (${classes.join(', ')})`, row, 'to');
    setEntry(map, from, to);
    if (to !== null && !targets.includes(to)) targets.push(to);
  }
  const out = classes ?? targets;
  if (new Set(out).size !== out.length)
    throw new DatasetError(name, `"classes" lists a class twice (${out.join(', ')})`, undefined, 'classes');
  if (out.length < 2)
    throw new DatasetError(
      name,
      `maps onto ${out.length} class${out.length === 1 ? ` ('${out[0]}')` : 'es'}: a classifier needs at least 2`,
    );
  return { name, classes: out, map };
}

/** Whether two maps place every label alike (same classes in the same order, same entries): a resumed run's check. */
export function sameLabelMap(a: LabelMap, b: LabelMap): boolean {
  const entries = (m: LabelMap) => JSON.stringify(Object.entries(m.map).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)));
  return a.classes.join('\u0000') === b.classes.join('\u0000') && entries(a) === entries(b);
}

/** Where `label` goes under `labelMap`: a class of the map, or null (dropped); stops when the map cannot place it. */
export function resolveLabel(label: string, labelMap: LabelMap, context = ''): string | null {
  const l = norm(label);
  if (Object.hasOwn(labelMap.map, l)) return labelMap.map[l]!;
  if (labelMap.classes.includes(l)) return l;
  const builtin = builtinMap(labelMap.name.split(':')[0]!);
  const fix = builtin
    ? `add '${labelMap.name.includes(':') ? ',' : ':'}${l}=<class>' (or '${l}=drop') to --label-map ${labelMap.name}`
    : `add a row '${l},<class>' to ${labelMap.name} (or '${l},' to drop it)`;
  throw new DatasetError(
    labelMap.name,
    `label '${label}'${context} is not in this label map, nor one of its classes (${labelMap.classes.join(', ')}): ${fix}`,
  );
}

/** Class index after mapping for each class of `classNames` ([K_from]; -1 = dropped). */
export function labelMapIndices(classNames: readonly string[], labelMap: LabelMap): Int32Array {
  const ctx = ` (of the classes ${classNames.join(', ')})`;
  return Int32Array.from(classNames, (c) => {
    const to = resolveLabel(c, labelMap, ctx);
    return to === null ? -1 : labelMap.classes.indexOf(to);
  });
}

/** A list of class indices into `classNames`, mapped: indices into `labelMap.classes`, -1 where dropped. */
export function mapLabels(labels: ArrayLike<number>, classNames: readonly string[], labelMap: LabelMap): Int32Array {
  const to = labelMapIndices(classNames, labelMap);
  return Int32Array.from(labels as ArrayLike<number>, (y, i) => {
    if (!(Number.isInteger(y) && y >= 0 && y < to.length))
      throw new DataError(`label ${y} (position ${i}) is not a class index in [0, ${to.length}) (classes: ${classNames.join(', ')})`);
    return to[y]!;
  });
}

/**
 * The feature set relabelled onto `labelMap.classes`, without the utterances whose label is dropped (each split a view
 * of the original: nothing is copied until a batch is read), and the report. Other fields (a cache's index) are kept.
 */
export function applyLabelMap<F extends FeatureSet>(fs: F, labelMap: LabelMap): { featureSet: F; report: LabelMapReport } {
  const to = labelMapIndices(fs.classNames, labelMap); // [K_from] -> class index after mapping, or -1
  const report: LabelMapReport = {
    labelMap: { name: labelMap.name, classes: [...labelMap.classes], map: { ...labelMap.map } },
    from: [...fs.classNames],
    labels: fs.classNames.map((c, k) => ({ from: c, to: to[k]! < 0 ? null : labelMap.classes[to[k]!]!, counts: {} })),
    kept: {},
    dropped: {},
    empty: {},
  };
  const splits: Record<string, FeatureSplit> = {};
  for (const [name, split] of Object.entries(fs.splits)) {
    const keep: number[] = [];
    const perClass = new Array<number>(to.length).fill(0);
    for (let i = 0; i < split.size; i++) {
      const y = split.labels[i]!;
      if (!(y >= 0 && y < to.length))
        throw new DataError(
          `split '${name}', utterance '${split.ids[i]}': label ${y} is not a class index in [0, ${to.length}) (classes: ` +
            `${fs.classNames.join(', ')})`,
        );
      perClass[y]!++;
      if (to[y]! >= 0) keep.push(i);
    }
    for (const [k, l] of report.labels.entries()) l.counts[name] = perClass[k]!;
    report.kept[name] = keep.length;
    report.dropped[name] = split.size - keep.length;
    const present = new Set(keep.map((i) => to[split.labels[i]!]!));
    report.empty[name] = labelMap.classes.filter((_, j) => !present.has(j));
    splits[name] = relabelSplit(keep.length === split.size ? split : selectSplit([{ split, indices: keep }]), to);
  }
  return { featureSet: { ...fs, classNames: [...labelMap.classes], splits }, report };
}

/** `base` with every label y read as to[y] (padding rows stay -1). */
function relabelSplit(base: FeatureSplit, to: Int32Array): FeatureSplit {
  const relabel = (y: number) => (y < 0 ? y : to[y]!);
  return {
    size: base.size,
    ids: base.ids,
    labels: base.labels.map(relabel), // [size]
    textLens: base.textLens,
    audioLens: base.audioLens,
    ...(base.speakers ? { speakers: base.speakers } : {}),
    ...(base.corpora ? { corpora: base.corpora } : {}),
    batch(indices, shape) {
      const b = base.batch(indices, shape);
      return { ...b, labels: b.labels.map(relabel) }; // [B]
    },
  };
}

/** The report as the trainer prints it: one line per label (where it went, utterances per split), then the totals. */
export function formatLabelMapReport(r: LabelMapReport): string[] {
  const splits = Object.keys(r.kept);
  const w = Math.max(...r.labels.map((l) => l.from.length));
  const wt = Math.max(7, ...r.labels.map((l) => (l.to ?? '').length));
  const lines = [
    `label map ${r.labelMap.name}: ${r.from.length} labels onto ${r.labelMap.classes.length} classes (${r.labelMap.classes.join(', ')})`,
  ];
  for (const l of r.labels) {
    lines.push(`  ${l.from.padEnd(w)} -> ${(l.to ?? 'dropped').padEnd(wt)}  ${splits.map((s) => `${s} ${l.counts[s]}`).join('  ')}`);
  }
  lines.push(`  kept ${splits.map((s) => `${s} ${r.kept[s]} of ${r.kept[s]! + r.dropped[s]!}`).join(', ')}`);
  const empty = splits.filter((s) => r.empty[s]!.length).map((s) => `${s}: ${r.empty[s]!.join(', ')}`);
  if (empty.length) lines.push(`  classes with no utterances (the model still has their outputs): ${empty.join('; ')}`);
  return lines;
}
