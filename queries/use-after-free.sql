-- Pages freed while still mapped or pinned, referenced after their free, or whose refcount went below zero, with the event that shows it.
--
-- What: the `anomalies` of kinds freed_while_mapped, freed_while_pinned, ref_after_free, refcount_underflow and
-- device_page_zero_without_put, each with its evidence: the event (seq, time, task, event name, raw payload,
-- stack/callsite) and the free that came before it on the same pfn (who freed the page, and when).
--
-- Why: these are the kernel bugs behind "Bad page state", memory corruption and use-after-free splats; the
-- evidence event names the code path that still used the page.
--
-- @title Use after free / refcount errors
-- @meaning Reference operations on freed pages, frees while mapped or pinned, refcount underflows.
-- @finding 4
-- @verdict use_after_free error use-after-free / refcount errors
-- @gate 5
-- @severity error
-- @columns html kind,severity,pfn,ts_ns,comm,pid,event,callsite,detail,certain
-- @columns md kind,pfn,ts_ns,comm,pid,detail
-- @refcounts 2
--
-- @param trace_id INTEGER NULL Trace to report; NULL = every trace.
-- @param include_uncertain BOOLEAN false Also list anomalies inside or across lost-event windows (certain = false).
-- @param kind VARCHAR NULL Only this anomaly kind.
-- @param comm VARCHAR NULL Only anomalies shown by an event of tasks with exactly this comm.
-- @param pid INTEGER NULL Only anomalies shown by an event of this task id.
--
-- @column trace_id `traces.trace_id`.
-- @column anomaly_id `anomalies.anomaly_id`.
-- @column kind Anomaly kind.
-- @column severity 'error' (a kernel bug if certain), 'warning', 'info'.
-- @column certain false when it lies in or crosses a lost-event window.
-- @column pfn Page concerned.
-- @column seq `events.seq` of the event that shows it.
-- @column ts_ns When.
-- @column pid Task of that event.
-- @column comm Its name (untrusted).
-- @column event Event name.
-- @column payload Raw payload of the event (untrusted text).
-- @column callsite `stacks.callsite` of the event's stack.
-- @column stack_id The stack.
-- @column pin_id Pin concerned (`pins.pin_id`).
-- @column pgmap pgmap concerned, hex text.
-- @column detail One sentence for people.
-- @column prev_free_ts_ns Latest free of this pfn at or before the event (for freed_while_* the free itself; NULL: none in the trace).
-- @column prev_free_pid Task of that free.
-- @column prev_free_comm Its name.
-- @column prev_free_event Event of that free.
-- @column stack The event's stack frames, innermost first, one per line.
WITH a AS (
  SELECT * FROM _uaf
  WHERE ($trace_id IS NULL OR trace_id = $trace_id)
    AND (certain OR $include_uncertain)
    AND ($kind IS NULL OR kind = $kind)
    AND ($comm IS NULL OR comm = $comm)
    AND ($pid IS NULL OR pid = $pid)
),
prev AS (
  SELECT a.trace_id, a.anomaly_id, arg_max(p.free_ts_ns, p.free_seq) AS free_ts_ns,
         arg_max(p.free_pid, p.free_seq) AS free_pid, arg_max(p.free_comm, p.free_seq) AS free_comm,
         arg_max(p.free_event, p.free_seq) AS free_event
  FROM a JOIN pages p ON p.trace_id = a.trace_id AND p.pfn = a.pfn AND p.free_seq IS NOT NULL
                     AND p.free_seq <= coalesce(a.seq, 9223372036854775807)
  GROUP BY a.trace_id, a.anomaly_id
)
SELECT a.trace_id, a.anomaly_id, a.kind, a.severity, a.certain, a.pfn, a.seq, coalesce(a.ts_ns, e.ts_ns) AS ts_ns,
       coalesce(a.pid, e.pid) AS pid, coalesce(a.comm, e.comm) AS comm, e.event, e.payload,
       s.callsite, coalesce(a.stack_id, e.stack_id) AS stack_id, a.pin_id, _hex(a.pgmap) AS pgmap, a.detail,
       prev.free_ts_ns AS prev_free_ts_ns, prev.free_pid AS prev_free_pid, prev.free_comm AS prev_free_comm,
       prev.free_event AS prev_free_event, s.frames AS stack
FROM a
LEFT JOIN events e ON e.trace_id = a.trace_id AND e.seq = a.seq
LEFT JOIN prev ON prev.trace_id = a.trace_id AND prev.anomaly_id = a.anomaly_id
LEFT JOIN stacks s ON s.trace_id = a.trace_id AND s.stack_id = coalesce(a.stack_id, e.stack_id)
ORDER BY a.trace_id, a.certain DESC, a.seq, a.anomaly_id;
