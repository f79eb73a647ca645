-- Lifetimes of pages allocated and freed inside the capture (any allocation event; not ZONE_DEVICE), in quarter-decade bins from 1 us to 1000 s (shorter ones in the first, longer in the last), per migratetype.
--
-- @param trace_id INTEGER NULL The trace.
--
-- @column class Migratetype name of the allocation.
-- @column bin floor(log10(lifetime in ns) * 4), clamped to 12 (1 us) .. 47 (10^11.75 ns .. 1000 s).
-- @column n Allocations in the bin.
SELECT coalesce(m.name, 'unknown') AS class, least(greatest(floor(log10(greatest(p.free_ts_ns - p.alloc_ts_ns, 1)) * 4)::INTEGER, 12), 47) AS bin,
       count(*)::BIGINT AS n
FROM pages p JOIN traces t ON t.trace_id = p.trace_id LEFT JOIN migratetypes m ON m.layout = t.mt_layout AND m.mt = p.migratetype
WHERE p.trace_id = $trace_id AND p.alloc_ts_ns IS NOT NULL AND p.free_ts_ns IS NOT NULL AND NOT p.zone_device
GROUP BY ALL ORDER BY bin, class
