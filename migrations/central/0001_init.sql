-- linemark-central schema, version 1: lines and their chain heads, tokens,
-- the lines' events (append-only), the block allocator and its grants
-- (append-only, never overlapping), and one passport projection per unit.

CREATE FUNCTION linemark_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'linemark: % is append-only; % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'P0001';
END
$$;

CREATE TABLE lines (
    line_id    text PRIMARY KEY,
    -- The chain head: the last stored event of this line.
    head_seq   bigint NOT NULL DEFAULT 0 CHECK (head_seq >= 0),
    head_hash  text NOT NULL DEFAULT '0000000000000000000000000000000000000000000000000000000000000000',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tokens (
    token_sha256 text PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('line', 'admin', 'manufacturer', 'authority', 'service', 'recycler')),
    name         text NOT NULL,
    line_id      text REFERENCES lines (line_id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((role = 'line') = (line_id IS NOT NULL))
);

-- Every event exactly as the line hashed it: `data` is the canonical JSON
-- text the hash covers. (No foreign key to `lines`: ingest writes events
-- only while holding that line's row lock, and a per-row key check would
-- cost a third of the ingest.)
CREATE TABLE events (
    line_id  text NOT NULL,
    seq      bigint NOT NULL CHECK (seq >= 1),
    event_id text NOT NULL,
    ts       text NOT NULL,
    station  text,
    actor    text NOT NULL,
    type     text NOT NULL,
    unit     text,
    data     text NOT NULL,
    hash     text NOT NULL,
    PRIMARY KEY (line_id, seq)
);
CREATE INDEX events_unit ON events (unit) WHERE unit IS NOT NULL;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION linemark_append_only();

-- One row: the next index the allocator hands out.
CREATE TABLE allocator (
    id         int PRIMARY KEY CHECK (id = 1),
    next_index bigint NOT NULL CHECK (next_index >= 0)
);

CREATE TABLE grants (
    block_id     uuid PRIMARY KEY,
    line_id      text NOT NULL REFERENCES lines (line_id),
    start_index  bigint NOT NULL CHECK (start_index >= 0),
    count        bigint NOT NULL CHECK (count >= 1),
    issued_at    text NOT NULL,
    grant_json   text NOT NULL,
    requested_by text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- The database itself refuses two blocks that share an index.
    EXCLUDE USING gist (int8range(start_index, start_index + count) WITH &&)
);
CREATE TRIGGER grants_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION linemark_append_only();

-- The passport projection, updated in the transaction that stores the
-- events it is made from. `doc` holds bindings, lots, children with their
-- replacements, tests, final pass, scrap and shipment.
CREATE TABLE passports (
    unit_id  text PRIMARY KEY,
    line_id  text NOT NULL,
    gtin     text NOT NULL,
    lot      text,
    status   text NOT NULL,
    doc      json NOT NULL,
    last_seq bigint NOT NULL
);

