-- Demo schema of the billing.late_fee_waiver recipe (PostgreSQL).
-- updated_at is the row's version: the trigger moves it on every update, so an approved waiver
-- is applied only to the invoice the reviewer saw.
CREATE TABLE invoices (
  id                     text PRIMARY KEY,
  tenant_id              text NOT NULL,
  customer_name          text NOT NULL,
  amount_cents           bigint NOT NULL,
  late_fee_cents         bigint NOT NULL DEFAULT 0,
  status                 text NOT NULL,
  late_fee_waiver_reason text,
  internal_note          text,
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_tenant ON invoices (tenant_id);

CREATE FUNCTION invoices_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION invoices_touch();

INSERT INTO invoices (id, tenant_id, customer_name, amount_cents, late_fee_cents, status, late_fee_waiver_reason, internal_note, updated_at) VALUES
  ('INV-1001', 'acme',   'Acme Robotics',   125000, 5500, 'overdue', NULL, 'Disputed by phone; do not share.', '2026-06-23 09:00:00+00'),
  ('INV-1002', 'acme',   'Acme Robotics',    48000,    0, 'paid',    NULL, NULL,                               '2026-06-20 14:31:08+00'),
  ('INV-2001', 'globex', 'Globex Shipping', 310000, 9900, 'overdue', NULL, 'Globex escalation.',               '2026-06-21 11:15:00+00');
