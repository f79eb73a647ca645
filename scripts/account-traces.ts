/**
 * Line accounting (test/unit/line-accounting.test.ts) on text traces outside samples/, by default
 * ../shared/traces: every line an event, stack line, header fact, lost marker, skipped line or unparsed line
 * with its reason. .gz and .xz are decompressed (xz through the xz command); binary traces are refused by
 * detection and reported as such. Exit 1 when a line is left unaccounted.
 *
 *   node --import tsx scripts/account-traces.ts [DIR...]
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { detectFormat } from '../ingest/detect.js';
import type { TextFormat } from '../ingest/parse.js';
import { accountLines } from '../test/lib/line-accounting.js';

const dirs = process.argv.length > 2 ? process.argv.slice(2) : [new URL('../../shared/traces', import.meta.url).pathname];

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(txt|trace|report|script)(\.gz|\.xz)?$/.test(f) ? [p] : [];
  });
}

function read(p: string): Buffer {
  if (p.endsWith('.xz')) return execFileSync('xz', ['-dc', p], { maxBuffer: 1 << 30 });
  const raw = readFileSync(p);
  return p.endsWith('.gz') ? gunzipSync(raw) : raw;
}

let bad = 0;
for (const dir of dirs)
  for (const p of files(dir)) {
    const bytes = read(p);
    const format = detectFormat(bytes.subarray(0, 1 << 20));
    if (typeof format !== 'string') {
      console.log(`${p}: refused: ${format.refuse}`);
      continue;
    }
    const a = accountLines(format as TextFormat, bytes);
    const c = a.counts;
    console.log(
      `${p}: ${format}, ${a.lines} lines: ${c.event} event, ${c.stack} stack, ${c.header} header, ${c.lost} lost, ` +
        `${c.blank + c.decoration} skipped, ${c.unparsed} unparsed; ${a.stacks} stacks (${a.orphanStacks} without event)` +
        (a.silent.length ? `; ${a.silent.length} UNACCOUNTED, first line ${a.silent[0].lineNo}` : ''),
    );
    if (a.silent.length || a.unparsedLines !== a.unparsedCount) bad++;
  }
process.exit(bad ? 1 : 0);
