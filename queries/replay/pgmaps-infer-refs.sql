-- The references of each inferred pgmap (TEMP table _dev_refs): gets are the device page allocations seen
-- (page_ref_set / zone_device_page_init), puts the frees of those pages (the put that reached 0), with the running
-- balance per pgmap. References from before the capture are not counted, so the balance is never negative.
--
-- @param trace_id INTEGER NULL The trace.
-- @param section_shift INTEGER NULL log2 of the pfns in a memory section.
CREATE OR REPLACE TEMP TABLE _dev_refs AS
WITH lt AS (
  SELECT d.grp, p.* FROM pages p JOIN _dev_sections d ON d.sec = p.pfn >> $section_shift
  WHERE p.trace_id = $trace_id AND p.alloc_seq IS NOT NULL
),
ev AS (
  SELECT grp, alloc_seq AS seq, alloc_ts_ns AS ts_ns, pfn, 1 AS delta, 'get' AS what, alloc_pid AS pid, alloc_comm AS comm,
         alloc_stack_id AS stack_id FROM lt
  UNION ALL
  SELECT grp, free_seq, free_ts_ns, pfn, -1, 'put', free_pid, free_comm, NULL FROM lt WHERE free_seq IS NOT NULL
)
SELECT *, sum(delta) OVER (PARTITION BY grp ORDER BY seq, delta DESC ROWS UNBOUNDED PRECEDING) AS balance FROM ev
