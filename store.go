package ferry

import (
	"context"
	"time"
)

// ProjectFilter selects projects in a list.
type ProjectFilter struct {
	OrgID  string
	IDs    []string // when non-nil, only these
	Offset int
	Limit  int
}

// AgentInfo is a migration host that has announced itself.
type AgentInfo struct {
	ID        string    `json:"id"`
	Hostname  string    `json:"hostname"`
	Version   string    `json:"version"`
	StartedAt time.Time `json:"startedAt"`
	LastSeen  time.Time `json:"lastSeen"`
}

// Store persists ferry's model. Every adapter (SQLite, PostgreSQL) passes the
// same conformance suite (package storetest).
//
// Get methods return an ENOTFOUND *Error when nothing matches; Create methods
// an ECONFLICT *Error on a duplicate id or name. List methods return the page
// asked for and the total count before paging. Update methods run fn on the
// freshest copy inside one transaction and store the result with Version
// incremented and UpdatedAt set; if fn returns an error nothing is written and
// that error is returned.
type Store interface {
	CreateOrg(ctx context.Context, o *Organization) error
	GetOrg(ctx context.Context, id string) (*Organization, error)
	ListOrgs(ctx context.Context) ([]*Organization, error)

	// Project names are unique within an organization.
	CreateProject(ctx context.Context, p *Project) error
	GetProject(ctx context.Context, id string) (*Project, error)
	GetProjectByName(ctx context.Context, orgID, name string) (*Project, error)
	ListProjects(ctx context.Context, f ProjectFilter) ([]*Project, int, error)
	DeleteProject(ctx context.Context, id string) error
	// UpdateProject applies fn to project id in one transaction; ID, OrgID
	// and CreatedAt cannot change; a name taken in the organization is
	// ECONFLICT.
	UpdateProject(ctx context.Context, id string, fn func(*Project) error) (*Project, error)

	// Public keys are unique.
	CreateAPIKey(ctx context.Context, k *APIKey) error
	GetAPIKeyByPublic(ctx context.Context, publicKey string) (*APIKey, error)
	GetAPIKey(ctx context.Context, id string) (*APIKey, error)
	ListAPIKeys(ctx context.Context, orgID string) ([]*APIKey, error)
	DeleteAPIKey(ctx context.Context, id string) error

	CreateToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, hash string) (*Token, error)
	DeleteExpiredTokens(ctx context.Context, now time.Time) error
	// DeleteToken revokes one token; an unknown hash is not an error.
	DeleteToken(ctx context.Context, hash string) error
	// TrimTokens keeps the keep newest tokens of key keyID (by CreatedAt)
	// and deletes the older ones.
	TrimTokens(ctx context.Context, keyID string, keep int) error

	// Endpoint names are unique within a project.
	CreateEndpoint(ctx context.Context, e *Endpoint) error
	GetEndpoint(ctx context.Context, id string) (*Endpoint, error)
	GetEndpointByName(ctx context.Context, projectID, name string) (*Endpoint, error)
	ListEndpoints(ctx context.Context, projectID string) ([]*Endpoint, error)
	DeleteEndpoint(ctx context.Context, id string) error
	// UpdateEndpoint applies fn to endpoint id in one transaction; ID,
	// ProjectID, Kind and CreatedAt cannot change; a name taken in the
	// project is ECONFLICT.
	UpdateEndpoint(ctx context.Context, id string, fn func(*Endpoint) error) (*Endpoint, error)

	CreateMigration(ctx context.Context, m *Migration) error
	GetMigration(ctx context.Context, id string) (*Migration, error)
	// ListMigrations orders by creation time, oldest first.
	ListMigrations(ctx context.Context, f MigrationFilter) ([]*Migration, int, error)
	UpdateMigration(ctx context.Context, id string, fn func(*Migration) error) (*Migration, error)
	DeleteMigration(ctx context.Context, id string) error
	// ClaimMigration atomically takes the oldest active job (State.Active)
	// that has no lease or whose lease expired before now: it sets Lease to
	// agentID until now+ttl, appends agentID to Hosts if it is not the last
	// host, and returns the job. It returns nil, nil when there is none.
	// Two agents never get the same job while its lease is valid.
	ClaimMigration(ctx context.Context, agentID string, now time.Time, ttl time.Duration) (*Migration, error)

	// Pipeline names are unique within a project.
	CreatePipeline(ctx context.Context, p *Pipeline) error
	GetPipeline(ctx context.Context, id string) (*Pipeline, error)
	GetPipelineByName(ctx context.Context, projectID, name string) (*Pipeline, error)
	ListPipelines(ctx context.Context, projectID string) ([]*Pipeline, error)
	UpdatePipeline(ctx context.Context, id string, fn func(*Pipeline) error) (*Pipeline, error)
	DeletePipeline(ctx context.Context, id string) error

	CreateRun(ctx context.Context, r *PipelineRun) error
	GetRun(ctx context.Context, id string) (*PipelineRun, error)
	// ListRuns orders by creation time, newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]*PipelineRun, int, error)
	UpdateRun(ctx context.Context, id string, fn func(*PipelineRun) error) (*PipelineRun, error)
	// ClaimRun is ClaimMigration for runs in PENDING or IN_PROGRESS.
	ClaimRun(ctx context.Context, agentID string, now time.Time, ttl time.Duration) (*PipelineRun, error)

	CreateValidation(ctx context.Context, v *Validation) error
	GetValidation(ctx context.Context, id string) (*Validation, error)
	UpdateValidation(ctx context.Context, id string, fn func(*Validation) error) (*Validation, error)

	UpsertAgent(ctx context.Context, a *AgentInfo) error
	ListAgents(ctx context.Context) ([]*AgentInfo, error)

	Close() error
}
