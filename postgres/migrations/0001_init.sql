-- ferry's store schema, version 1. Every resource keeps its full JSON in
-- data (type json, not jsonb: the text is kept as written, so opaque engine
-- checkpoints come back byte for byte); the other columns are derived from
-- it on every write, for keys, uniqueness, filters and ordering. Times are
-- Unix nanoseconds (UTC). Secrets the JSON leaves out (API key hashes, token
-- hashes) have columns.

CREATE TABLE orgs (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	data       JSON NOT NULL
);
CREATE INDEX orgs_created ON orgs (created_at, id);

CREATE TABLE projects (
	id         TEXT PRIMARY KEY,
	org_id     TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	data       JSON NOT NULL,
	CONSTRAINT projects_org_name UNIQUE (org_id, name)
);
CREATE INDEX projects_created ON projects (created_at, id);

CREATE TABLE api_keys (
	id          TEXT PRIMARY KEY,
	org_id      TEXT NOT NULL,
	project_id  TEXT NOT NULL DEFAULT '',
	public_key  TEXT NOT NULL,
	secret_hash TEXT NOT NULL DEFAULT '',
	digest_ha1  TEXT NOT NULL DEFAULT '',
	created_at  BIGINT NOT NULL,
	data        JSON NOT NULL,
	CONSTRAINT api_keys_public_key UNIQUE (public_key)
);
CREATE INDEX api_keys_org ON api_keys (org_id, created_at, id);
CREATE INDEX api_keys_project ON api_keys (project_id);

CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	expires_at BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	data       JSON NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_key ON tokens (key_id);

CREATE TABLE endpoints (
	id         TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name       TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	data       JSON NOT NULL
);
CREATE UNIQUE INDEX endpoints_project_name ON endpoints (project_id, name) WHERE name <> '';
CREATE INDEX endpoints_project ON endpoints (project_id, created_at, id);

CREATE TABLE migrations (
	id            TEXT PRIMARY KEY,
	project_id    TEXT NOT NULL,
	name          TEXT NOT NULL,
	engine        TEXT NOT NULL,
	dialect       TEXT NOT NULL,
	state         TEXT NOT NULL,
	lease_agent   TEXT,
	lease_expires BIGINT,
	version       BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	data          JSON NOT NULL
);
CREATE INDEX migrations_created ON migrations (created_at, id);
CREATE INDEX migrations_project ON migrations (project_id, created_at, id);
CREATE INDEX migrations_active ON migrations (created_at, id) WHERE state IN ('running', 'cutting_over');

CREATE TABLE pipelines (
	id         TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	name       TEXT NOT NULL,
	state      TEXT NOT NULL,
	version    BIGINT NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	data       JSON NOT NULL,
	CONSTRAINT pipelines_project_name UNIQUE (project_id, name)
);
CREATE INDEX pipelines_created ON pipelines (created_at, id);

CREATE TABLE runs (
	id            TEXT PRIMARY KEY,
	project_id    TEXT NOT NULL,
	pipeline_id   TEXT NOT NULL,
	state         TEXT NOT NULL,
	lease_agent   TEXT,
	lease_expires BIGINT,
	version       BIGINT NOT NULL,
	created_at    BIGINT NOT NULL,
	updated_at    BIGINT NOT NULL,
	data          JSON NOT NULL
);
CREATE INDEX runs_created ON runs (created_at, id);
CREATE INDEX runs_project ON runs (project_id, created_at, id);
CREATE INDEX runs_pipeline ON runs (pipeline_id, created_at, id);
CREATE INDEX runs_active ON runs (created_at, id) WHERE state IN ('PENDING', 'IN_PROGRESS');

CREATE TABLE validations (
	id         TEXT PRIMARY KEY,
	project_id TEXT NOT NULL,
	created_at BIGINT NOT NULL,
	data       JSON NOT NULL
);
CREATE INDEX validations_project ON validations (project_id);

CREATE TABLE agents (
	id        TEXT PRIMARY KEY,
	last_seen BIGINT NOT NULL,
	data      JSON NOT NULL
);
