-- Pins and holds of one trace for the Perfetto export: never-released ones first, then those on CMA, then the
-- longest, at most $max_intervals.
--
-- @param trace_id INTEGER NULL The trace.
-- @param max_intervals INTEGER NULL Rows at most.
--
-- @column kind 'pin' or 'hold'.
-- @column id pin_id or hold_id.
-- @column source pins.source, or holds.via.
-- @column pfn The other columns are those of `pins` / `holds` of the same names (longterm NULL for holds).
SELECT * FROM (
  SELECT 'pin' AS kind, pin_id AS id, pfn, refs, start_ts_ns, end_ts_ns, duration_ns, holder_pid, holder_comm,
         release_pid, release_comm, longterm, gup_flags, in_cma, uncertain, source
  FROM pins WHERE trace_id = $trace_id
  UNION ALL
  SELECT 'hold', hold_id, pfn, refs, start_ts_ns, end_ts_ns, duration_ns, holder_pid, holder_comm,
         release_pid, release_comm, NULL, gup_flags, in_cma, uncertain, via
  FROM holds WHERE trace_id = $trace_id)
ORDER BY end_ts_ns IS NULL DESC, in_cma DESC, duration_ns DESC LIMIT $max_intervals
