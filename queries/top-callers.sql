-- Callsites ranked by what they still hold at the end and by pin-seconds: allocations still alive, references and pins per callsite.
--
-- What: per (trace, callsite) over `pages`, `pins` and `holds`: allocations made in the window and still alive at
-- the end (one per `pages` row, i.e. per mm_page_alloc of any order, by the allocating stack's callsite), holds and pins still open at the end and the references they
-- carry (by the stack of the get/pin), and the time x references held over the whole trace (pin-seconds,
-- hold-seconds). Events without a stack count under '(no stack)'. This is an overview, not a finding: allocations
-- alive at the end are mostly window edges (see leaks for the ones that look leaked).
--
-- Why: tells which code path to read first when memory stays allocated, pinned or referenced.
--
-- @title Top call sites
-- @meaning Call sites ranked by references and pages.
-- @columns html callsite,allocs_alive_at_end,bytes_alive_at_end,allocs,holds_open,hold_refs_outstanding,pins_open,pin_refs_outstanding,pins,pin_seconds,holds,hold_seconds,stacks
-- @columns md callsite,allocs_alive_at_end,allocs,pins_open,pins,pin_seconds,holds
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
--
-- @column trace_id `traces.trace_id`.
-- @column callsite `stacks.callsite`, or '(no stack)'.
-- @column allocs_alive_at_end Allocations (`pages` rows: one per allocation, any order) made from this callsite in the window and still alive at the end (pages.end_edge).
-- @column bytes_alive_at_end Their size (4096 << order each).
-- @column allocs Allocations made from this callsite in the window (`pages` rows with alloc_seq).
-- @column holds_open Plain-reference holds from this callsite still open at the end.
-- @column hold_refs_outstanding References they carry.
-- @column pins_open Pins from this callsite still open at the end.
-- @column pin_refs_outstanding Pins they carry (pins.refs).
-- @column pins Pin intervals taken from this callsite.
-- @column pin_seconds Sum of pin duration x refs, seconds (to the end of the trace for open pins).
-- @column holds Holds taken from this callsite (long or still open ones only: see `holds`).
-- @column hold_seconds Sum of hold duration x refs, seconds.
-- @column stacks Distinct stacks behind the callsite.
WITH pg AS (
  SELECT p.trace_id, coalesce(s.callsite, '(no stack)') AS callsite, p.alloc_stack_id AS stack_id,
         count(*) FILTER (WHERE p.end_edge) AS allocs_alive_at_end,
         coalesce(sum(4096::BIGINT << coalesce(p."order", 0)) FILTER (WHERE p.end_edge), 0)::BIGINT AS bytes_alive_at_end,
         count(*) AS allocs
  FROM pages p
  LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id
  WHERE p.alloc_seq IS NOT NULL AND ($trace_id IS NULL OR p.trace_id = $trace_id)
  GROUP BY ALL
),
hd AS (
  SELECT h.trace_id, coalesce(s.callsite, '(no stack)') AS callsite, h.stack_id,
         count(*) FILTER (WHERE h.end_seq IS NULL) AS holds_open,
         coalesce(sum(h.refs) FILTER (WHERE h.end_seq IS NULL), 0)::BIGINT AS hold_refs_outstanding,
         count(*) AS holds, sum(h.duration_ns::DOUBLE * h.refs) / 1e9 AS hold_seconds
  FROM holds h
  LEFT JOIN stacks s ON s.trace_id = h.trace_id AND s.stack_id = h.stack_id
  WHERE ($trace_id IS NULL OR h.trace_id = $trace_id)
  GROUP BY ALL
),
pn AS (
  SELECT p.trace_id, coalesce(s.callsite, '(no stack)') AS callsite, p.stack_id,
         count(*) FILTER (WHERE p.end_seq IS NULL) AS pins_open,
         coalesce(sum(p.refs) FILTER (WHERE p.end_seq IS NULL), 0)::BIGINT AS pin_refs_outstanding,
         count(*) AS pins, sum(p.duration_ns::DOUBLE * p.refs) / 1e9 AS pin_seconds
  FROM pins p
  LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.stack_id
  WHERE ($trace_id IS NULL OR p.trace_id = $trace_id)
  GROUP BY ALL
),
u AS (
  SELECT trace_id, callsite, stack_id, allocs_alive_at_end, bytes_alive_at_end, allocs,
         0 AS holds_open, 0 AS hold_refs_outstanding, 0 AS holds, 0.0 AS hold_seconds,
         0 AS pins_open, 0 AS pin_refs_outstanding, 0 AS pins, 0.0 AS pin_seconds FROM pg
  UNION ALL
  SELECT trace_id, callsite, stack_id, 0, 0, 0, holds_open, hold_refs_outstanding, holds, hold_seconds,
         0, 0, 0, 0.0 FROM hd
  UNION ALL
  SELECT trace_id, callsite, stack_id, 0, 0, 0, 0, 0, 0, 0.0,
         pins_open, pin_refs_outstanding, pins, pin_seconds FROM pn
)
SELECT * FROM (
SELECT trace_id, callsite,
       sum(allocs_alive_at_end)::BIGINT AS allocs_alive_at_end, sum(bytes_alive_at_end)::BIGINT AS bytes_alive_at_end,
       sum(allocs)::BIGINT AS allocs,
       sum(holds_open)::BIGINT AS holds_open, sum(hold_refs_outstanding)::BIGINT AS hold_refs_outstanding,
       sum(pins_open)::BIGINT AS pins_open, sum(pin_refs_outstanding)::BIGINT AS pin_refs_outstanding,
       sum(pins)::BIGINT AS pins, round(sum(pin_seconds), 6) AS pin_seconds,
       sum(holds)::BIGINT AS holds, round(sum(hold_seconds), 6) AS hold_seconds,
       count(DISTINCT stack_id) AS stacks
FROM u
GROUP BY trace_id, callsite
)
ORDER BY trace_id, pin_refs_outstanding + hold_refs_outstanding DESC, allocs_alive_at_end DESC,
         pin_seconds + hold_seconds DESC, callsite;
