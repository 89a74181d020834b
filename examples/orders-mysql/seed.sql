-- Orders example for Synapsor Runner (MySQL 8 / MariaDB 10.6+; tested with MariaDB 10.11).
-- Load into the existing, selected database `shop`: mysql shop < seed.sql
-- Two tenants, acme and globex. shipping_note is never shown to the model.

CREATE TABLE orders (
    id            BIGINT       NOT NULL,
    tenant_id     VARCHAR(64)  NOT NULL,
    status        VARCHAR(32)  NOT NULL,
    total_cents   BIGINT       NOT NULL,
    shipping_note VARCHAR(500) NULL,
    version       INT          NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    KEY orders_tenant_id (tenant_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

INSERT INTO orders (id, tenant_id, status, total_cents, shipping_note, version) VALUES
    (50001, 'acme',   'pending',   12900, 'Leave at the loading dock, gate code 4471.', 1),
    (50002, 'acme',   'paid',      45500, NULL,                                         3),
    (50003, 'acme',   'shipped',    8900, 'Fragile: glass anvils.',                     4),
    (50004, 'acme',   'delivered', 23000, NULL,                                         5),
    (60001, 'globex', 'pending',   99000, 'Deliver to the research wing only.',         1),
    (60002, 'globex', 'paid',      15400, NULL,                                         2),
    (60003, 'globex', 'cancelled',  3200, 'Customer called to cancel.',                 2);
