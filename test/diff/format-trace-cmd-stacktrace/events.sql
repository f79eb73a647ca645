-- Every event as decoded (the columns the trace fills).
SELECT seq, line_no, ts_ns, cpu, pid, tgid, comm, irq_flags, system, event, pfn, "order", nr_pages, count, mapcount, val, ret,
       page_flags, mt, gfp, refs, gup_flags, ptr, pgmap, addr, stack_id, user_stack_id, args, payload
FROM events ORDER BY seq
