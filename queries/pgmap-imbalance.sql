-- dev_pagemap reference balance: gets vs puts, references out at memunmap and at the end, puts without gets, pages freed without a put.
--
-- What: one row per struct dev_pagemap (`pgmaps`). A device page takes a pgmap reference when it is handed out
-- (zone_device_page_init, get_dev_pagemap) and drops it when freed (free_zone_device_page). Problems listed:
-- refs_at_unmap (references still out when memunmap_pages was entered: it waits for them), unmap_never_returned
-- (memunmap_pages entered but did not return in the trace), puts_without_get (a put whose get was traced never
-- happened: double put), freed_without_put (a device page reached refcount 0 with no pgmap put after it),
-- negative_balance (more puts than gets in the window), refs_of_exited_holder (device pages still holding a
-- reference at the end whose taker's process exited after taking it: only the kernel can drop it now, the one
-- rule for references outstanding at capture end, docs/model.md §15). Only pgmaps with a problem are listed
-- unless $all. References still out at the end whose holder is alive are information (pages in use:
-- outstanding.sql), not a problem by themselves.
-- Certain: a balance problem in a trace that lost no events, or a leaked reference that no lost-event window
-- touches, whose holder and every task it forked after the get exited (sched_process_fork: a child may still map
-- the page), the last at least $exit_grace_ns before the end; other problem rows only with
-- $include_uncertain.
--
-- Why: a leaked pgmap reference makes memunmap_pages() (driver unbind, rmmod, memory hot-unplug) hang for ever
-- in wait_for_completion; an extra put frees the pgmap while pages still point at it.
--
-- @title dev_pagemap reference imbalance
-- @meaning dev_pagemaps whose gets and puts do not balance, or with references left at memunmap_pages.
-- @finding 5
-- @verdict pgmap_imbalance error dev_pagemap imbalances
-- @gate 4
-- @severity error when certain=true else none
-- @columns html name,pgmap,pfn_start,pfn_end,gets,puts,outstanding_end,outstanding_at_unmap,puts_without_get,freed_without_put,refs_leaked,problems,certain
-- @columns md name,gets,puts,outstanding_end,outstanding_at_unmap,problems
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param all BOOLEAN false List every pgmap, balanced ones too.
-- @param include_uncertain BOOLEAN false Also list uncertain problems: balances of traces that lost events (counts may be incomplete), leaked references a lost window touches or whose holder exited within $exit_grace_ns of the end.
-- @param exit_grace_ns BIGINT 100000000 A holder that exited less than this before the end makes its leaked references uncertain (ns; 100ms, 1s accepted).
--
-- @column trace_id `traces.trace_id`.
-- @column pgmap struct dev_pagemap pointer as hex text (NULL: inferred from page_ref events only).
-- @column name How the report names it: "pfns 0x..-0x.." (inclusive) when its range is known, else the pointer.
-- @column pfn_start First device pfn.
-- @column pfn_end Exclusive end pfn (NULL unknown).
-- @column source 'probe' (memremap_pages / pgmap= probes) or 'inferred'.
-- @column gets References taken in the trace.
-- @column puts References dropped in the trace.
-- @column outstanding_end gets - puts at the end of the trace.
-- @column outstanding_at_unmap gets - puts when memunmap_pages was entered (NULL: not unmapped in the trace).
-- @column puts_without_get Puts whose get was not seen while gets were traced.
-- @column freed_without_put Device pages that reached refcount 0 with no pgmap put after it.
-- @column max_outstanding Largest balance seen.
-- @column remap_ts_ns memremap_pages time.
-- @column unmap_ts_ns memunmap_pages entry.
-- @column unmap_ret_ts_ns memunmap_pages return (NULL: never returned, or not unmapped).
-- @column released_ts_ns dev_pagemap_percpu_release (the last reference dropped).
-- @column refs_leaked Device pages still holding a reference at the end whose holder's process exited (outstanding.sql's leak rows of kind 'pgmap').
-- @column anomalies pgmap anomalies replay recorded for it (pgmap_put_without_get, pgmap_refs_at_unmap, device_page_zero_without_put, pgmap_ref_never_released).
-- @column problems Comma-separated problem names (empty = balanced).
-- @column severity 'error' (a certain problem), 'warning' (an uncertain one) or NULL (balanced, with $all).
-- @column certain A certain problem: a balance problem in a trace without lost events, or a certain leaked reference.
WITH g AS (
  SELECT s.*,
         (SELECT count(*) FROM anomalies a
          WHERE a.trace_id = s.trace_id AND a.pgmap IS NOT DISTINCT FROM s.pgmap
            AND a.kind IN ('pgmap_put_without_get', 'pgmap_refs_at_unmap', 'device_page_zero_without_put',
                           'pgmap_ref_never_released')) AS n_anomalies
  FROM _pgmap_status($exit_grace_ns) s
  WHERE ($trace_id IS NULL OR s.trace_id = $trace_id)
)
SELECT trace_id, _hex(pgmap) AS pgmap,
       CASE WHEN pfn_start IS NULL THEN coalesce(_hex(pgmap), 'inferred pgmap') WHEN pfn_end IS NULL THEN 'pfns ' || _hex(pfn_start) || '..'
            ELSE 'pfns ' || _hex(pfn_start) || '-' || _hex(pfn_end - 1) END AS name, pfn_start, pfn_end, source, gets, puts, outstanding_end, outstanding_at_unmap,
       puts_without_get, freed_without_put, max_outstanding, remap_ts_ns, unmap_ts_ns, unmap_ret_ts_ns,
       released_ts_ns, refs_leaked, n_anomalies AS anomalies, array_to_string(problems, ',') AS problems,
       CASE WHEN certain THEN 'error' WHEN len(problems) > 0 THEN 'warning' END AS severity, certain
FROM g
WHERE $all OR (len(problems) > 0 AND (certain OR $include_uncertain))
ORDER BY trace_id, pfn_start NULLS LAST, pgmap;
