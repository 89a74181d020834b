-- Demo schema of the billing.late_fee_waiver recipe (SQLite).
-- updated_at (UTC, ISO 8601 text) is the row's version: the trigger moves it on every update
-- that does not set it, so an approved waiver is applied only to the invoice the reviewer saw.
CREATE TABLE invoices (
  id                     TEXT PRIMARY KEY,
  tenant_id              TEXT NOT NULL,
  customer_name          TEXT NOT NULL,
  amount_cents           INTEGER NOT NULL,
  late_fee_cents         INTEGER NOT NULL DEFAULT 0,
  status                 TEXT NOT NULL,
  late_fee_waiver_reason TEXT,
  internal_note          TEXT,
  updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX invoices_tenant ON invoices (tenant_id);

CREATE TRIGGER invoices_touch AFTER UPDATE ON invoices FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE invoices SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;

INSERT INTO invoices (id, tenant_id, customer_name, amount_cents, late_fee_cents, status, late_fee_waiver_reason, internal_note, updated_at) VALUES
  ('INV-1001', 'acme',   'Acme Robotics',   125000, 5500, 'overdue', NULL, 'Disputed by phone; do not share.', '2026-06-23T09:00:00Z'),
  ('INV-1002', 'acme',   'Acme Robotics',    48000,    0, 'paid',    NULL, NULL,                               '2026-06-20T14:31:08Z'),
  ('INV-2001', 'globex', 'Globex Shipping', 310000, 9900, 'overdue', NULL, 'Globex escalation.',               '2026-06-21T11:15:00Z');
