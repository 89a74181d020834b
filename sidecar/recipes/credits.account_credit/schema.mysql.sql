-- Demo schema of the credits.account_credit recipe (MySQL 8 / MariaDB 10.11).
-- Run it in the database the config names as target.schema (synapsor_demo by default).
-- A credit waits in pending_credit_cents until your billing run books it and sets
-- credit_status to issued. version is the row's version: the trigger adds 1 on every update, so
-- an approved credit is applied only to the account the reviewer saw.
CREATE TABLE customers (
  id                   varchar(64) PRIMARY KEY,
  tenant_id            varchar(64) NOT NULL,
  customer_name        varchar(200) NOT NULL,
  balance_cents        bigint NOT NULL DEFAULT 0,
  pending_credit_cents bigint NOT NULL DEFAULT 0,
  credit_reason        varchar(500) NULL,
  credit_status        varchar(32) NOT NULL DEFAULT 'none',
  card_fingerprint     varchar(64) NULL,
  internal_note        text NULL,
  version              bigint NOT NULL DEFAULT 1,
  KEY customers_tenant (tenant_id)
);

CREATE TRIGGER customers_bump_version BEFORE UPDATE ON customers FOR EACH ROW SET NEW.version = OLD.version + 1;

INSERT INTO customers (id, tenant_id, customer_name, balance_cents, pending_credit_cents, credit_reason, credit_status, card_fingerprint, internal_note, version) VALUES
  ('cus_acme_1',   'acme',   'Acme Robotics',   -12000,    0, NULL,                     'none',    'fp_7c1e', 'Renewal due in August.', 3),
  ('cus_acme_2',   'acme',   'Acme Labs',            0, 1500, 'Late delivery credit.', 'pending', 'fp_91aa', NULL,                     7),
  ('cus_globex_1', 'globex', 'Globex Shipping',  -4500,    0, NULL,                     'none',    'fp_0b42', 'Globex churn risk.',     2);
