-- The power user's way, complete: DuckDB reads the ftrace text itself (read_csv, one VARCHAR per line) and
-- pulls the fields out with regular expressions, writing into an on-disk database the same information
-- refscope's `events` table holds for the bench trace (the noise scenario): line number, int64 ns timestamp,
-- cpu, pid, tgid, comm, irq flags, system, event, every payload field refscope decodes for these events, the
-- kernel stack of the event and the raw payload. Not written: `seq` (the rank of line_no) and stack dedup
-- (`stacks`, stack_id): the frames text is stored on each row instead, which DuckDB compresses.
-- bench/bench.ts runs these statements in order with $file = the trace, and checks the rows against refscope's.

-- Every line with its 1-based number: DuckDB hands the lines to row_number() in file order
-- (preserve_insertion_order), so this is the line number refscope records.
SET preserve_insertion_order = true;

CREATE TEMP MACRO hex_int(s) AS CASE WHEN s <> '' THEN ('0x' || s)::UBIGINT END;

CREATE TEMP TABLE lines AS
SELECT row_number() OVER () AS line_no, line
FROM read_csv($file, columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', header = false,
              auto_detect = false, strict_mode = false);

-- Kernel stacks: the ` => func` lines after a `<stack trace>` entry, innermost first. The entry belongs to
-- the event on the line just above it (ftrace writes a stacktrace trigger's entry right after its event).
CREATE TEMP TABLE stack_of AS
WITH entries AS (SELECT line_no FROM lines WHERE line LIKE '%: <stack trace>'),
     frames AS (SELECT line_no, substr(line, 5) AS frame FROM lines WHERE line LIKE ' => %')
SELECT e.line_no - 1 AS event_line, string_agg(f.frame, chr(10) ORDER BY f.line_no) AS frames
FROM frames f ASOF JOIN entries e ON f.line_no >= e.line_no
GROUP BY e.line_no;

CREATE TABLE events AS
WITH
  -- `comm-pid (tgid) [cpu] irqs secs.frac: event: payload` (comm may hold spaces and dashes; tgid may be -------).
  head AS (
    SELECT line_no,
           regexp_extract(line, '^\s*(.*)-(\d+)\s+\(\s*(-+|\d+)\) \[(\d+)\] (\S+)\s+(\d+)\.(\d+): (\w+): (.*)$',
                          ['comm', 'pid', 'tgid', 'cpu', 'irq_flags', 'secs', 'frac', 'event', 'payload']) AS h
    FROM lines
    WHERE line NOT LIKE '#%' AND line NOT LIKE ' => %' AND line NOT LIKE '%: <stack trace>'
  ),
  ev AS (
    SELECT line_no, h.*,
           -- page_ref (CONFIG_DEBUG_PAGE_REF): `pfn=0x%lx flags=%s count=%d mapcount=%d mapping=%p mt=%d val=%d [ret=%d]`
           CASE WHEN h.event LIKE 'page_ref_%' THEN
             regexp_extract(h.payload, '^pfn=0x([0-9a-f]+) flags=(\S+) count=(-?\d+) mapcount=(-?\d+) mapping=(\S+) mt=(-?\d+) val=(-?\d+)(?: ret=(-?\d+))?$',
                            ['pfn', 'flags', 'count', 'mapcount', 'mapping', 'mt', 'val', 'ret'])
           END AS ref,
           -- kmem and filemap: `... pfn=0x%lx ... order=%d [migratetype=%d] [gfp_flags=%s]`
           CASE WHEN h.event LIKE 'mm_page_%' OR h.event LIKE 'mm_filemap_%' THEN
             regexp_extract(h.payload, 'pfn=0x([0-9a-f]+)(?: ofs=\d+)? order=(\d+)(?: migratetype=(\d+))?(?: gfp_flags=(\S+))?',
                            ['pfn', 'order', 'mt', 'gfp'])
           END AS kmem
    FROM head
    WHERE h.event <> ''
  )
SELECT
  line_no,
  secs::BIGINT * 1000000000 + rpad(frac, 9, '0')::BIGINT AS ts_ns,
  cpu::SMALLINT AS cpu,
  pid::INTEGER AS pid,
  TRY_CAST(tgid AS INTEGER) AS tgid,
  comm,
  irq_flags,
  CASE WHEN event LIKE 'page_ref_%' THEN 'page_ref'
       WHEN event LIKE 'mm_filemap_%' THEN 'filemap'
       WHEN event LIKE 'mm_page_%' THEN 'kmem'
       WHEN event LIKE 'cma_%' THEN 'cma'
       WHEN event = 'test_pages_isolated' THEN 'page_isolation'
       WHEN event LIKE 'alloc_contig_range%' THEN 'cmak' -- the kprobe group of the CMA probes
       WHEN event IN ('sched_process_exit', 'sched_process_fork') THEN 'sched' -- the sched events the catalogue knows
       WHEN event = 'tracing_mark_write' THEN 'ftrace'
  END AS system,
  event,
  CASE WHEN ref IS NOT NULL THEN hex_int(ref.pfn)
       WHEN kmem IS NOT NULL THEN hex_int(kmem.pfn)
       WHEN event = 'test_pages_isolated' THEN hex_int(regexp_extract(payload, 'start_pfn=0x([0-9a-f]+)', 1))
       WHEN event = 'alloc_contig_range' THEN hex_int(regexp_extract(payload, ' start=0x([0-9a-f]+)', 1))
       WHEN event LIKE 'cma_%' THEN hex_int(regexp_extract(payload, ' pfn=0x([0-9a-f]+)', 1))
  END::BIGINT AS pfn,
  CASE WHEN kmem IS NOT NULL THEN kmem.order
       WHEN event LIKE 'cma_%' THEN nullif(regexp_extract(payload, ' align=(\d+)', 1), '')
  END::SMALLINT AS "order",
  CASE WHEN kmem IS NOT NULL THEN 1 << kmem.order::INTEGER
       WHEN event LIKE 'cma_%' THEN nullif(regexp_extract(payload, ' count=(\d+)', 1), '')::BIGINT
       WHEN event = 'test_pages_isolated' THEN
         hex_int(regexp_extract(payload, 'end_pfn=0x([0-9a-f]+)', 1)) - hex_int(regexp_extract(payload, 'start_pfn=0x([0-9a-f]+)', 1))
       WHEN event = 'alloc_contig_range' THEN
         hex_int(regexp_extract(payload, ' end=0x([0-9a-f]+)', 1)) - hex_int(regexp_extract(payload, ' start=0x([0-9a-f]+)', 1))
  END::BIGINT AS nr_pages,
  ref.count::INTEGER AS count,
  ref.mapcount::INTEGER AS mapcount,
  ref.val::INTEGER AS val,
  CASE WHEN ref IS NOT NULL THEN nullif(ref.ret, '')::BIGINT
       WHEN event = 'test_pages_isolated' THEN CASE regexp_extract(payload, ' ret=(\w+)', 1) WHEN 'success' THEN 0 WHEN 'fail' THEN 1 END
       WHEN event LIKE '%_ret' THEN TRY_CAST(regexp_extract(payload, ' ret=(\S+)', 1) AS BIGINT)
  END AS ret,
  ref.flags AS page_flags,
  hex_int(ref.mapping) AS mapping,
  CASE WHEN ref IS NOT NULL THEN ref.mt
       WHEN kmem IS NOT NULL THEN nullif(kmem.mt, '')
       WHEN event = 'alloc_contig_range' THEN regexp_extract(payload, ' migratetype=(\d+)', 1)
  END::SMALLINT AS mt,
  CASE WHEN kmem IS NOT NULL THEN nullif(kmem.gfp, '')
       WHEN event = 'alloc_contig_range' THEN regexp_extract(payload, ' gfp=(\S+)', 1)
  END AS gfp,
  CASE WHEN event IN ('cma_alloc_finish', 'cma_release') THEN hex_int(regexp_extract(payload, ' page=([0-9a-f]+)', 1)) END AS ptr,
  CASE WHEN event = 'test_pages_isolated' THEN hex_int(regexp_extract(payload, 'end_pfn=0x([0-9a-f]+)', 1))
       WHEN event = 'alloc_contig_range' THEN hex_int(regexp_extract(payload, ' end=0x([0-9a-f]+)', 1))
       WHEN event IN ('cma_alloc_finish', 'cma_release') THEN
         hex_int(regexp_extract(payload, ' pfn=0x([0-9a-f]+)', 1)) + regexp_extract(payload, ' count=(\d+)', 1)::BIGINT
  END::BIGINT AS pfn_end,
  CASE WHEN event = 'test_pages_isolated' THEN hex_int(regexp_extract(payload, 'fin_pfn=0x([0-9a-f]+)', 1)) END::BIGINT AS fin_pfn,
  CASE WHEN event LIKE 'cma_%' THEN regexp_extract(payload, '^name=(\S+)', 1) END AS name,
  s.frames AS stack,
  -- events without a decoder keep their key=value fields as a JSON object of strings
  CASE WHEN event LIKE 'sched_%' THEN
    to_json(map(regexp_extract_all(payload, '(\w+)=\S*', 1), regexp_extract_all(payload, '\w+=(\S*)', 1)))
  END AS args,
  payload
FROM ev LEFT JOIN stack_of s ON s.event_line = ev.line_no;
