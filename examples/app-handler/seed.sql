-- App-owned handler example for Synapsor Runner (PostgreSQL 13+; tested with 15).
-- Load into an existing database: psql "$ADMIN_URL" -v ON_ERROR_STOP=1 -f seed.sql
-- Two tenants, acme and globex. internal_note is never shown to the model.

CREATE TABLE public.support_tickets (
    id            text        PRIMARY KEY,
    tenant_id     text        NOT NULL,
    subject       text        NOT NULL,
    priority      text        NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    status        text        NOT NULL CHECK (status IN ('open', 'pending', 'resolved', 'closed')),
    assignee      text,
    internal_note text,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

INSERT INTO public.support_tickets
    (id, tenant_id, subject, priority, status, assignee, internal_note, updated_at)
VALUES
    ('tkt_acme_301', 'acme',   'Invoice PDF will not download',        'normal', 'open',     'dana',  NULL,                                        '2025-03-03 09:00:00+00'),
    ('tkt_acme_302', 'acme',   'Checkout fails with card declined',     'high',   'pending',  'li',    'Card processor incident INC-2231 open.',   '2025-03-04 12:30:00+00'),
    ('tkt_acme_303', 'acme',   'Request to change billing address',     'low',    'resolved', 'dana',  NULL,                                        '2025-03-06 15:10:00+00'),
    ('tkt_glbx_401', 'globex', 'API returns 500 on bulk export',        'urgent', 'open',     'sam',   'Suspected regression in release 4.2.',     '2025-03-02 08:45:00+00'),
    ('tkt_glbx_402', 'globex', 'Add a second admin to the account',     'normal', 'open',     NULL,    NULL,                                        '2025-03-07 10:05:00+00'),
    ('tkt_glbx_403', 'globex', 'Close duplicate ticket',                'low',    'closed',   'sam',   'Duplicate of tkt_glbx_402.',               '2025-03-08 11:20:00+00');
