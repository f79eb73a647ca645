-- Page allocations per order and migratetype: the table `perf kmem --page stat` prints, with the migratetypes named right.
--
-- What: mm_page_alloc events (rows of `pages` started by one) counted per order, one column per migratetype of the
-- trace's layout (`migratetypes`). perf kmem 6.1 prints the same counts under the column names of the pre-4.4
-- numbering (Unmovable, Reclaimable, Movable, Reserved, CMA/Isolated): on kernels since 4.4 its "Reclaimable" column
-- holds MOVABLE allocations and its "Movable" column RECLAIMABLE ones (docs/kmem.md).
--
-- Why: which orders and migratetypes the workload asks for (high orders fragment; unmovable pages in movable
-- pageblocks block compaction and CMA).
--
-- @title Page allocations by order and migratetype
-- @meaning Allocations per order (rows) and migratetype (columns).
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
--
-- @column trace_id `traces.trace_id`.
-- @column order Allocation order.
-- @column unmovable MIGRATE_UNMOVABLE allocations.
-- @column movable MIGRATE_MOVABLE allocations (perf 6.1's "Reclaimable" column).
-- @column reclaimable MIGRATE_RECLAIMABLE allocations (perf 6.1's "Movable" column).
-- @column highatomic MIGRATE_HIGHATOMIC allocations (perf 6.1's "Reserved" column).
-- @column cma MIGRATE_CMA allocations.
-- @column isolate MIGRATE_ISOLATE allocations.
-- @column other Allocations with another or no migratetype.
-- @column allocs All allocations of this order.
-- @column kb Their size, KB.
WITH p AS (
  SELECT p.trace_id, coalesce(p."order", 0) AS "order", m.name
  FROM pages p LEFT JOIN _mt_names m ON m.trace_id = p.trace_id AND m.mt = p.migratetype
  WHERE p.alloc_event = 'mm_page_alloc' AND ($trace_id IS NULL OR p.trace_id = $trace_id)
)
SELECT trace_id, "order",
       count(*) FILTER (WHERE name = 'UNMOVABLE') AS unmovable, count(*) FILTER (WHERE name = 'MOVABLE') AS movable,
       count(*) FILTER (WHERE name = 'RECLAIMABLE') AS reclaimable,
       count(*) FILTER (WHERE name IN ('HIGHATOMIC', 'RESERVE')) AS highatomic,
       count(*) FILTER (WHERE name = 'CMA') AS cma, count(*) FILTER (WHERE name = 'ISOLATE') AS isolate,
       count(*) FILTER (WHERE name IS NULL OR name NOT IN ('UNMOVABLE', 'MOVABLE', 'RECLAIMABLE', 'HIGHATOMIC', 'RESERVE', 'CMA', 'ISOLATE')) AS other,
       count(*) AS allocs, sum(4::BIGINT << "order")::BIGINT AS kb
FROM p GROUP BY trace_id, "order"
ORDER BY trace_id, "order";
