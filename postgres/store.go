package postgres

import (
	"context"
	"fmt"
	"github.com/jackc/pgx/v5"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/storeutil"
)

const (
	oldestFirst = `created_at, id COLLATE "C"`
	newestFirst = `created_at DESC, id COLLATE "C" DESC`
)

// CreateOrg stores a new organization.
func (db *DB) CreateOrg(ctx context.Context, o *ferry.Organization) error {
	if err := storeutil.PrepareOrg(o, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Orgs, o)
}

// GetOrg returns the organization id.
func (db *DB) GetOrg(ctx context.Context, id string) (*ferry.Organization, error) {
	return get(ctx, db.pool, storeutil.Orgs, id, "")
}

// ListOrgs returns every organization, oldest first.
func (db *DB) ListOrgs(ctx context.Context) ([]*ferry.Organization, error) {
	return listAll(ctx, db, storeutil.Orgs, &filter{}, oldestFirst)
}

// CreateProject stores a new project; names are unique per organization.
func (db *DB) CreateProject(ctx context.Context, p *ferry.Project) error {
	if err := storeutil.PrepareProject(p, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Projects, p)
}

// GetProject returns the project id.
func (db *DB) GetProject(ctx context.Context, id string) (*ferry.Project, error) {
	return get(ctx, db.pool, storeutil.Projects, id, "")
}

// GetProjectByName returns the project called name in organization orgID.
func (db *DB) GetProjectByName(ctx context.Context, orgID, name string) (*ferry.Project, error) {
	p, err := one(ctx, db.pool, storeutil.Projects, "org_id = $1 AND name = $2", orgID, name)
	if err == nil && p == nil {
		err = storeutil.NotFoundByName("project", "organization "+orgID, name)
	}
	return p, err
}

// ListProjects returns a page of projects, oldest first, and their total.
func (db *DB) ListProjects(ctx context.Context, pf ferry.ProjectFilter) ([]*ferry.Project, int, error) {
	f := &filter{}
	if pf.OrgID != "" {
		f.eq("org_id", pf.OrgID)
	}
	if pf.IDs != nil {
		if len(pf.IDs) == 0 {
			return []*ferry.Project{}, 0, nil
		}
		f.add("id = ANY(" + f.arg(pf.IDs) + ")")
	}
	return page(ctx, db, storeutil.Projects, f, oldestFirst, pf.Offset, pf.Limit)
}

// UpdateProject applies fn to the project id (a rename).
func (db *DB) UpdateProject(ctx context.Context, id string, fn func(*ferry.Project) error) (*ferry.Project, error) {
	return update(ctx, db, storeutil.Projects, id, fn)
}

