-- What a store node says of itself on each reference pull: its software version, the events
-- its tills hold that HQ has not acknowledged, and how far its clock is from HQ's (its clock
-- at sending less HQ's at receipt), with when it said so.
ALTER TABLE stores ADD COLUMN node_version TEXT;
ALTER TABLE stores ADD COLUMN node_unsynced BIGINT;
ALTER TABLE stores ADD COLUMN node_clock_offset_ms BIGINT;
ALTER TABLE stores ADD COLUMN node_status_ms BIGINT;
