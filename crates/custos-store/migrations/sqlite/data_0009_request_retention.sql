-- Complaints and inquiries are kept as the record class the filer names
-- (b.stage: complaint and dispute records, 3 years): `destroy_on` is the
-- day their key is destroyed and their rows deleted by the lifecycle jobs.
ALTER TABLE requests ADD COLUMN destroy_on TEXT;
CREATE INDEX requests_to_destroy ON requests (destroy_on) WHERE destroy_on IS NOT NULL;
