-- The trace as ingested: format, header facts, counts, loss.
SELECT format, tracer, cpus, entries_in_buffer, entries_written, kernel_version, file_version, lines, events, stacks, unparsed_lines,
       lost_events, lost_markers, first_ts_ns, last_ts_ns, clock, has_tgid, mapcount_semantics, mt_layout, vmemmap_base, event_counts
FROM traces ORDER BY trace_id
