-- Hold keys are destroyed by scope (`hold:<class>:<YYYY-MM>`) when the
-- last record they could hold expires.
CREATE INDEX data_keys_by_scope ON data_keys (scope);
