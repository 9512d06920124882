-- One database and one login role per node, for the compose demo (deploy/compose.yaml).
-- The postgres image runs this once, when its data volume is first created.
--
-- Each node connects as its own role and owns only its own database, so one
-- node cannot read another's members, tokens or community private key.
-- The passwords are demo values: the database is reachable only on the compose
-- file's internal network. For anything real, choose your own
-- (ALTER ROLE riverside PASSWORD '...') and pass them in COMMONS_DATABASE_URL.

CREATE ROLE riverside LOGIN PASSWORD 'riverside-demo';
CREATE ROLE hillside LOGIN PASSWORD 'hillside-demo';
CREATE ROLE lakeside LOGIN PASSWORD 'lakeside-demo';

CREATE DATABASE riverside OWNER riverside ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE hillside OWNER hillside ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE lakeside OWNER lakeside ENCODING 'UTF8' TEMPLATE template0;

REVOKE ALL ON DATABASE riverside FROM PUBLIC;
REVOKE ALL ON DATABASE hillside FROM PUBLIC;
REVOKE ALL ON DATABASE lakeside FROM PUBLIC;
