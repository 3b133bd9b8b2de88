// The one error `analyze` throws about what it was given (the recording, --text-from, --out, a setting), in a
// module of its own (../errors.ts explains why). The message names the file or flag and the fix; the CLI makes it an
// exit-2 message.

export class AnalyzeError extends Error {
  override name = 'AnalyzeError';
  constructor(
    readonly file: string,
    detail: string,
  ) {
    super(file ? `${file}: ${detail}` : detail);
  }
}
