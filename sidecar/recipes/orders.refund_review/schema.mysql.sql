-- Demo schema of the orders.refund_review recipe (MySQL 8 / MariaDB 10.11).
-- Run it in the database the config names as target.schema (synapsor_demo by default).
-- An order in refund_requested carries the approved refund_cents and refund_reason; your
-- payment system issues the refund and sets status to refunded. version is the row's version:
-- the trigger adds 1 on every update, so an approved refund is applied only to the order the
-- reviewer saw.
CREATE TABLE orders (
  id               varchar(64) PRIMARY KEY,
  tenant_id        varchar(64) NOT NULL,
  customer_name    varchar(200) NOT NULL,
  total_cents      bigint NOT NULL,
  status           varchar(32) NOT NULL,
  refund_cents     bigint NOT NULL DEFAULT 0,
  refund_reason    varchar(32) NULL,
  shipping_address varchar(500) NULL,
  internal_note    text NULL,
  version          bigint NOT NULL DEFAULT 1,
  KEY orders_tenant (tenant_id)
);

CREATE TRIGGER orders_bump_version BEFORE UPDATE ON orders FOR EACH ROW SET NEW.version = OLD.version + 1;

INSERT INTO orders (id, tenant_id, customer_name, total_cents, status, refund_cents, refund_reason, shipping_address, internal_note, version) VALUES
  ('ORD-1001', 'acme',   'Acme Robotics',    4999, 'delivered', 0,    NULL,            '1 Main St, Springfield',  NULL,                 2),
  ('ORD-1002', 'acme',   'Acme Robotics',   12900, 'refunded',  12900, 'wrong_item',   '1 Main St, Springfield',  'Refunded in May.',   5),
  ('ORD-2001', 'globex', 'Globex Shipping', 25000, 'paid',      0,    NULL,            '9 Harbor Rd, Cypress Creek', 'Globex VIP order.', 1);
