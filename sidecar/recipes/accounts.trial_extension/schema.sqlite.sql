-- Demo schema of the accounts.trial_extension recipe (SQLite).
-- trial_extension_days is the extension a person approved; the application adds it to
-- trial_ends_at. updated_at (UTC, ISO 8601 text) is the row's version: the trigger moves it on
-- every update that does not set it, so an approved proposal is applied only to the row the
-- reviewer saw.
CREATE TABLE accounts (
  id                     TEXT PRIMARY KEY,
  tenant_id              TEXT NOT NULL,
  account_name           TEXT NOT NULL,
  plan                   TEXT NOT NULL,
  status                 TEXT NOT NULL,
  trial_ends_at          TEXT,
  trial_extension_days   INTEGER NOT NULL DEFAULT 0,
  trial_extension_reason TEXT,
  billing_email          TEXT NOT NULL,
  internal_note          TEXT,
  updated_at             TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX accounts_tenant ON accounts (tenant_id);

CREATE TRIGGER accounts_touch AFTER UPDATE ON accounts FOR EACH ROW WHEN NEW.updated_at IS OLD.updated_at
BEGIN UPDATE accounts SET updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = NEW.id; END;

INSERT INTO accounts (id, tenant_id, account_name, plan, status, trial_ends_at, trial_extension_days, trial_extension_reason, billing_email, internal_note, updated_at) VALUES
  ('acct_acme_1',   'acme',   'Acme Robotics',   'team',       'trialing',       '2026-07-01T00:00:00Z', 0,  NULL, 'billing@acme.example',   'Champion is the CTO.',            '2026-06-20T09:00:00Z'),
  ('acct_acme_2',   'acme',   'Acme Labs',       'enterprise', 'trial_extended', '2026-06-15T00:00:00Z', 14, 'Procurement delay.', 'labs@acme.example', NULL, '2026-06-10T12:30:00Z'),
  ('acct_globex_1', 'globex', 'Globex Shipping', 'team',       'trialing',       '2026-07-03T00:00:00Z', 0,  NULL, 'ap@globex.example',      'Globex asked for a discount.',    '2026-06-21T11:15:00Z');
