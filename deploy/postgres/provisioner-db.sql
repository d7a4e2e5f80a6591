-- pool-reaper in the provisioner database (PROVISIONER_DATABASE_URL / MIGRATE_DATABASE_URL):
-- two roles, neither a superuser nor the owner of pool_items.
--
--   psql "postgres://postgres@db/pool_provisioner" -v items_owner=pool_provisioner \
--        [-v reaper_role=pool_reaper] [-v migrate_role=pool_reaper_migrate] \
--        -f deploy/postgres/provisioner-db.sql
--   MIGRATE_DATABASE_URL=postgres://pool_reaper_migrate:...@db/pool_provisioner pool-reaper migrate
--   PROVISIONER_DATABASE_URL=postgres://pool_reaper:...@db/pool_provisioner pool-reaper worker
--
-- :reaper_role (the worker)  reads pool_items and deletes the rows it reaped; SELECT ... FOR
--                            UPDATE (the row lock a teardown holds) needs an UPDATE privilege,
--                            granted on the status column only. It owns the pool_reaper_*
--                            tables and nothing else (ANALYZE of its sweep table needs that).
--                            It cannot drop, alter or index pool_items.
-- :migrate_role              `pool-reaper migrate`. It adds two indexes to pool_items, which
--                            only pool_items' owner may do: hence membership in :items_owner.
--                            It creates the pool_reaper_* tables and hands each to
--                            :reaper_role (ALTER ... OWNER TO needs membership in it).
--                            Run the worker with the one role and migrate with the other.
\set ON_ERROR_STOP on
\if :{?reaper_role}
\else
  \set reaper_role pool_reaper
\endif
\if :{?migrate_role}
\else
  \set migrate_role pool_reaper_migrate
\endif
\if :{?items_owner}
\else
  \echo 'set -v items_owner=<the role that owns pool_items>'
  \quit
\endif

SELECT format('CREATE ROLE %I LOGIN', r)
  FROM unnest(ARRAY[:'reaper_role', :'migrate_role']) AS r
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) \gexec
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT', r)
  FROM unnest(ARRAY[:'reaper_role', :'migrate_role']) AS r \gexec

SELECT format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), :'reaper_role', :'migrate_role') \gexec
-- CREATE too: ALTER TABLE ... OWNER TO (migrate handing the reaper its tables) requires the
-- new owner to hold CREATE on the schema. It lets the worker create tables of its own there;
-- it gives it nothing on anyone else's.
SELECT format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', current_schema(), :'reaper_role') \gexec
SELECT format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', current_schema(), :'migrate_role') \gexec

SELECT format('GRANT SELECT, DELETE ON pool_items TO %I', :'reaper_role') \gexec
SELECT format('GRANT UPDATE (status) ON pool_items TO %I', :'reaper_role') \gexec

SELECT format('GRANT %I TO %I', :'items_owner', :'migrate_role') \gexec
SELECT format('GRANT %I TO %I', :'reaper_role', :'migrate_role') \gexec
