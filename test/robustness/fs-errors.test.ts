// File system errors the corpus cannot provoke as root on one disk (EACCES, EROFS, ENOSPC): each becomes a user
// message with the path and the fix (exit 2 in reportError), never "unexpected error".
import { describe, expect, it } from 'vitest';
import { fileSystemMessage, reportError } from '../../packages/cli/src/output.ts';

const sysErr = (code: string, path: string, syscall = 'open') =>
  Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, path, syscall });

describe('file system errors', () => {
  it.each([
    ['ENOSPC', /\/runs\/x\/last\.safetensors\.tmp-1: ENOSPC \(write\): the disk is full.*resume/],
    ['EACCES', /\/runs\/x\/last\.safetensors\.tmp-1: EACCES \(write\): permission denied/],
    ['EROFS', /read-only: choose a writable --out/],
    ['EISDIR', /folder where a file is needed/],
    ['ENOTDIR', /is a file, not a folder/],
    ['EEXIST', /a file is in the way/],
  ])('%s names the path and the fix', (code, says) => {
    expect(fileSystemMessage(sysErr(code, '/runs/x/last.safetensors.tmp-1', 'write'))).toMatch(says);
  });

  it('exits 2 through reportError; an error without a file system code stays unexpected (exit 1)', () => {
    const log = console.error;
    const lines: string[] = [];
    console.error = (s: string) => lines.push(s);
    try {
      expect(reportError(sysErr('ENOSPC', '/tmp/c/shard-00001.safetensors'))).toBe(2);
      expect(reportError(new Error('boom'))).toBe(1);
    } finally {
      console.error = log;
    }
    expect(lines[0]).toMatch(/^emofuse: \/tmp\/c\/shard-00001\.safetensors: ENOSPC/);
    expect(lines[1]).toMatch(/unexpected error: boom/);
  });
});
