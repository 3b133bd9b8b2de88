// A labelled corpus as the extractor sees it: utterances with text, an audio file (or none when text-only),
// a class index into classNames, a split and a speaker.

export interface DatasetItem {
  id: string;
  text: string;
  /** Absolute path of the audio file, or null for a text-only dataset. */
  audio: string | null;
  label: number;
  split: string;
  speaker?: string;
}

export interface Dataset {
  name: string;
  classNames: readonly string[];
  items: DatasetItem[];
  /** Where it was read from (a folder or a manifest file). */
  source: string;
  /** What the user should know about how it was read (e.g. a split missing), printed by `emofuse extract`. */
  notes?: string[];
}

/** A problem with a dataset's files: names the file, and the row and field when there is one. */
export class DatasetError extends Error {
  override name = 'DatasetError';
  constructor(
    readonly file: string,
    message: string,
    readonly row?: number,
    readonly field?: string,
  ) {
    super(`${file}${row !== undefined ? `, row ${row}` : ''}${field ? `, field '${field}'` : ''}: ${message}`);
  }
}

/** Class index of `label`, or a DatasetError naming the row and the allowed labels. */
export function classIndex(label: string, classNames: readonly string[], file: string, row: number, field = 'label'): number {
  const i = classNames.indexOf(label.trim().toLowerCase());
  if (i < 0) throw new DatasetError(file, `unknown label '${label}': expected one of ${classNames.join(', ')}`, row, field);
  return i;
}

/** Fixes UTF-8 text that was decoded as Windows-1252/Latin-1 (MELD's "Iâ€™m"), then straightens curly quotes. */
export function cleanText(s: string): string {
  let t = s;
  if (/[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u2122]/.test(t)) {
    const cp1252 = new Map<number, number>([
      [0x20ac, 0x80],
      [0x201a, 0x82],
      [0x0192, 0x83],
      [0x201e, 0x84],
      [0x2026, 0x85],
      [0x2020, 0x86],
      [0x2021, 0x87],
      [0x02c6, 0x88],
      [0x2030, 0x89],
      [0x0160, 0x8a],
      [0x2039, 0x8b],
      [0x0152, 0x8c],
      [0x017d, 0x8e],
      [0x2018, 0x91],
      [0x2019, 0x92],
      [0x201c, 0x93],
      [0x201d, 0x94],
      [0x2022, 0x95],
      [0x2013, 0x96],
      [0x2014, 0x97],
      [0x02dc, 0x98],
      [0x2122, 0x99],
      [0x0161, 0x9a],
      [0x203a, 0x9b],
      [0x0153, 0x9c],
      [0x017e, 0x9e],
      [0x0178, 0x9f],
    ]);
    const bytes: number[] = [];
    let ok = true;
    for (const ch of t) {
      const c = ch.codePointAt(0)!;
      const b = c < 256 ? c : cp1252.get(c);
      if (b === undefined) {
        ok = false;
        break;
      }
      bytes.push(b);
    }
    if (ok) {
      const decoded = Buffer.from(bytes).toString('utf8');
      if (!decoded.includes('\ufffd')) t = decoded;
    }
  }
  return t
    .replace(/[\u2018\u2019\u201b\u2032]/g, "'")
    .replace(/[\u201c\u201d\u201f\u2033]/g, '"')
    .replace(/[\u2013\u2014]/g, '-')
    .replace(/\u2026/g, '...')
    .replace(/\u00a0/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A stable split for items that have none: by speaker when known (speaker-independent), else by id. */
export function hashSplit(key: string, fractions = { train: 0.8, dev: 0.1 }): string {
  let h = 2166136261;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
  const u = (h >>> 0) / 4294967296;
  return u < fractions.train ? 'train' : u < fractions.train + fractions.dev ? 'dev' : 'test';
}
