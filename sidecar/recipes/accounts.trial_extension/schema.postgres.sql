-- Demo schema of the accounts.trial_extension recipe (PostgreSQL).
-- trial_extension_days is the extension a person approved; the application adds it to
-- trial_ends_at. updated_at is the row's version: the trigger moves it on every update, so an
-- approved proposal is applied only to the row the reviewer saw.
CREATE TABLE accounts (
  id                     text PRIMARY KEY,
  tenant_id              text NOT NULL,
  account_name           text NOT NULL,
  plan                   text NOT NULL,
  status                 text NOT NULL,
  trial_ends_at          timestamptz,
  trial_extension_days   integer NOT NULL DEFAULT 0,
  trial_extension_reason text,
  billing_email          text NOT NULL,
  internal_note          text,
  updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX accounts_tenant ON accounts (tenant_id);

CREATE FUNCTION accounts_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION accounts_touch();

INSERT INTO accounts (id, tenant_id, account_name, plan, status, trial_ends_at, trial_extension_days, trial_extension_reason, billing_email, internal_note, updated_at) VALUES
  ('acct_acme_1',   'acme',   'Acme Robotics',   'team',       'trialing',       '2026-07-01 00:00:00+00', 0,  NULL, 'billing@acme.example',   'Champion is the CTO.',            '2026-06-20 09:00:00+00'),
  ('acct_acme_2',   'acme',   'Acme Labs',       'enterprise', 'trial_extended', '2026-06-15 00:00:00+00', 14, 'Procurement delay.', 'labs@acme.example', NULL, '2026-06-10 12:30:00+00'),
  ('acct_globex_1', 'globex', 'Globex Shipping', 'team',       'trialing',       '2026-07-03 00:00:00+00', 0,  NULL, 'ap@globex.example',      'Globex asked for a discount.',    '2026-06-21 11:15:00+00');
