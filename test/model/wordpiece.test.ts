// The shipped-vocabulary WordPiece tokenizer against bert-base-uncased's tokenizer.json through transformers.js
// (the tokenizer the hash encoder used before): the same ids on every MELD and controlled-benchmark text.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { loadBertTokenizer, modelSettings } from '@emofuse/model';
import { BERT_VOCAB_FILE } from '../../packages/model/src/encoders/hash.ts';
import { loadWordPiece, wordPieceFromVocab } from '../../packages/model/src/encoders/wordpiece.ts';
import { loadTransformers } from '../../packages/model/src/encoders/transformers-env.ts';

const tokFolder = join(modelSettings.assetsDir, 'tokenizer-bert-base-uncased');
const haveTokenizerJson = existsSync(join(tokFolder, 'tokenizer.json'));

describe('wordpiece', () => {
  it('ships the vocabulary and reads bert-base-uncased ids from it', async () => {
    expect(existsSync(BERT_VOCAB_FILE)).toBe(true);
    const tok = await loadBertTokenizer();
    expect(tok.encode('Hello world!')).toEqual([101, 7592, 2088, 999, 102]);
  });

  it('splits words into ## pieces, maps unknown words to [UNK] and keeps written special tokens', () => {
    const tok = wordPieceFromVocab(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'un', '##aff', '##able', '!', 'a'].join('\n'), 'mini');
    expect(tok.encode('UNAFFABLE!', { add_special_tokens: false })).toEqual([5, 6, 7, 8]);
    expect(tok.encode('unX a')).toEqual([2, 1, 9, 3]);
    expect(tok.encode('a[MASK]a', { add_special_tokens: false })).toEqual([9, 4, 9]);
    expect(tok.encode('Ünaffable', { add_special_tokens: false })).toEqual([5, 6, 7]); // accents stripped
  });

  it('refuses a vocabulary without the special tokens, naming the file', () => {
    expect(() => wordPieceFromVocab('a\nb\n', '/x/vocab.txt')).toThrow(/\/x\/vocab.txt: the vocabulary has no \[PAD\]/);
  });

  it.runIf(haveTokenizerJson)('gives the ids of tokenizer.json through transformers.js on MELD and tricky texts', async () => {
    const { AutoTokenizer, env } = await loadTransformers();
    env.localModelPath = dirname(tokFolder) + '/';
    env.allowRemoteModels = false;
    const ref = (await AutoTokenizer.from_pretrained(basename(tokFolder))) as unknown as { encode(t: string): number[] };
    const ours = loadWordPiece(BERT_VOCAB_FILE);
    const texts = [
      'Hello world!',
      "I don't know... maybe?",
      'Café naïve résumé',
      '  tabs\tand\nnewlines  ',
      '中文字符 mixed',
      'emoji 😀 here',
      'a'.repeat(150),
      'x[CLS]y [SEP] z',
      '',
      'ZERO\u200bWIDTH',
      'Ｆｕｌｌｗｉｄｔｈ',
      'rock’n’roll — “quotes”',
    ];
    for (const f of ['train_sent_emo.csv', 'dev_sent_emo.csv', 'test_sent_emo.csv']) {
      const file = join(modelSettings.assetsDir, 'meld-text', f);
      if (existsSync(file))
        texts.push(
          ...readFileSync(file, 'latin1')
            .split('\n')
            .slice(1, 800)
            .map((l) => l.split(',')[1] ?? ''),
        );
    }
    for (const t of texts) expect(ours.encode(t), JSON.stringify(t)).toEqual(ref.encode(t));
  });
});
