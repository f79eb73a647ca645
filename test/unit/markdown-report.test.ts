/**
 * report.md shows what a reader needs to trust a finding (issue #18): the attribution of each holder (exact /
 * inferred / ambiguous) with the candidate holders when ambiguous, on the CMA blockers and long holds tables, and
 * the table of references outstanding at the end of the capture. Rows are hand-made; the queries' headers (their
 * @columns) are the real ones, so a query whose compact list lacks a trust column still shows it.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import type { Row } from '../../db/duckdb.js';
import { getQuery } from '../../queries/library.js';
import { queryInfo, type QueryResult, type ReportData } from '../../reports/data.js';
import { renderMarkdown } from '../../reports/markdown.js';

function result(name: string, rows: Row[]): QueryResult {
  return { ...queryInfo(name, getQuery(name)), summary: '', columnDocs: new Map(), rows, evidence: [] };
}

/** The section of report.md under the heading that starts with `title`, up to the next heading. */
function section(md: string, title: string): string {
  const start = md.indexOf(`## ${title}`);
  assert.ok(start >= 0, `report.md has a '${title}' section`);
  const end = md.indexOf('\n## ', start + 3);
  return md.slice(start, end < 0 ? undefined : end);
}

const blocker = (pfn: number, pid: number, comm: string, attribution: string, candidates: string | null): Row => ({
  trace_id: 1, what: 'cma_blocker', cma_name: 'reserved', request_count: 8, succeeded: false, busy_retries: 3, pfn: BigInt(pfn),
  ref_type: 'get', refs: 1, holder_kind: 'hold', holder_comm: comm, holder_pid: pid, attribution, candidates,
  since_ts_ns: 1_000_000n, released_ts_ns: null, callsite: 'iov_iter_get_pages2', nr_failed: 1, certain: attribution !== 'ambiguous',
});
const hold = (pfn: number, pid: number, comm: string, attribution: string, candidates: string | null): Row => ({
  trace_id: 1, priority: 5, kind: 'hold', pfn: BigInt(pfn), refs: 1, holder_comm: comm, holder_pid: pid, start_ts_ns: 1_000_000n,
  duration_ns: 200_000_000n, held_to_end: false, longterm: null, mt_name: 'Movable', callsite: 'filemap_splice_read', attribution, candidates,
  uncertain: attribution === 'ambiguous',
});

function data(): ReportData {
  return {
    generatedAt: '2026-01-01T00:00:00Z',
    traceId: 1,
    trace: { trace_id: 1, source: 't.txt', format: 'ftrace', cpus: 2, lines: 10, events: 10, first_ts_ns: 0n, last_ts_ns: 1_000_000_000n, lost_events: 0 },
    replay: { checked: 10, agreed: 10, checked_outside_lost: 10, agreed_outside_lost: 10 },
    queries: [
      result('cma-blockers', [blocker(0x7bc10, 3101, 'pipe_hold', 'inferred', null), blocker(0x7bc11, 3201, 'pipe_reader', 'ambiguous', '3101:pipe_hold')]),
      result('long-pins', [hold(0x60010, 5201, 'pagecache_rd', 'exact', null), hold(0x60011, 5202, 'java', 'ambiguous', '5201:pagecache_rd,5100:migrate_test')]),
      result('outstanding', [
        { trace_id: 1, kind: 'pin', holder_comm: 'pin_leaker', holder_pid: 4001, holder_state: 'exited', outstanding: 8, refs: 8, pages: 8, leak: true, certain: true },
        { trace_id: 1, kind: 'pgmap', holder_comm: 'hmm_test', holder_pid: 4100, holder_state: 'alive', outstanding: 1, refs: 1, pages: 1, leak: false, certain: false },
      ]),
    ],
    library: [],
    anomalies: result('use-after-free', []),
    stacks: new Map(),
    events: new Map(),
    markers: [],
    gaps: [],
  };
}

describe('report.md: attribution and outstanding references', () => {
  const md = renderMarkdown(data(), []);

  it('CMA blockers: attribution and the candidate holders of an ambiguous one', () => {
    const s = section(md, getQuery('cma-blockers').title);
    const [head, , ...rows] = s.split('\n').filter((l) => l.startsWith('|'));
    assert.match(head!, /\| attribution \| candidates \|/);
    assert.match(rows.find((r) => r.includes('pipe_hold'))!, /\| `inferred` \| +\|/);
    assert.match(rows.find((r) => r.includes('pipe_reader'))!, /\| `ambiguous` \| `3101:pipe_hold` \|/);
  });

  it('long holds: attribution and candidates too', () => {
    const s = section(md, getQuery('long-pins').title);
    const [head, , ...rows] = s.split('\n').filter((l) => l.startsWith('|'));
    assert.match(head!, /\| attribution \| candidates \|/);
    assert.match(rows.find((r) => r.includes('java'))!, /\| `ambiguous` \| `5201:pagecache_rd,5100:migrate_test` \|/);
    assert.match(rows.find((r) => r.includes('pagecache_rd') && !r.includes('java'))!, /\| `exact` \| +\|/);
  });

  it('the references outstanding at the end, by holder, with their state and certainty', () => {
    const s = section(md, getQuery('outstanding').title);
    assert.match(s, /\(outstanding, 2 rows\)/);
    const rows = s.split('\n').filter((l) => l.startsWith('|'));
    assert.match(rows[0]!, /kind.*holder.*state/);
    assert.ok(rows.some((r) => /`pin_leaker`.*4001.*`exited`/.test(r)), rows.join('\n'));
    assert.ok(rows.some((r) => /`hmm_test`.*4100.*`alive`/.test(r)), rows.join('\n'));
  });

  it('no candidates column when no holder is ambiguous', () => {
    const d = data();
    d.queries[0] = result('cma-blockers', [blocker(0x7bc10, 3101, 'pipe_hold', 'exact', null)]);
    const s = section(renderMarkdown(d, []), getQuery('cma-blockers').title);
    assert.match(s, /\| attribution \|/);
    assert.doesNotMatch(s, /candidates/);
  });
});

describe('report.md: loss the tracer did not count', () => {
  it('a loss marker without a count makes the lost-events line amber and says so; none: no note', () => {
    const d = data();
    d.trace = { ...d.trace, lost_events: 0, lost_markers: 1, lost_markers_uncounted: 1 };
    const line = (md: string) => md.split('\n').find((l) => l.includes(' events lost by the tracer: '));
    assert.equal(line(renderMarkdown(d, [])), '- warn events lost by the tracer: 0 (and 1 loss marker without a count)');
    d.trace = { ...d.trace, lost_events: 12, lost_markers: 1, lost_markers_uncounted: 0 };
    assert.equal(line(renderMarkdown(d, [])), '- warn events lost by the tracer: 12');
  });
});
