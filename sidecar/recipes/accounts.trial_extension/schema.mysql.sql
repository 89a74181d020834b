-- Demo schema of the accounts.trial_extension recipe (MySQL 8 / MariaDB 10.11).
-- Run it in the database the config names as target.schema (synapsor_demo by default).
-- trial_extension_days is the extension a person approved; the application adds it to
-- trial_ends_at. updated_at is the row's version: it moves on every update, so an approved
-- proposal is applied only to the row the reviewer saw.
CREATE TABLE accounts (
  id                     varchar(64) PRIMARY KEY,
  tenant_id              varchar(64) NOT NULL,
  account_name           varchar(200) NOT NULL,
  plan                   varchar(32) NOT NULL,
  status                 varchar(32) NOT NULL,
  trial_ends_at          datetime(6) NULL,
  trial_extension_days   int NOT NULL DEFAULT 0,
  trial_extension_reason varchar(500) NULL,
  billing_email          varchar(200) NOT NULL,
  internal_note          text NULL,
  updated_at             datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY accounts_tenant (tenant_id)
);

INSERT INTO accounts (id, tenant_id, account_name, plan, status, trial_ends_at, trial_extension_days, trial_extension_reason, billing_email, internal_note, updated_at) VALUES
  ('acct_acme_1',   'acme',   'Acme Robotics',   'team',       'trialing',       '2026-07-01 00:00:00', 0,  NULL, 'billing@acme.example',   'Champion is the CTO.',            '2026-06-20 09:00:00'),
  ('acct_acme_2',   'acme',   'Acme Labs',       'enterprise', 'trial_extended', '2026-06-15 00:00:00', 14, 'Procurement delay.', 'labs@acme.example', NULL, '2026-06-10 12:30:00'),
  ('acct_globex_1', 'globex', 'Globex Shipping', 'team',       'trialing',       '2026-07-03 00:00:00', 0,  NULL, 'ap@globex.example',      'Globex asked for a discount.',    '2026-06-21 11:15:00');
