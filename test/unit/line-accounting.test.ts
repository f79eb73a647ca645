/**
 * Every input line ends up as an event, a stack line, a header fact, a lost marker, a skipped line (blank,
 * legend, separator) or a counted unparsed line with its reason (issue #23): checked on every trace file under
 * samples/ and on the real excerpts of test/fixtures/wild-b. A file that is not a trace (kprobe definitions,
 * `perf kmem stat` figures) is refused as a whole, with its reason. ../shared/traces: scripts/account-traces.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { detectFormat } from '../../ingest/detect.js';
import type { TextFormat } from '../../ingest/parse.js';
import { accountLines, readTrace } from '../lib/line-accounting.js';

const root = (d: string): string => new URL(`../../${d}`, import.meta.url).pathname;

function traceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return traceFiles(p);
    return /\.(txt|gz|trace|report|script)$/.test(f) ? [p] : [];
  });
}

const samples = traceFiles(root('samples'));
const fixtures = traceFiles(root('test/fixtures/wild-b'));

describe('every line accounted', () => {
  it('finds the samples', () => assert.ok(samples.length >= 10, samples.join(' ')));

  for (const file of [...samples, ...fixtures]) {
    const name = file.slice(root('').length);
    it(name, () => {
      const bytes = readTrace(file);
      const format = detectFormat(bytes.subarray(0, 1 << 20));
      if (typeof format !== 'string') {
        // Refused as a whole: one reason, on one line.
        assert.match(format.refuse, /^[^\n]+$/);
        return;
      }
      const a = accountLines(format as TextFormat, bytes);
      assert.deepEqual(a.silent.slice(0, 5), [], `${name}: lines left unaccounted`);
      const total = Object.values(a.counts).reduce((x, y) => x + y, 0);
      assert.equal(total, a.lines);
      assert.equal(a.unparsedLines, a.unparsedCount, 'each unparsed line counted once');
      assert.equal(a.unparsedWithoutReason, 0);
      if (file.includes('wild-b')) assert.equal(a.unparsedCount, 0, `${name}: real lines of supported tracers all parse`);
    });
  }
});
