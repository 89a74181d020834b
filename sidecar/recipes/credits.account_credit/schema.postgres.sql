-- Demo schema of the credits.account_credit recipe (PostgreSQL).
-- A credit waits in pending_credit_cents until your billing run books it and sets
-- credit_status to issued. version is the row's version: the trigger adds 1 on every update, so
-- an approved credit is applied only to the account the reviewer saw.
CREATE TABLE customers (
  id                   text PRIMARY KEY,
  tenant_id            text NOT NULL,
  customer_name        text NOT NULL,
  balance_cents        bigint NOT NULL DEFAULT 0,
  pending_credit_cents bigint NOT NULL DEFAULT 0,
  credit_reason        text,
  credit_status        text NOT NULL DEFAULT 'none',
  card_fingerprint     text,
  internal_note        text,
  version              bigint NOT NULL DEFAULT 1
);
CREATE INDEX customers_tenant ON customers (tenant_id);

CREATE FUNCTION customers_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.version := OLD.version + 1; RETURN NEW; END $$;
CREATE TRIGGER customers_bump_version BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION customers_bump_version();

INSERT INTO customers (id, tenant_id, customer_name, balance_cents, pending_credit_cents, credit_reason, credit_status, card_fingerprint, internal_note, version) VALUES
  ('cus_acme_1',   'acme',   'Acme Robotics',   -12000,    0, NULL,                     'none',    'fp_7c1e', 'Renewal due in August.', 3),
  ('cus_acme_2',   'acme',   'Acme Labs',            0, 1500, 'Late delivery credit.', 'pending', 'fp_91aa', NULL,                     7),
  ('cus_globex_1', 'globex', 'Globex Shipping',  -4500,    0, NULL,                     'none',    'fp_0b42', 'Globex churn risk.',     2);
