-- Demo schema of the support.ticket_resolution recipe (MySQL 8 / MariaDB 10.11).
-- Run it in the database the config names as target.schema (synapsor_demo by default).
-- updated_at is the row's version: it moves on every update, so an approved resolution is
-- applied only to the ticket the reviewer saw.
CREATE TABLE tickets (
  id              varchar(64) PRIMARY KEY,
  tenant_id       varchar(64) NOT NULL,
  subject         varchar(300) NOT NULL,
  status          varchar(32) NOT NULL,
  priority        varchar(32) NOT NULL,
  resolution_code varchar(32) NULL,
  resolution_note varchar(1000) NULL,
  requester_email varchar(200) NOT NULL,
  internal_note   text NULL,
  updated_at      datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  KEY tickets_tenant (tenant_id)
);

INSERT INTO tickets (id, tenant_id, subject, status, priority, resolution_code, resolution_note, requester_email, internal_note, updated_at) VALUES
  ('T-1001', 'acme',   'Cannot rotate the API key',      'open',     'high',   NULL,    NULL,                         'dev@acme.example',  'Customer is on the beta.',  '2026-06-22 08:15:00'),
  ('T-1002', 'acme',   'Invoice shows the wrong address', 'resolved', 'normal', 'fixed', 'Address corrected in May.', 'ap@acme.example',   NULL,                        '2026-05-30 16:40:00'),
  ('T-2001', 'globex', 'Export to CSV times out',         'pending',  'normal', NULL,    NULL,                         'ops@globex.example', 'Globex large dataset.',    '2026-06-21 11:15:00');
