-- linemark-central schema, version 3: model-level passport content per GTIN
-- (Battery Pass aspects). Every upload is a new version of one aspect of
-- one product, kept with its actor and time; nothing is overwritten.

CREATE TABLE product_aspects (
    gtin     text NOT NULL,
    aspect   text NOT NULL,
    version  int NOT NULL CHECK (version >= 1),
    ts       text NOT NULL,
    actor    text NOT NULL,
    role     text NOT NULL,
    doc      json NOT NULL,
    PRIMARY KEY (gtin, aspect, version)
);
CREATE TRIGGER product_aspects_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON product_aspects
    FOR EACH STATEMENT EXECUTE FUNCTION linemark_append_only();
