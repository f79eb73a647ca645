-- One `pgmaps` row per run of adjacent device sections: pointer NULL, source 'inferred', range = lowest .. highest
-- device pfn seen, gets and puts counted from _dev_refs.
--
-- @param trace_id INTEGER NULL The trace.
-- @param section_shift INTEGER NULL log2 of the pfns in a memory section.
INSERT INTO pgmaps (trace_id, pgmap, pfn_start, pfn_end, gets, puts, outstanding_end, puts_without_get, freed_without_put,
                    max_outstanding, source)
WITH m AS (
  SELECT d.grp, min(p.pfn) AS pfn_start, max(p.pfn) + 1 AS pfn_end
  FROM pages p JOIN _dev_sections d ON d.sec = p.pfn >> $section_shift WHERE p.trace_id = $trace_id GROUP BY d.grp
),
r AS (
  SELECT grp, count(*) FILTER (WHERE what = 'get') AS gets, count(*) FILTER (WHERE what = 'put') AS puts,
         max(balance) AS max_outstanding
  FROM _dev_refs GROUP BY grp
)
SELECT $trace_id, NULL, m.pfn_start, m.pfn_end, coalesce(r.gets, 0), coalesce(r.puts, 0), coalesce(r.gets - r.puts, 0), 0, 0,
       greatest(coalesce(r.max_outstanding, 0), 0), 'inferred'
FROM m LEFT JOIN r USING (grp) ORDER BY m.pfn_start
