-- The roles of the billing-on-kubernetes example's database, on top of the billing example's and
-- the app-handler example's seeds (../billing-postgres/seed.sql, ../app-handler/seed.sql): a
-- SELECT-only role for the sidecars and a writer for the controller. run.sh loads the two seeds
-- and this file with psql -v reader_pw=... -v writer_pw=...; the receipts table comes from the
-- chart's receipts.init hook, created as the admin and granted to the writer.
CREATE ROLE billing_reader LOGIN PASSWORD :'reader_pw';
GRANT SELECT ON public.invoices, public.support_tickets TO billing_reader;
CREATE ROLE billing_writer LOGIN PASSWORD :'writer_pw';
GRANT SELECT, UPDATE ON public.invoices TO billing_writer;
