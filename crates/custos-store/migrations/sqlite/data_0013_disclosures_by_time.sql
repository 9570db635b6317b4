-- The staff console's register of hand-overs (issue 10) lists the newest
-- entries of a service, or of all: by time, without a scan and sort of
-- the whole table.
CREATE INDEX disclosures_by_time ON disclosures (at, id);
CREATE INDEX disclosures_by_service ON disclosures (service_id, at, id);
