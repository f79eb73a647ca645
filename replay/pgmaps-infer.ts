/**
 * pgmaps inferred from ZONE_DEVICE pages when the trace has no pgmap probe naming a dev_pagemap (reference §4:
 * "infer per-pgmap balance from page_ref events on ZONE_DEVICE pfns"). Runs in SQL on the `pages` rows the replay
 * just wrote, inside its transaction.
 *
 * A memory section (2^15 pfns: 128 MiB of 4 KiB pages, the x86-64 granularity memremap_pages works in) is device
 * memory when one of its page lifetimes
 *   - was marked ZONE_DEVICE by zone_device_page_init / free_zone_device_page events (probes without pgmap=), or
 *   - was allocated from a stack through zone_device_page_init, or
 *   - in a trace that has mm_page_alloc events, began with page_ref_set without mm_page_alloc and ended at a put to
 *     0 without mm_page_free (ZONE_DEVICE pages never see the page allocator), while no lifetime of the section saw
 *     mm_page_alloc or mm_page_free (RAM sections do).
 * Adjacent device sections form one inferred pgmap (pointer NULL, source 'inferred', range = lowest .. highest device
 * pfn seen). Gets are the device page allocations seen (page_ref_set / zone_device_page_init), puts the frees of
 * those pages (the put that reached 0); references from before the capture are not counted, so the balance is never
 * negative. Their `pgmap_refs` rows have pgmap NULL (the pfn tells which pgmap). Every lifetime of a device section is
 * marked zone_device. Caveat: hugetlb pool pages also cycle without page-allocator events; a section holding only
 * them would be taken for device memory.
 */
import type { Db } from '../db/duckdb.js';

const SECTION_SHIFT = 15;
const KMEM_FREES = "('mm_page_free', 'mm_page_free_direct', 'mm_page_free_batched', 'mm_pagevec_free')";

/** Infer pgmaps for a trace; returns the number of `pgmaps` rows written. */
export async function inferPgmaps(db: Db, traceId: number): Promise<number> {
  await db.run(
    `CREATE OR REPLACE TEMP TABLE _dev_sections AS
     WITH lt AS (
       SELECT p.pfn >> ${SECTION_SHIFT} AS sec, p.zone_device, p.pgmap, p.alloc_event, p.free_event,
              coalesce(regexp_matches(s.frames, '(^|\\n)zone_device_page_init'), false) AS dev_stack
       FROM pages p LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id AND s.kind = 'kernel'
       WHERE p.trace_id = $1
     ),
     kmem AS (SELECT DISTINCT sec FROM lt WHERE alloc_event = 'mm_page_alloc' OR free_event IN ${KMEM_FREES}),
     dev AS (
       SELECT sec FROM lt
       WHERE (zone_device AND pgmap IS NULL) OR dev_stack
          OR ((SELECT count(*) FROM kmem) > 0 AND sec NOT IN (SELECT sec FROM kmem)
              AND alloc_event = 'page_ref_set' AND (free_event LIKE 'page_ref%' OR free_event LIKE 'folio_ref%'))
       GROUP BY sec
     )
     SELECT sec, sec - row_number() OVER (ORDER BY sec) AS grp FROM dev`,
    [traceId],
  );
  try {
    await db.run(
      `UPDATE pages SET zone_device = true
       WHERE trace_id = $1 AND NOT zone_device AND pfn >> ${SECTION_SHIFT} IN (SELECT sec FROM _dev_sections)`,
      [traceId],
    );
    await db.run(
      `CREATE OR REPLACE TEMP TABLE _dev_refs AS
       WITH lt AS (
         SELECT d.grp, p.* FROM pages p JOIN _dev_sections d ON d.sec = p.pfn >> ${SECTION_SHIFT}
         WHERE p.trace_id = $1 AND p.alloc_seq IS NOT NULL
       ),
       ev AS (
         SELECT grp, alloc_seq AS seq, alloc_ts_ns AS ts_ns, pfn, 1 AS delta, 'get' AS what, alloc_pid AS pid, alloc_comm AS comm,
                alloc_stack_id AS stack_id FROM lt
         UNION ALL
         SELECT grp, free_seq, free_ts_ns, pfn, -1, 'put', free_pid, free_comm, NULL FROM lt WHERE free_seq IS NOT NULL
       )
       SELECT *, sum(delta) OVER (PARTITION BY grp ORDER BY seq, delta DESC ROWS UNBOUNDED PRECEDING) AS balance FROM ev`,
      [traceId],
    );
    await db.run(
      `INSERT INTO pgmap_refs (trace_id, pgmap, seq, ts_ns, pfn, delta, balance, what, pid, comm, stack_id)
       SELECT $1, NULL, seq, ts_ns, pfn, delta, balance, what, pid, comm, stack_id FROM _dev_refs ORDER BY seq`,
      [traceId],
    );
    await db.run(
      `INSERT INTO pgmaps (trace_id, pgmap, pfn_start, pfn_end, gets, puts, outstanding_end, puts_without_get, freed_without_put,
                           max_outstanding, source)
       WITH m AS (
         SELECT d.grp, min(p.pfn) AS pfn_start, max(p.pfn) + 1 AS pfn_end
         FROM pages p JOIN _dev_sections d ON d.sec = p.pfn >> ${SECTION_SHIFT} WHERE p.trace_id = $1 GROUP BY d.grp
       ),
       r AS (
         SELECT grp, count(*) FILTER (WHERE what = 'get') AS gets, count(*) FILTER (WHERE what = 'put') AS puts,
                max(balance) AS max_outstanding
         FROM _dev_refs GROUP BY grp
       )
       SELECT $1, NULL, m.pfn_start, m.pfn_end, coalesce(r.gets, 0), coalesce(r.puts, 0), coalesce(r.gets - r.puts, 0), 0, 0,
              greatest(coalesce(r.max_outstanding, 0), 0), 'inferred'
       FROM m LEFT JOIN r USING (grp) ORDER BY m.pfn_start`,
      [traceId],
    );
    const n = await db.one<{ n: number }>("SELECT count(*)::INTEGER AS n FROM pgmaps WHERE trace_id = $1 AND source = 'inferred'", [traceId]);
    return n?.n ?? 0;
  } finally {
    await db.run('DROP TABLE IF EXISTS _dev_sections');
    await db.run('DROP TABLE IF EXISTS _dev_refs');
  }
}
