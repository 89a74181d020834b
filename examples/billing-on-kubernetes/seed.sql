-- The billing-on-kubernetes example's database: the billing example's invoices, the app-handler
-- example's support tickets, a SELECT-only role for the sidecars and a writer for the controller.
-- run.sh loads it with: psql -v reader_pw=... -v writer_pw=... (the receipts table comes from the
-- chart's receipts.init hook, created as the admin and granted to the writer).
\set ON_ERROR_STOP on
\ir ../billing-postgres/seed.sql
\ir ../app-handler/seed.sql
CREATE ROLE billing_reader LOGIN PASSWORD :'reader_pw';
GRANT SELECT ON public.invoices, public.support_tickets TO billing_reader;
CREATE ROLE billing_writer LOGIN PASSWORD :'writer_pw';
GRANT SELECT, UPDATE ON public.invoices TO billing_writer;
