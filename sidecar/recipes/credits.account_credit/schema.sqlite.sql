-- Demo schema of the credits.account_credit recipe (SQLite).
-- A credit waits in pending_credit_cents until your billing run books it and sets
-- credit_status to issued. version is the row's version: the trigger adds 1 on every update that
-- does not set it, so an approved credit is applied only to the account the reviewer saw.
-- SQLite keeps any number in an INTEGER column: the CHECK refuses a fractional credit.
CREATE TABLE customers (
  id                   TEXT PRIMARY KEY,
  tenant_id            TEXT NOT NULL,
  customer_name        TEXT NOT NULL,
  balance_cents        INTEGER NOT NULL DEFAULT 0,
  pending_credit_cents INTEGER NOT NULL DEFAULT 0 CHECK (typeof(pending_credit_cents) = 'integer'),
  credit_reason        TEXT,
  credit_status        TEXT NOT NULL DEFAULT 'none',
  card_fingerprint     TEXT,
  internal_note        TEXT,
  version              INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX customers_tenant ON customers (tenant_id);

CREATE TRIGGER customers_bump_version AFTER UPDATE ON customers FOR EACH ROW WHEN NEW.version IS OLD.version
BEGIN UPDATE customers SET version = OLD.version + 1 WHERE id = NEW.id; END;

INSERT INTO customers (id, tenant_id, customer_name, balance_cents, pending_credit_cents, credit_reason, credit_status, card_fingerprint, internal_note, version) VALUES
  ('cus_acme_1',   'acme',   'Acme Robotics',   -12000,    0, NULL,                     'none',    'fp_7c1e', 'Renewal due in August.', 3),
  ('cus_acme_2',   'acme',   'Acme Labs',            0, 1500, 'Late delivery credit.', 'pending', 'fp_91aa', NULL,                     7),
  ('cus_globex_1', 'globex', 'Globex Shipping',  -4500,    0, NULL,                     'none',    'fp_0b42', 'Globex churn risk.',     2);