// DeleteProject deletes the project and everything it holds.
func (db *DB) DeleteProject(ctx context.Context, id string) error {
	return db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := del(ctx, tx, "projects", "id", "project", id); err != nil {
			return err
		}
		// $1 is the project id in every statement.
		for _, q := range []string{
			`DELETE FROM tokens WHERE key_id IN (SELECT id FROM api_keys WHERE project_id = $1)`,
			`DELETE FROM api_keys WHERE project_id = $1`,
			`DELETE FROM endpoints WHERE project_id = $1`,
			`DELETE FROM migrations WHERE project_id = $1`,
			`DELETE FROM runs WHERE project_id = $1 OR pipeline_id IN (SELECT id FROM pipelines WHERE project_id = $1)`,
			`DELETE FROM pipelines WHERE project_id = $1`,
			`DELETE FROM validations WHERE project_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("postgres: delete project %s: %w", id, err)
			}
		}
		return nil
	})
}

// CreateAPIKey stores a new API key; public keys are unique.
func (db *DB) CreateAPIKey(ctx context.Context, k *ferry.APIKey) error {
	if err := storeutil.PrepareAPIKey(k, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.APIKeys, k)
}

// GetAPIKeyByPublic returns the key whose public key is publicKey.
func (db *DB) GetAPIKeyByPublic(ctx context.Context, publicKey string) (*ferry.APIKey, error) {
	k, err := one(ctx, db.pool, storeutil.APIKeys, "public_key = $1", publicKey)
	if err == nil && k == nil {
		err = ferry.Errorf(ferry.ENOTFOUND, "API key %s not found", publicKey)
	}
	return k, err
}

// GetAPIKey returns the API key id.
func (db *DB) GetAPIKey(ctx context.Context, id string) (*ferry.APIKey, error) {
	return get(ctx, db.pool, storeutil.APIKeys, id, "")
}

// ListAPIKeys returns the keys of organization orgID (every key for ""),
// oldest first.
func (db *DB) ListAPIKeys(ctx context.Context, orgID string) ([]*ferry.APIKey, error) {
	f := &filter{}
	if orgID != "" {
		f.eq("org_id", orgID)
	}
	return listAll(ctx, db, storeutil.APIKeys, f, oldestFirst)
}

// DeleteAPIKey deletes the key and its tokens.
func (db *DB) DeleteAPIKey(ctx context.Context, id string) error {
	return db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := del(ctx, tx, "api_keys", "id", "API key", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE key_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: delete tokens of API key %s: %w", id, err)
		}
		return nil
	})
}

// CreateToken stores a new token.
func (db *DB) CreateToken(ctx context.Context, t *ferry.Token) error {
	if err := storeutil.PrepareToken(t, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Tokens, t)
}

// GetToken returns the token whose hash is hash, expired or not.
func (db *DB) GetToken(ctx context.Context, hash string) (*ferry.Token, error) {
	t, err := one(ctx, db.pool, storeutil.Tokens, "hash = $1", hash)
	if err == nil && t == nil {
		err = ferry.Errorf(ferry.ENOTFOUND, "token not found")
	}
	return t, err
}

// DeleteExpiredTokens deletes the tokens that expired before now.
func (db *DB) DeleteExpiredTokens(ctx context.Context, now time.Time) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE expires_at < $1`, storeutil.Nanos(now)); err != nil {
		return fmt.Errorf("postgres: delete expired tokens: %w", err)
	}
	return nil
}

