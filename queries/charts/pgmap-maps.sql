-- The dev_pagemaps of the pgmap chart: the four with the largest imbalance, then the busiest.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column pgmap The dev_pagemap (NULL = inferred).
-- @column n Its reference events.
SELECT pgmap, count(*) AS n FROM pgmap_refs WHERE trace_id = $trace_id GROUP BY pgmap ORDER BY max(abs(balance)) DESC, n DESC LIMIT 4
