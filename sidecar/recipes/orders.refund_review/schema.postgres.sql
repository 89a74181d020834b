-- Demo schema of the orders.refund_review recipe (PostgreSQL).
-- An order in refund_requested carries the approved refund_cents and refund_reason; your
-- payment system issues the refund and sets status to refunded. version is the row's version:
-- the trigger adds 1 on every update, so an approved refund is applied only to the order the
-- reviewer saw.
CREATE TABLE orders (
  id               text PRIMARY KEY,
  tenant_id        text NOT NULL,
  customer_name    text NOT NULL,
  total_cents      bigint NOT NULL,
  status           text NOT NULL,
  refund_cents     bigint NOT NULL DEFAULT 0,
  refund_reason    text,
  shipping_address text,
  internal_note    text,
  version          bigint NOT NULL DEFAULT 1
);
CREATE INDEX orders_tenant ON orders (tenant_id);

CREATE FUNCTION orders_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$;
CREATE TRIGGER orders_bump_version BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION orders_bump_version();

INSERT INTO orders (id, tenant_id, customer_name, total_cents, status, refund_cents, refund_reason, shipping_address, internal_note, version) VALUES
  ('ORD-1001', 'acme',   'Acme Robotics',    4999, 'delivered', 0,    NULL,            '1 Main St, Springfield',  NULL,                 2),
  ('ORD-1002', 'acme',   'Acme Robotics',   12900, 'refunded',  12900, 'wrong_item',   '1 Main St, Springfield',  'Refunded in May.',   5),
  ('ORD-2001', 'globex', 'Globex Shipping', 25000, 'paid',      0,    NULL,            '9 Harbor Rd, Cypress Creek', 'Globex VIP order.', 1);
