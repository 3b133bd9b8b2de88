// The types of label maps and their reports, apart from label-map.ts so that features.ts can name them without
// importing the code that reads features (no import cycle).

export interface LabelMap {
  /** 'meld7', 'meld7:calm=drop' or the file it was read from: named in errors and reports. */
  name: string;
  /** The classes after mapping, in output (logit) order. */
  classes: string[];
  /** Lower-case label -> one of `classes`, or null: its utterances are dropped. */
  map: Record<string, string | null>;
}

export interface LabelMapReport {
  /** The map applied: enough to apply it again (eval, resume: `labelMapFromJSON(report.labelMap, ...)`). */
  labelMap: LabelMap;
  /** The feature set's classes before mapping. */
  from: string[];
  /** One row per class before mapping: where it went (null: dropped) and its utterances per split. */
  labels: { from: string; to: string | null; counts: Record<string, number> }[];
  /** Utterances per split after mapping, and dropped. */
  kept: Record<string, number>;
  dropped: Record<string, number>;
  /** Per split, the map's classes that no utterance has after mapping. */
  empty: Record<string, string[]>;
}

/** A report of one source corpus (a joined set's: one per cache; `corpus` as in FeatureSplit.corpora). */
export type CorpusLabelMapReport = LabelMapReport & { corpus: string };
