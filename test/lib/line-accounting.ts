import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { EventBuilder } from '../../ingest/builder.js';
import { longLine, readerFor, type TextFormat } from '../../ingest/parse.js';
import type { LineSink } from '../../ingest/readers/sink.js';
import { LineSplitter } from '../../ingest/source.js';

/**
 * Every input line ends up as an event, a stack line (block header or frame), a header fact, a lost marker, a
 * skipped line (blank, legend, separator) or a counted unparsed line with its reason. Reads a text trace through
 * its reader into an EventBuilder and records, per line, what the reader told the sink.
 */

export type LineClass = 'event' | 'stack' | 'header' | 'lost' | 'unparsed' | 'blank' | 'decoration';

export interface Accounting {
  lines: number;
  counts: Record<LineClass, number>;
  /** Lines the reader said nothing about: must stay empty. */
  silent: { lineNo: number; text: string }[];
  /** Lines counted unparsed, and the builder's own count (they must agree). */
  unparsedLines: number;
  unparsedCount: number;
  unparsedWithoutReason: number;
  events: number;
  stacks: number;
  orphanStacks: number;
}

export function readTrace(path: string): Buffer {
  const raw = readFileSync(path);
  return path.endsWith('.gz') ? gunzipSync(raw) : raw;
}

export function accountLines(format: TextFormat, bytes: Buffer): Accounting {
  const builder = new EventBuilder(1, () => {});
  const byLine = new Map<number, LineClass>();
  let cur = 0;
  // The first class a line gets wins, except that unparsed overrides (an event the builder rejected).
  const put = (c: LineClass) => {
    if (c === 'unparsed' || !byLine.has(cur)) byLine.set(cur, c);
  };
  const sink: LineSink = {
    event: (...a) => {
      const ok = builder.event(...a);
      put(ok ? 'event' : 'unparsed');
      return ok;
    },
    stackStart: (...a) => (put('stack'), builder.stackStart(...a)),
    frame: (text, lineNo) => {
      const before = builder.unparsedCount;
      builder.frame(text, lineNo);
      put(builder.unparsedCount > before ? 'unparsed' : 'stack');
    },
    continuation: (...a) => (put('event'), builder.continuation(...a)),
    lost: (...a) => {
      const before = builder.unparsedCount;
      builder.lost(...a);
      put(builder.unparsedCount > before ? 'unparsed' : 'lost');
    },
    header: (...a) => (put('header'), builder.header(...a)),
    skip: (lineNo, what) => (put(what === 'header' ? 'header' : what), builder.skip(lineNo, what)),
    clock: (c) => builder.clock(c),
    unparsed: (...a) => (put('unparsed'), builder.unparsed(...a)),
  };
  const reader = readerFor(format, sink);
  const onLong = longLine(sink);
  const texts: string[] = [];
  const sp = new LineSplitter(
    (t, n) => {
      cur = n;
      texts[n] = t;
      reader.line(t, n);
    },
    (prefix, n) => {
      cur = n;
      texts[n] = prefix;
      onLong(prefix, n);
    },
  );
  sp.push(bytes);
  sp.end();
  cur = sp.lineNo + 1;
  reader.end();
  builder.finish();
  const counts: Record<LineClass, number> = { event: 0, stack: 0, header: 0, lost: 0, unparsed: 0, blank: 0, decoration: 0 };
  const silent: { lineNo: number; text: string }[] = [];
  for (let n = 1; n <= sp.lineNo; n++) {
    const c = byLine.get(n);
    if (c) counts[c]++;
    else silent.push({ lineNo: n, text: (texts[n] ?? '').slice(0, 200) });
  }
  return {
    lines: sp.lineNo,
    counts,
    silent,
    unparsedLines: counts.unparsed,
    unparsedCount: builder.unparsedCount,
    unparsedWithoutReason: builder.unparsedRows.filter((r) => !r.reason).length,
    events: builder.events,
    stacks: builder.stacks.rows.length,
    orphanStacks: builder.stacks.rows.filter((r) => r.uses === 0).length,
  };
}
