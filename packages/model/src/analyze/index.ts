// `analyze`: long recordings in, emotion over time out (./analyze.ts), and the recordings with a known answer that
// test and benchmark it (./assemble.ts).
export * from './analyze.ts';
export * from './assemble.ts';
export * from './decode-stream.ts';
export * from './errors.ts';
export * from './report.ts';
export * from './subtitles.ts';
export * from './vad.ts';
