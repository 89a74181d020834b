-- Demo schema of the billing.late_fee_waiver recipe (MySQL 8 / MariaDB 10.11).
-- Run it in the database the config names as target.schema (synapsor_demo by default).
-- updated_at is the row's version: it moves on every update, so an approved waiver is applied
-- only to the invoice the reviewer saw.
CREATE TABLE invoices (
  id                     varchar(64) PRIMARY KEY,
  tenant_id              varchar(64) NOT NULL,
  customer_name          varchar(200) NOT NULL,
  amount_cents           bigint NOT NULL,
  late_fee_cents         bigint NOT NULL DEFAULT 0,
  status                 varchar(32) NOT NULL,
  late_fee_waiver_reason varchar(500) NULL,
  internal_note          text NULL,
  updated_at             datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY invoices_tenant (tenant_id)
);

INSERT INTO invoices (id, tenant_id, customer_name, amount_cents, late_fee_cents, status, late_fee_waiver_reason, internal_note, updated_at) VALUES
  ('INV-1001', 'acme',   'Acme Robotics',   125000, 5500, 'overdue', NULL, 'Disputed by phone; do not share.', '2026-06-23 09:00:00'),
  ('INV-1002', 'acme',   'Acme Robotics',    48000,    0, 'paid',    NULL, NULL,                               '2026-06-20 14:31:08'),
  ('INV-2001', 'globex', 'Globex Shipping', 310000, 9900, 'overdue', NULL, 'Globex escalation.',               '2026-06-21 11:15:00');
