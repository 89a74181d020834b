-- Billing example for Synapsor Runner (PostgreSQL 13+; tested with 15).
-- Load into an existing database: psql "$BILLING_DATABASE_ADMIN_URL" -v ON_ERROR_STOP=1 -f seed.sql
-- Two tenants, acme and globex. internal_note is never shown to the model.

CREATE TABLE public.invoices (
    id             text        PRIMARY KEY,
    tenant_id      text        NOT NULL,
    customer_name  text        NOT NULL,
    amount_cents   bigint      NOT NULL CHECK (amount_cents >= 0),
    late_fee_cents bigint      NOT NULL DEFAULT 0 CHECK (late_fee_cents >= 0),
    status         text        NOT NULL CHECK (status IN ('open', 'paid', 'void', 'refunded')),
    internal_note  text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.invoices
    (id, tenant_id, customer_name, amount_cents, late_fee_cents, status, internal_note, updated_at)
VALUES
    ('inv_acme_1001', 'acme', 'Acme Rockets Ltd',       125000, 2500, 'open',     'Customer disputed the March shipment; waive only with manager sign-off.', '2025-03-02 09:15:00+00'),
    ('inv_acme_1002', 'acme', 'Acme Rockets Ltd',        48000,    0, 'paid',     NULL,                                                                      '2025-03-05 14:40:00+00'),
    ('inv_acme_1003', 'acme', 'Acme Anvil Supply',       99900, 1500, 'open',     'Paid late twice this year.',                                              '2025-03-11 08:05:00+00'),
    ('inv_acme_1004', 'acme', 'Acme Anvil Supply',       15000,    0, 'void',     'Duplicate of inv_acme_1003.',                                             '2025-03-12 16:20:00+00'),
    ('inv_glbx_2001', 'globex', 'Globex Corporation',   310000, 5000, 'open',     'Strategic account: escalate any change to finance.',                      '2025-02-27 11:00:00+00'),
    ('inv_glbx_2002', 'globex', 'Globex Corporation',    72500,    0, 'paid',     NULL,                                                                      '2025-03-01 10:30:00+00'),
    ('inv_glbx_2003', 'globex', 'Globex Research Lab',   18900,  750, 'open',     NULL,                                                                      '2025-03-09 13:45:00+00'),
    ('inv_glbx_2004', 'globex', 'Globex Research Lab',   42000,    0, 'refunded', 'Refunded after the service outage credit.',                               '2025-03-10 17:55:00+00');
