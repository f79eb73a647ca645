-- Pages allocated inside the window and not yet freed, per allocating call site (the top $max_sites, the rest
-- as $other_sites), at the end of each of $buckets time buckets.
--
-- @param trace_id INTEGER NULL The trace.
-- @param t0 BIGINT NULL Start of the window (ns).
-- @param span BIGINT NULL Its length (ns).
-- @param other_sites VARCHAR NULL Label of the call sites outside the top.
-- @param max_sites INTEGER NULL Call sites with a series of their own.
-- @param buckets INTEGER NULL Time buckets.
--
-- @column site Call site (the task when no stack was recorded), or $other_sites.
-- @column b Time bucket.
-- @column pages Pages outstanding at its end.
-- Every page row is read twice (ranking its call site, then counting it): p is not materialised, and the ranking
-- (one row per call site) is joined from a list unnested so that DuckDB hashes it, not the pages (#20).
WITH p AS NOT MATERIALIZED (
  SELECT coalesce(s.callsite, coalesce(p.alloc_comm, '?') || ' (no stack)') AS site, p.alloc_ts_ns, p.free_ts_ns,
         (1::BIGINT << coalesce(p."order", 0)) AS np
  FROM pages p LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id
  WHERE p.trace_id = $trace_id AND p.alloc_ts_ns IS NOT NULL),
ranked AS (
  SELECT unnest(l, recursive := true) FROM (
    SELECT list({'site': site, 'label': CASE WHEN rk <= $max_sites THEN site ELSE $other_sites END}) AS l
    FROM (SELECT site, row_number() OVER (ORDER BY sum(np) DESC, site) AS rk FROM p GROUP BY site))),
-- Each page once at its allocation (+np) and once at its free (-np).
ev AS (
  SELECT label, e.ts, e.d FROM (
    SELECT r.label, unnest([{'ts': p.alloc_ts_ns, 'd': p.np}, {'ts': p.free_ts_ns, 'd': -p.np}]) AS e
    FROM p JOIN ranked r USING (site))
  WHERE e.ts IS NOT NULL),
bk AS (SELECT label, least(greatest(floor((ts - $t0) * $buckets::DOUBLE / $span), 0), $buckets - 1)::INTEGER AS b, sum(d) AS d
       FROM ev GROUP BY ALL),
grid AS (SELECT l.label, g.b FROM (SELECT DISTINCT label FROM ranked) l, range($buckets) g(b))
SELECT grid.label AS site, grid.b, sum(coalesce(bk.d, 0)) OVER (PARTITION BY grid.label ORDER BY grid.b) AS pages
FROM grid LEFT JOIN bk ON bk.label = grid.label AND bk.b = grid.b
ORDER BY site, grid.b
