-- pool-reaper on a tenant Postgres cluster (the POSTGRES_ADMIN_URL / POSTGRES_ADMIN_URLS side):
-- an admin role that is NOT a superuser and can drop only the tenant databases and roles.
--
--   psql "postgres://postgres@cluster/postgres" -v tenant_owner=pool_provisioner \
--        [-v admin_role=pool_reaper_admin] -f deploy/postgres/tenant-cluster.sql
--   psql ... -c "\password pool_reaper_admin"      (or a SCRAM verifier from your secret store)
--
-- What each grant is for (src/teardown/postgres.ts runs exactly these statements):
--   membership in :tenant_owner  REVOKE CONNECT ON DATABASE and DROP DATABASE need the database
--                                owner's privileges: the role the provisioner creates the tenant
--                                databases as (CREATE DATABASE ... as that role, or OWNER it).
--                                A database owned by anyone else is refused with 42501
--                                ("must be owner of database"): a pool_items row naming a
--                                database the provisioner does not own cannot make it go.
--   CREATEROLE                   ALTER ROLE usr_<token> NOLOGIN and DROP ROLE usr_<token>.
--                                On PostgreSQL 15 CREATEROLE reaches every non-superuser role
--                                (the reaper's name guard, src/teardown/drop-guard.ts, keeps
--                                it to usr_<token>); from PostgreSQL 16 on it reaches only the
--                                roles this role created or was granted ADMIN OPTION on.
--   pg_signal_backend            pg_terminate_backend() of the tenant's sessions before the drop
--                                (never a superuser's session).
--   nothing else                 NOSUPERUSER NOCREATEDB NOREPLICATION NOBYPASSRLS; no data in
--                                any database is readable by it.
\set ON_ERROR_STOP on
\if :{?admin_role}
\else
  \set admin_role pool_reaper_admin
\endif
\if :{?tenant_owner}
\else
  \echo 'set -v tenant_owner=<the role that owns the tenant databases>'
  \quit
\endif

SELECT format('CREATE ROLE %I LOGIN', :'admin_role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'admin_role') \gexec
-- Also on a re-run: a role that was created by hand with more is brought down to this.
SELECT format('ALTER ROLE %I LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS INHERIT',
              :'admin_role') \gexec
SELECT format('GRANT %I TO %I', :'tenant_owner', :'admin_role') \gexec
SELECT format('GRANT pg_signal_backend TO %I', :'admin_role') \gexec
