// BERT's uncased WordPiece tokenizer from its vocabulary file alone (vocab.txt, one token a line, id = line
// number), so the `hash` text encoder needs no download and no tokenizer.json. It gives the same ids as
// bert-base-uncased's tokenizer.json through transformers.js (test/model/wordpiece.test.ts checks this on the
// MELD and controlled texts when the offline assets are there):
//   special tokens as written ([CLS], [SEP], [MASK], [PAD], [UNK]) -> their ids, the text between them ->
//   normalise (drop NUL/U+FFFD/control characters, whitespace -> ' ', spaces around CJK ideographs, lowercase,
//   NFD without combining marks) -> split on whitespace and punctuation -> greedy longest-match WordPiece
//   (continuations '##', a word over 100 characters or with no match -> [UNK]) -> [CLS] ids [SEP].

import { readFileSync } from 'node:fs';

const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const PUNCT = '\\p{P}\\u0021-\\u002F\\u003A-\\u0040\\u005B-\\u0060\\u007B-\\u007E';
const WORDS = new RegExp(`[^\\s${PUNCT}]+|[${PUNCT}]`, 'gu');
const CONTROL = /^(?:\p{Cc}|\p{Cf}|\p{Co}|\p{Cs})$/u;
const MAX_WORD_CHARS = 100;

function isCjk(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/** BertNormalizer(clean_text, handle_chinese_chars, lowercase, strip_accents) as bert-base-uncased sets it. */
export function normalizeBert(text: string): string {
  let out = '';
  for (const ch of text) {
    const cp = ch.charCodeAt(0); // as transformers.js: the first UTF-16 unit
    if (cp === 0 || cp === 0xfffd || (ch !== '\t' && ch !== '\n' && ch !== '\r' && CONTROL.test(ch))) continue;
    out += /^\s$/.test(ch) ? ' ' : ch;
  }
  let spaced = '';
  for (let i = 0; i < out.length; i++) {
    const c = out[i]!;
    spaced += isCjk(c.charCodeAt(0)) ? ` ${c} ` : c;
  }
  return spaced
    .toLowerCase()
    .normalize('NFD')
    .replace(/\p{Mn}/gu, '');
}

export interface WordPieceTokenizer {
  /** Token ids of one text, with [CLS] first and [SEP] last unless add_special_tokens is false. */
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
  readonly vocabSize: number;
}

/** A tokenizer over the vocabulary text (vocab.txt's contents); `source` names the file in errors. */
export function wordPieceFromVocab(vocabText: string, source: string): WordPieceTokenizer {
  const lines = vocabText.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const ids = new Map<string, number>();
  lines.forEach((tok, i) => {
    const t = tok.endsWith('\r') ? tok.slice(0, -1) : tok;
    if (!ids.has(t)) ids.set(t, i);
  });
  const id = (t: string) => {
    const v = ids.get(t);
    if (v === undefined) throw new Error(`${source}: the vocabulary has no ${t} token; it is not a BERT WordPiece vocab.txt`);
    return v;
  };
  const special = new Map(SPECIAL.map((t) => [t, id(t)]));
  const unk = special.get('[UNK]')!;
  const splitter = new RegExp(SPECIAL.map((t) => t.replace(/[[\]]/g, '\\$&')).join('|'), 'g');

  const wordIds = (word: string, out: number[]) => {
    const chars = [...word];
    if (chars.length > MAX_WORD_CHARS) return void out.push(unk);
    const pieces: number[] = [];
    for (let start = 0; start < chars.length; ) {
      let end = chars.length;
      let found = -1;
      for (; start < end; end--) {
        const sub = (start > 0 ? '##' : '') + chars.slice(start, end).join('');
        const v = ids.get(sub);
        if (v !== undefined) {
          found = v;
          break;
        }
      }
      if (found < 0) return void out.push(unk);
      pieces.push(found);
      start = end;
    }
    out.push(...pieces);
  };

  return {
    vocabSize: lines.length,
    encode(text, options) {
      const out: number[] = [];
      let last = 0;
      const segment = (s: string) => {
        for (const w of normalizeBert(s).trim().match(WORDS) ?? []) wordIds(w, out);
      };
      for (const m of text.matchAll(splitter)) {
        segment(text.slice(last, m.index));
        out.push(special.get(m[0])!);
        last = m.index! + m[0].length;
      }
      segment(text.slice(last));
      return options?.add_special_tokens === false ? out : [special.get('[CLS]')!, ...out, special.get('[SEP]')!];
    },
  };
}

/** wordPieceFromVocab over a vocab.txt file. */
export function loadWordPiece(file: string): WordPieceTokenizer {
  return wordPieceFromVocab(readFileSync(file, 'utf8'), file);
}
