-- Per call site of one trace: pins, plain-reference holds and dev_pagemap references taken from it, and those still out at the end.
-- `refscope diff` runs it on both traces and subtracts row by row (docs/diff.md). A call site is `stacks.callsite`
-- of the get's stack, '(no stack)' when none was recorded: a function name, stable across boots, unlike pfns,
-- pids and stack ids. Pins and holds are the `pins` / `holds` rows (holds keeps only references held at least the
-- hold threshold, open at the end, or alive during a failed CMA attempt); pgmap gets and puts are the `pgmap_refs`
-- get/put rows by their own stack; pgmap_outstanding counts device-page references still out at the end
-- (_outstanding kind 'pgmap') by the call site of their get.
-- @param trace_id INTEGER NULL Trace; NULL = every trace.
-- @column trace_id `traces.trace_id`.
-- @column callsite `stacks.callsite`, or '(no stack)'.
-- @column pins Pin intervals taken from this call site (`pins` rows).
-- @column pin_refs Pins they took (sum of pins.refs).
-- @column pins_open Of those intervals, still held at the end.
-- @column holds Plain-reference holds taken from this call site (`holds` rows).
-- @column hold_refs References they took.
-- @column holds_open Of those holds, still held at the end.
-- @column pgmap_gets dev_pagemap references taken (pgmap_refs 'get' deltas) by events of this call site.
-- @column pgmap_puts dev_pagemap references dropped (pgmap_refs 'put' deltas) by events of this call site.
-- @column pgmap_outstanding Device pages whose pgmap reference, taken from this call site, is still out at the end.
WITH x AS (
  SELECT trace_id, stack_id, 1 AS pins, refs AS pin_refs, (end_seq IS NULL)::INTEGER AS pins_open
  FROM pins WHERE $trace_id IS NULL OR trace_id = $trace_id
  UNION ALL BY NAME
  SELECT trace_id, stack_id, 1 AS holds, refs AS hold_refs, (end_seq IS NULL)::INTEGER AS holds_open
  FROM holds WHERE $trace_id IS NULL OR trace_id = $trace_id
  UNION ALL BY NAME
  SELECT trace_id, stack_id, CASE WHEN what = 'get' THEN delta ELSE 0 END AS pgmap_gets,
         CASE WHEN what = 'put' THEN -delta ELSE 0 END AS pgmap_puts
  FROM pgmap_refs WHERE what IN ('get', 'put') AND ($trace_id IS NULL OR trace_id = $trace_id)
  UNION ALL BY NAME
  SELECT trace_id, stack_id, 1 AS pgmap_outstanding
  FROM _outstanding WHERE kind = 'pgmap' AND ($trace_id IS NULL OR trace_id = $trace_id)
)
SELECT x.trace_id, coalesce(s.callsite, '(no stack)') AS callsite,
       coalesce(sum(x.pins), 0)::BIGINT AS pins, coalesce(sum(x.pin_refs), 0)::BIGINT AS pin_refs,
       coalesce(sum(x.pins_open), 0)::BIGINT AS pins_open, coalesce(sum(x.holds), 0)::BIGINT AS holds,
       coalesce(sum(x.hold_refs), 0)::BIGINT AS hold_refs, coalesce(sum(x.holds_open), 0)::BIGINT AS holds_open,
       coalesce(sum(x.pgmap_gets), 0)::BIGINT AS pgmap_gets, coalesce(sum(x.pgmap_puts), 0)::BIGINT AS pgmap_puts,
       coalesce(sum(x.pgmap_outstanding), 0)::BIGINT AS pgmap_outstanding
FROM x
LEFT JOIN stacks s ON s.trace_id = x.trace_id AND s.stack_id = x.stack_id
GROUP BY x.trace_id, coalesce(s.callsite, '(no stack)')
ORDER BY x.trace_id, callsite;
