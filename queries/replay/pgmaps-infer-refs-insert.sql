-- The inferred pgmaps' references (_dev_refs) as `pgmap_refs` rows, pgmap NULL (the pfn tells which pgmap).
--
-- @param trace_id INTEGER NULL The trace.
INSERT INTO pgmap_refs (trace_id, pgmap, seq, ts_ns, pfn, delta, balance, what, pid, comm, stack_id)
SELECT $trace_id, NULL, seq, ts_ns, pfn, delta, balance, what, pid, comm, stack_id FROM _dev_refs ORDER BY seq
