-- Column names of one table of the database, in table order (whether it is per trace: it has trace_id).
--
-- @param table_name VARCHAR NULL The table.
--
-- @column column_name A column.
SELECT column_name FROM information_schema.columns WHERE table_name = $table_name ORDER BY ordinal_position
