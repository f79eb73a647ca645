-- Lost-event markers.
SELECT seq, line_no, cpu, lost, kind FROM lost_events ORDER BY line_no
