-- linemark-central schema, version 2: passport versions (lifecycle updates
-- by service, recycling and manufacturer actors) and the audit log, both
-- append-only; the audit log is hash-chained like a line's journal.

ALTER TABLE passports ADD COLUMN version int NOT NULL DEFAULT 1;

CREATE TABLE passport_versions (
    unit_id  text NOT NULL REFERENCES passports (unit_id),
    version  int NOT NULL CHECK (version >= 2),
    ts       text NOT NULL,
    actor    text NOT NULL,
    role     text NOT NULL,
    type     text NOT NULL,
    reason   text NOT NULL,
    evidence text,
    delta    json NOT NULL,
    PRIMARY KEY (unit_id, version)
);
CREATE TRIGGER passport_versions_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON passport_versions
    FOR EACH STATEMENT EXECUTE FUNCTION linemark_append_only();

-- One row: the audit chain's head, locked by every audit write.
CREATE TABLE audit_head (
    id   int PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_log (
    seq      bigint PRIMARY KEY CHECK (seq >= 1),
    ts       text NOT NULL,
    actor    text NOT NULL,
    role     text NOT NULL,
    action   text NOT NULL,
    passport text,
    hash     text NOT NULL
);
CREATE INDEX audit_log_passport ON audit_log (passport);
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION linemark_append_only();
