-- Demo schema of the orders.refund_review recipe (SQLite).
-- An order in refund_requested carries the approved refund_cents and refund_reason; your
-- payment system issues the refund and sets status to refunded. version is the row's version:
-- the trigger adds 1 on every update that does not set it, so an approved refund is applied
-- only to the order the reviewer saw. SQLite keeps any number in an INTEGER column: the CHECK
-- refuses a fractional refund.
CREATE TABLE orders (
  id               TEXT PRIMARY KEY,
  tenant_id        TEXT NOT NULL,
  customer_name    TEXT NOT NULL,
  total_cents      INTEGER NOT NULL,
  status           TEXT NOT NULL,
  refund_cents     INTEGER NOT NULL DEFAULT 0 CHECK (typeof(refund_cents) = 'integer'),
  refund_reason    TEXT,
  shipping_address TEXT,
  internal_note    TEXT,
  version          INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX orders_tenant ON orders (tenant_id);

CREATE TRIGGER orders_bump_version AFTER UPDATE ON orders FOR EACH ROW WHEN NEW.version IS OLD.version
BEGIN UPDATE orders SET version = OLD.version + 1 WHERE id = NEW.id; END;

INSERT INTO orders (id, tenant_id, customer_name, total_cents, status, refund_cents, refund_reason, shipping_address, internal_note, version) VALUES
  ('ORD-1001', 'acme',   'Acme Robotics',    4999, 'delivered', 0,    NULL,            '1 Main St, Springfield',  NULL,                 2),
  ('ORD-1002', 'acme',   'Acme Robotics',   12900, 'refunded',  12900, 'wrong_item',   '1 Main St, Springfield',  'Refunded in May.',   5),
  ('ORD-2001', 'globex', 'Globex Shipping', 25000, 'paid',      0,    NULL,            '9 Harbor Rd, Cypress Creek', 'Globex VIP order.', 1);
