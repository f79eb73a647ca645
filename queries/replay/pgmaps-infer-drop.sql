-- Drops pgmap inference's TEMP tables.
DROP TABLE IF EXISTS _dev_sections;
DROP TABLE IF EXISTS _dev_refs;
