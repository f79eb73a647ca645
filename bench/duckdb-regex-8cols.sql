-- The first, narrow version of the DuckDB baseline (kept so the comparison with it stays visible): 8 fields
-- into an in-memory table, ts as DOUBLE seconds, pfn as hex text, no line numbers, stacks, tgid, irq flags or
-- other payload fields. Much less work than refscope's ingest: see duckdb-regex.sql for the complete one.
CREATE TABLE ev AS
SELECT regexp_extract(line, '^\s*(.*?)-(\d+)', 1) AS comm,
       regexp_extract(line, '^\s*.*?-(\d+)', 1)::INTEGER AS pid,
       regexp_extract(line, '\[(\d+)\]', 1)::INTEGER AS cpu,
       regexp_extract(line, ' (\d+\.\d+): ', 1)::DOUBLE AS ts,
       regexp_extract(line, ': ([a-z_]+): ', 1) AS event,
       TRY_CAST(regexp_extract(line, ' pfn=0x([0-9a-f]+)', 1) AS VARCHAR) AS pfn_hex,
       TRY_CAST(regexp_extract(line, ' count=(-?\d+)', 1) AS INTEGER) AS count,
       TRY_CAST(regexp_extract(line, ' val=(-?\d+)', 1) AS INTEGER) AS val
FROM read_csv($file, columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', escape = '', header = false,
              auto_detect = false, strict_mode = false)
WHERE line NOT LIKE '#%' AND line NOT LIKE ' =>%';
