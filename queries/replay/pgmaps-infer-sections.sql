-- Device memory sections of one trace: the memory sections holding ZONE_DEVICE pages, numbered into runs of
-- adjacent sections (TEMP table _dev_sections: sec, grp). Run inside the replay's transaction on the `pages` rows
-- it just wrote.
--
-- A section is device memory when one of its page lifetimes
--   - was marked ZONE_DEVICE by zone_device_page_init / free_zone_device_page events (probes without pgmap=), or
--   - was allocated from a stack through zone_device_page_init, or
--   - in a trace that has page-allocator events, began with page_ref_set without mm_page_alloc and ended at a put
--     to 0 without mm_page_free (ZONE_DEVICE pages never see the page allocator), while no lifetime of the
--     section saw mm_page_alloc or a page-allocator free (RAM sections do).
-- alloc_event holds what began the lifetime as the replay labels it ('mm_page_alloc', 'page_ref_set', ...);
-- free_event is the name of the event that ended it, matched against the catalogue's lists.
--
-- @param trace_id INTEGER NULL The trace.
-- @param section_shift INTEGER NULL log2 of the pfns in a memory section.
-- @param kmem_frees VARCHAR[] NULL Page-allocator free events (replay codes KM_FREE, KM_FREE_BATCHED).
-- @param ref_frees VARCHAR[] NULL page_ref / folio_ref events (a put to 0 ends a lifetime).
CREATE OR REPLACE TEMP TABLE _dev_sections AS
WITH lt AS (
  SELECT p.pfn >> $section_shift AS sec, p.zone_device, p.pgmap, p.alloc_event, p.free_event,
         coalesce(regexp_matches(s.frames, '(^|\n)zone_device_page_init'), false) AS dev_stack
  FROM pages p LEFT JOIN stacks s ON s.trace_id = p.trace_id AND s.stack_id = p.alloc_stack_id AND s.kind = 'kernel'
  WHERE p.trace_id = $trace_id
),
kmem AS (SELECT DISTINCT sec FROM lt WHERE alloc_event = 'mm_page_alloc' OR list_contains($kmem_frees::VARCHAR[], free_event)),
dev AS (
  SELECT sec FROM lt
  WHERE (zone_device AND pgmap IS NULL) OR dev_stack
     OR ((SELECT count(*) FROM kmem) > 0 AND sec NOT IN (SELECT sec FROM kmem)
         AND alloc_event = 'page_ref_set' AND list_contains($ref_frees::VARCHAR[], free_event))
  GROUP BY sec
)
SELECT sec, sec - row_number() OVER (ORDER BY sec) AS grp FROM dev
