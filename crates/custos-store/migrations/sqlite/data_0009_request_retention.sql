-- Complaints and inquiries are kept as the record class the filer names
-- (b.stage: complaint and dispute records, 3 years): `destroy_on` is the
-- day their key is destroyed and their rows deleted by the lifecycle jobs.
ALTER TABLE requests ADD COLUMN destroy_on TEXT;
CREATE INDEX requests_to_destroy ON requests (destroy_on) WHERE destroy_on IS NOT NULL;

-- A member's transfers to processors so far (the e-mail relay, for now),
-- for their access package: only the audit entries of deliveries are
-- indexed, so appending every other entry costs nothing more.
CREATE INDEX audit_deliveries ON audit (subject_id, seq) WHERE operation = 'notify';