// DeleteToken deletes one token (revocation); an unknown hash is not an error.
func (db *DB) DeleteToken(ctx context.Context, hash string) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE hash = $1`, hash); err != nil {
		return fmt.Errorf("postgres: delete token: %w", err)
	}
	return nil
}

// TrimTokens keeps the keep newest tokens of keyID and deletes the others.
func (db *DB) TrimTokens(ctx context.Context, keyID string, keep int) error {
	if _, err := db.pool.Exec(ctx, `DELETE FROM tokens WHERE key_id = $1 AND hash NOT IN (SELECT hash FROM tokens WHERE key_id = $1 ORDER BY created_at DESC, hash DESC LIMIT $2)`, keyID, max(keep, 0)); err != nil {
		return fmt.Errorf("postgres: trim tokens: %w", err)
	}
	return nil
}

// CreateEndpoint stores a new endpoint; names are unique per project.
func (db *DB) CreateEndpoint(ctx context.Context, e *ferry.Endpoint) error {
	if err := storeutil.PrepareEndpoint(e, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Endpoints, e)
}

// GetEndpoint returns the endpoint id, password included.
func (db *DB) GetEndpoint(ctx context.Context, id string) (*ferry.Endpoint, error) {
	return get(ctx, db.pool, storeutil.Endpoints, id, "")
}

// GetEndpointByName returns the endpoint called name in projectID.
func (db *DB) GetEndpointByName(ctx context.Context, projectID, name string) (*ferry.Endpoint, error) {
	e, err := one(ctx, db.pool, storeutil.Endpoints, "project_id = $1 AND name = $2", projectID, name)
	if err == nil && e == nil {
		err = storeutil.NotFoundByName("endpoint", "project "+projectID, name)
	}
	return e, err
}

// ListEndpoints returns the endpoints of projectID (every one for ""),
// oldest first.
func (db *DB) ListEndpoints(ctx context.Context, projectID string) ([]*ferry.Endpoint, error) {
	f := &filter{}
	if projectID != "" {
		f.eq("project_id", projectID)
	}
	return listAll(ctx, db, storeutil.Endpoints, f, oldestFirst)
}

// UpdateEndpoint applies fn to the endpoint id.
func (db *DB) UpdateEndpoint(ctx context.Context, id string, fn func(*ferry.Endpoint) error) (*ferry.Endpoint, error) {
	return update(ctx, db, storeutil.Endpoints, id, fn)
}

// DeleteEndpoint deletes the endpoint id.
func (db *DB) DeleteEndpoint(ctx context.Context, id string) error {
	return del(ctx, db.pool, "endpoints", "id", "endpoint", id)
}

// CreateMigration stores a new migration job with Version 1.
func (db *DB) CreateMigration(ctx context.Context, m *ferry.Migration) error {
	if err := storeutil.PrepareMigration(m, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Migrations, m)
}

// GetMigration returns the migration id.
func (db *DB) GetMigration(ctx context.Context, id string) (*ferry.Migration, error) {
	return get(ctx, db.pool, storeutil.Migrations, id, "")
}

// ListMigrations returns a page of the jobs f selects, oldest first, and
// their total.
func (db *DB) ListMigrations(ctx context.Context, mf ferry.MigrationFilter) ([]*ferry.Migration, int, error) {
	f := &filter{}
	if mf.ProjectID != "" {
		f.eq("project_id", mf.ProjectID)
	}
	if mf.Engine != "" {
		f.eq("engine", string(mf.Engine))
	}
	if len(mf.States) > 0 {
		states := make([]string, len(mf.States))
		for i, s := range mf.States {
			states[i] = string(s)
		}
		f.add("state = ANY(" + f.arg(states) + ")")
	}
	if mf.Dialect != "" {
		f.eq("dialect", mf.Dialect)
	}
	return page(ctx, db, storeutil.Migrations, f, oldestFirst, mf.Offset, mf.Limit)
}

// UpdateMigration runs fn on the freshest copy of the job and stores it.
func (db *DB) UpdateMigration(ctx context.Context, id string, fn func(*ferry.Migration) error) (*ferry.Migration, error) {
	return update(ctx, db, storeutil.Migrations, id, fn)
}

// DeleteMigration deletes the migration id.
func (db *DB) DeleteMigration(ctx context.Context, id string) error {
	return del(ctx, db.pool, "migrations", "id", "migration", id)
}

// ClaimMigration takes the oldest active job without a valid lease.
func (db *DB) ClaimMigration(ctx context.Context, agentID string, now time.Time, ttl time.Duration) (*ferry.Migration, error) {
	return claim(ctx, db, storeutil.Migrations, storeutil.MigrationStates, agentID, now, ttl, func(m *ferry.Migration) {
		storeutil.Claim(&m.Lease, &m.Hosts, agentID, now, ttl)
	})
}

// CreatePipeline stores a new pipeline; names are unique per project.
func (db *DB) CreatePipeline(ctx context.Context, p *ferry.Pipeline) error {
	if err := storeutil.PreparePipeline(p, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Pipelines, p)
}

// GetPipeline returns the pipeline id.
func (db *DB) GetPipeline(ctx context.Context, id string) (*ferry.Pipeline, error) {
	return get(ctx, db.pool, storeutil.Pipelines, id, "")
}

// GetPipelineByName returns the pipeline called name in projectID.
func (db *DB) GetPipelineByName(ctx context.Context, projectID, name string) (*ferry.Pipeline, error) {
	p, err := one(ctx, db.pool, storeutil.Pipelines, "project_id = $1 AND name = $2", projectID, name)
	if err == nil && p == nil {
		err = storeutil.NotFoundByName("pipeline", "project "+projectID, name)
	}
	return p, err
}

// ListPipelines returns the pipelines of projectID (every one for ""),
// oldest first.
func (db *DB) ListPipelines(ctx context.Context, projectID string) ([]*ferry.Pipeline, error) {
	f := &filter{}
	if projectID != "" {
		f.eq("project_id", projectID)
	}
	return listAll(ctx, db, storeutil.Pipelines, f, oldestFirst)
}

// UpdatePipeline runs fn on the freshest copy of the pipeline and stores it.
func (db *DB) UpdatePipeline(ctx context.Context, id string, fn func(*ferry.Pipeline) error) (*ferry.Pipeline, error) {
	return update(ctx, db, storeutil.Pipelines, id, fn)
}

// DeletePipeline deletes the pipeline and its runs.
func (db *DB) DeletePipeline(ctx context.Context, id string) error {
	return db.tx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if err := del(ctx, tx, "pipelines", "id", "pipeline", id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE pipeline_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: delete runs of pipeline %s: %w", id, err)
		}
		return nil
	})
}

// CreateRun stores a new pipeline run with Version 1.
func (db *DB) CreateRun(ctx context.Context, r *ferry.PipelineRun) error {
	if err := storeutil.PrepareRun(r, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Runs, r)
}

// GetRun returns the run id.
func (db *DB) GetRun(ctx context.Context, id string) (*ferry.PipelineRun, error) {
	return get(ctx, db.pool, storeutil.Runs, id, "")
}

// ListRuns returns a page of the runs f selects, newest first, and their
// total.
func (db *DB) ListRuns(ctx context.Context, rf ferry.RunFilter) ([]*ferry.PipelineRun, int, error) {
	f := &filter{}
	if rf.ProjectID != "" {
		f.eq("project_id", rf.ProjectID)
	}
	if rf.PipelineID != "" {
		f.eq("pipeline_id", rf.PipelineID)
	}
	if len(rf.States) > 0 {
		f.add("state = ANY(" + f.arg(rf.States) + ")")
	}
	if rf.CreatedBefore != nil {
		f.add("created_at < " + f.arg(storeutil.Nanos(*rf.CreatedBefore)))
	}
	return page(ctx, db, storeutil.Runs, f, newestFirst, rf.Offset, rf.Limit)
}

// UpdateRun runs fn on the freshest copy of the run and stores it.
func (db *DB) UpdateRun(ctx context.Context, id string, fn func(*ferry.PipelineRun) error) (*ferry.PipelineRun, error) {
	return update(ctx, db, storeutil.Runs, id, fn)
}

// ClaimRun takes the oldest PENDING or IN_PROGRESS run without a valid lease.
func (db *DB) ClaimRun(ctx context.Context, agentID string, now time.Time, ttl time.Duration) (*ferry.PipelineRun, error) {
	return claim(ctx, db, storeutil.Runs, storeutil.RunStates, agentID, now, ttl, func(r *ferry.PipelineRun) {
		storeutil.Claim(&r.Lease, &r.Hosts, agentID, now, ttl)
	})
}

// CreateValidation stores a new validation.
func (db *DB) CreateValidation(ctx context.Context, v *ferry.Validation) error {
	if err := storeutil.PrepareValidation(v, storeutil.Now()); err != nil {
		return err
	}
	return insert(ctx, db.pool, storeutil.Validations, v)
}

// GetValidation returns the validation id.
func (db *DB) GetValidation(ctx context.Context, id string) (*ferry.Validation, error) {
	return get(ctx, db.pool, storeutil.Validations, id, "")
}

// UpdateValidation runs fn on the freshest copy of the validation and
// stores it.
func (db *DB) UpdateValidation(ctx context.Context, id string, fn func(*ferry.Validation) error) (*ferry.Validation, error) {
	return update(ctx, db, storeutil.Validations, id, fn)
}

// UpsertAgent stores an agent's announcement, replacing an earlier one.
func (db *DB) UpsertAgent(ctx context.Context, a *ferry.AgentInfo) error {
	if err := storeutil.PrepareAgent(a, storeutil.Now()); err != nil {
		return err
	}
	vals, err := storeutil.Agents.Values(a)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	if _, err := db.pool.Exec(ctx, `INSERT INTO agents (id, last_seen, data) VALUES ($1, $2, $3)
		ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, data = excluded.data`, vals...); err != nil {
		return fmt.Errorf("postgres: upsert agent %s: %w", a.ID, err)
	}
	return nil
}

// ListAgents returns every agent that announced itself, by id.
func (db *DB) ListAgents(ctx context.Context) ([]*ferry.AgentInfo, error) {
	return listAll(ctx, db, storeutil.Agents, &filter{}, `id COLLATE "C"`)
}
