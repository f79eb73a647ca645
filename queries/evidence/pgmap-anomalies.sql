-- Events of the anomalies recorded on one dev_pagemap.
--
-- @param trace_id INTEGER NULL The trace.
-- @param pgmap VARCHAR NULL The dev_pagemap (decimal text of the UBIGINT).
--
-- @column seq The event.
SELECT seq FROM anomalies WHERE trace_id = $trace_id AND pgmap = $pgmap::UBIGINT AND seq IS NOT NULL ORDER BY seq LIMIT 4
