-- Get / pin and put / unpin events of one pin (pins.pin_id) or hold (holds.hold_id).
--
-- @param trace_id INTEGER NULL The trace.
-- @param kind VARCHAR NULL 'pin' or 'hold'.
-- @param id BIGINT NULL pin_id or hold_id.
--
-- @column start_seq The get or pin.
-- @column end_seq The put or unpin (NULL when never released).
SELECT start_seq, end_seq FROM pins WHERE $kind = 'pin' AND trace_id = $trace_id AND pin_id = $id
UNION ALL
SELECT start_seq, end_seq FROM holds WHERE $kind = 'hold' AND trace_id = $trace_id AND hold_id = $id
