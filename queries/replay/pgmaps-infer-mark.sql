-- Marks every page lifetime of a device memory section (_dev_sections) zone_device.
--
-- @param trace_id INTEGER NULL The trace.
-- @param section_shift INTEGER NULL log2 of the pfns in a memory section.
UPDATE pages SET zone_device = true
WHERE trace_id = $trace_id AND NOT zone_device AND pfn >> $section_shift IN (SELECT sec FROM _dev_sections)
