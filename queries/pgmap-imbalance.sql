-- dev_pagemap reference balance: gets vs puts, references out at memunmap and at the end, puts without gets, pages freed without a put.
--
-- What: one row per struct dev_pagemap (`pgmaps`). A device page takes a pgmap reference when it is handed out
-- (zone_device_page_init, get_dev_pagemap) and drops it when freed (free_zone_device_page). Problems listed:
-- refs_at_unmap (references still out when memunmap_pages was entered: it waits for them), unmap_never_returned
-- (memunmap_pages entered but did not return in the trace), puts_without_get (a put whose get was traced never
-- happened: double put), freed_without_put (a device page reached refcount 0 with no pgmap put after it),
-- negative_balance (more puts than gets in the window). Only pgmaps with a problem are listed unless $all.
-- References still out at the end of a trace that never unmapped the pgmap are normal (pages in use) and are
-- not a problem by themselves.
--
-- Why: a leaked pgmap reference makes memunmap_pages() (driver unbind, rmmod, memory hot-unplug) hang for ever
-- in wait_for_completion; an extra put frees the pgmap while pages still point at it.
--
-- @title dev_pagemap reference imbalance
-- @meaning dev_pagemaps whose gets and puts do not balance, or with references left at memunmap_pages.
-- @finding 5
-- @verdict pgmap_imbalance error dev_pagemap imbalances
-- @gate 4
-- @severity error when problems else none
-- @columns html pgmap,pfn_start,pfn_end,gets,puts,outstanding_end,outstanding_at_unmap,puts_without_get,freed_without_put,problems,certain
-- @columns md pgmap,gets,puts,outstanding_end,outstanding_at_unmap,problems
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param all BOOLEAN false List every pgmap, balanced ones too.
-- @param include_uncertain BOOLEAN false Also list problems of traces that lost events (counts may be incomplete).
--
-- @column trace_id `traces.trace_id`.
-- @column pgmap struct dev_pagemap pointer as hex text (NULL: inferred from page_ref events only).
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
-- @column anomalies pgmap anomalies replay recorded for it (pgmap_put_without_get, pgmap_refs_at_unmap, device_page_zero_without_put).
-- @column problems Comma-separated problem names (empty = balanced).
-- @column certain false when the trace lost events (gets/puts may be missing).
WITH g AS (
  SELECT s.*,
         (SELECT count(*) FROM anomalies a
          WHERE a.trace_id = s.trace_id AND a.pgmap IS NOT DISTINCT FROM s.pgmap
            AND a.kind IN ('pgmap_put_without_get', 'pgmap_refs_at_unmap', 'device_page_zero_without_put')) AS n_anomalies
  FROM _pgmap_status s
  WHERE ($trace_id IS NULL OR s.trace_id = $trace_id)
)
SELECT trace_id, _hex(pgmap) AS pgmap, pfn_start, pfn_end, source, gets, puts, outstanding_end, outstanding_at_unmap,
       puts_without_get, freed_without_put, max_outstanding, remap_ts_ns, unmap_ts_ns, unmap_ret_ts_ns,
       released_ts_ns, n_anomalies AS anomalies, array_to_string(problems, ',') AS problems, NOT uncertain AS certain
FROM g
WHERE $all OR (len(problems) > 0 AND (NOT uncertain OR $include_uncertain))
ORDER BY trace_id, pfn_start NULLS LAST, pgmap;
