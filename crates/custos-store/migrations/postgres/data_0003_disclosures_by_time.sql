-- As SQLite's data_0013: the register of hand-overs listed newest first,
-- for a service or for all, from an index.
CREATE INDEX disclosures_by_time ON custos.disclosures (at, id);
CREATE INDEX disclosures_by_service ON custos.disclosures (service_id, at, id);
