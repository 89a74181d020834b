CREATE TABLE invoices (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  customer_name TEXT NOT NULL,
  amount_cents INTEGER NOT NULL,
  late_fee_cents INTEGER NOT NULL,
  status TEXT NOT NULL,
  internal_note TEXT,
  updated_at TEXT NOT NULL
);
INSERT INTO invoices VALUES
  ('INV-3001', 'acme',   'Acme Corp',   125000, 5500, 'overdue', 'Customer disputed by phone; do not share.', '2026-06-23T09:00:00Z'),
  ('INV-3002', 'acme',   'Acme Corp',    48000,    0, 'paid',    NULL,                                        '2026-06-20T14:31:08Z'),
  ('INV-9001', 'globex', 'Globex Inc',  310000, 9900, 'overdue', 'Globex internal escalation.',               '2026-06-21T11:15:00Z');
