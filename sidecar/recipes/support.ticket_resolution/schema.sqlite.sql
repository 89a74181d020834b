-- Demo schema of the support.ticket_resolution recipe (SQLite).
-- updated_at (UTC, ISO 8601 text) is the row's version: the trigger moves it on every update
-- that does not set it, so an approved resolution is applied only to the ticket the reviewer
-- saw.
CREATE TABLE tickets (
  id              TEXT PRIMARY KEY,
  tenant_id       TEXT NOT NULL,
  subject         TEXT NOT NULL,
  status          TEXT NOT NULL,
  priority        TEXT NOT NULL,
  resolution_code TEXT,
  resolution_note TEXT,
  requester_email TEXT NOT NULL,
  internal_note   TEXT,
  updated_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX tickets_tenant ON tickets (tenant_id);

CREATE TRIGGER tickets_touch AFTER UPDATE ON tickets FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE tickets SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;

INSERT INTO tickets (id, tenant_id, subject, status, priority, resolution_code, resolution_note, requester_email, internal_note, updated_at) VALUES
  ('T-1001', 'acme',   'Cannot rotate the API key',      'open',     'high',   NULL,    NULL,                         'dev@acme.example',  'Customer is on the beta.',  '2026-06-22T08:15:00Z'),
  ('T-1002', 'acme',   'Invoice shows the wrong address', 'resolved', 'normal', 'fixed', 'Address corrected in May.', 'ap@acme.example',   NULL,                        '2026-05-30T16:40:00Z'),
  ('T-2001', 'globex', 'Export to CSV times out',         'pending',  'normal', NULL,    NULL,                         'ops@globex.example', 'Globex large dataset.',    '2026-06-21T11:15:00Z');
