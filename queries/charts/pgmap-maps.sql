-- The dev_pagemaps of the pgmap chart: the four with the largest imbalance, then the busiest, named by their pfn
-- range when memremap_pages was traced (a kernel pointer means nothing to a reader).
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column pgmap The dev_pagemap (NULL = inferred).
-- @column name "pfns 0x..-0x.." (inclusive) when its range is known, else the pointer in hex.
-- @column n Its reference events.
WITH r AS (SELECT pgmap, count(*) AS n, max(abs(balance)) AS worst FROM pgmap_refs WHERE trace_id = $trace_id GROUP BY pgmap)
SELECT r.pgmap, CASE WHEN m.pfn_start IS NULL THEN coalesce(printf('0x%x', r.pgmap), 'inferred pgmap')
                     WHEN m.pfn_end IS NULL THEN 'pfns ' || printf('0x%x', m.pfn_start) || '..'
                     ELSE 'pfns ' || printf('0x%x', m.pfn_start) || '-' || printf('0x%x', m.pfn_end - 1) END AS name, r.n
FROM r LEFT JOIN pgmaps m ON m.trace_id = $trace_id AND m.pgmap IS NOT DISTINCT FROM r.pgmap
ORDER BY r.worst DESC, r.n DESC LIMIT 4
