// Text files from outside (manifests, MELD CSVs, the arrays file, label maps, subtitles) read as strict UTF-8: a
// byte sequence that is not UTF-8 (a Latin-1 or Windows-1252 file, a cut multi-byte character) is refused with where
// it is, instead of being read as U+FFFD and passed on as text (issue 23: invalid UTF-8 in a text field). Imports
// nothing of the model, so every reader may use it. A leading byte order mark is dropped, as before.

import { readFileSync } from 'node:fs';

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * The byte offset of the first byte that does not start or continue a well-formed UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF included), or -1 when `b` is all UTF-8.
 */
export function firstInvalidUtf8(b: Uint8Array): number {
  for (let i = 0; i < b.length; ) {
    const c = b[i]!;
    if (c < 0x80) {
      i++;
      continue;
    }
    // the lead byte decides the length and the allowed range of the second byte (no overlong form, no surrogate)
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) n = 1;
    else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c === 0xe0) lo = 0xa0;
      if (c === 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c === 0xf0) lo = 0x90;
      if (c === 0xf4) hi = 0x8f;
    } else return i;
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if (d === undefined) return i;
      if (k === 1 ? d < lo || d > hi : d < 0x80 || d > 0xbf) return i;
    }
    i += n + 1;
  }
  return -1;
}

/** `bytes` as text, or `fail(detail)` thrown when they are not UTF-8; detail names the byte, its line and the fix. */
export function decodeUtf8(bytes: Uint8Array, fail: (detail: string) => Error): string {
  try {
    return strict.decode(bytes);
  } catch {
    const at = Math.max(0, firstInvalidUtf8(bytes));
    let line = 1;
    for (let i = 0; i < at; i++) if (bytes[i] === 0x0a) line++;
    throw fail(
      `is not UTF-8 text (line ${line}, byte ${at}: 0x${bytes[at]?.toString(16).padStart(2, '0') ?? '??'}): save it as UTF-8, ` +
        `e.g. iconv -f windows-1252 -t utf-8 in > out`,
    );
  }
}

/** The file at `path` as strict UTF-8 text (see decodeUtf8); file system errors pass through as they are. */
export function readUtf8File(path: string, fail: (detail: string) => Error): string {
  return decodeUtf8(readFileSync(path), fail);
}
