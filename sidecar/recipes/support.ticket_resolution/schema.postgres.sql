-- Demo schema of the support.ticket_resolution recipe (PostgreSQL).
-- updated_at is the row's version: the trigger moves it on every update, so an approved
-- resolution is applied only to the ticket the reviewer saw.
CREATE TABLE tickets (
  id              text PRIMARY KEY,
  tenant_id       text NOT NULL,
  subject         text NOT NULL,
  status          text NOT NULL,
  priority        text NOT NULL,
  resolution_code text,
  resolution_note text,
  requester_email text NOT NULL,
  internal_note   text,
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_tenant ON tickets (tenant_id);

CREATE FUNCTION tickets_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER tickets_touch BEFORE UPDATE ON tickets FOR EACH ROW EXECUTE FUNCTION tickets_touch();

INSERT INTO tickets (id, tenant_id, subject, status, priority, resolution_code, resolution_note, requester_email, internal_note, updated_at) VALUES
  ('T-1001', 'acme',   'Cannot rotate the API key',      'open',     'high',   NULL,    NULL,                         'dev@acme.example',  'Customer is on the beta.',  '2026-06-22 08:15:00+00'),
  ('T-1002', 'acme',   'Invoice shows the wrong address', 'resolved', 'normal', 'fixed', 'Address corrected in May.', 'ap@acme.example',   NULL,                        '2026-05-30 16:40:00+00'),
  ('T-2001', 'globex', 'Export to CSV times out',         'pending',  'normal', NULL,    NULL,                         'ops@globex.example', 'Globex large dataset.',    '2026-06-21 11:15:00+00');
