import { fileURLToPath } from 'node:url';

/** samples/real/: the real captures, gzipped (what each shows: samples/real/README.md). */
export const REAL = fileURLToPath(new URL('../../samples/real/', import.meta.url));

/** Each real capture by the short name tests use for it. */
export const CAPTURES = {
  a: 'a-iouring-longterm.trace.txt.gz',
  b: 'b-vmsplice.trace.txt.gz',
  c: 'c-cma-blocked.trace.txt.gz',
  d: 'd-pgmap-hmm.trace.txt.gz',
  e: 'e-mixed.trace.txt.gz',
  perf: 'perf-task.script.txt.gz',
  stack: 'ftrace-raw-stacktrace-pidfiltered.txt.gz',
  tcmd: 'trace-cmd-extract.report.txt.gz',
  raw: 'ftrace-raw-default.txt.gz',
  callgraph: 'perf-task-callgraph.script.txt.gz',
} as const;
export type Cap = keyof typeof CAPTURES;
