-- Lifecycle events (remap, unmap, release) of one dev_pagemap.
--
-- @param trace_id INTEGER NULL The trace.
-- @param pgmap VARCHAR NULL The dev_pagemap (decimal text of the UBIGINT).
--
-- @column seq The event.
SELECT seq FROM pgmap_refs WHERE trace_id = $trace_id AND pgmap = $pgmap::UBIGINT AND what NOT IN ('get', 'put') ORDER BY seq LIMIT 8
