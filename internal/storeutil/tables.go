package storeutil

import (
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// Table describes how one ferry type is kept in one SQL table: a key
// column, indexed columns derived from the value, and a data column with the
// value's JSON. Fields the JSON leaves out (json:"-" secrets) have columns of
// their own, read back by Read and Fill. Both SQL stores render their
// statements from it, so the two keep the same columns.
type Table[T any] struct {
	// Name is the SQL table; Kind names the resource in errors.
	Name, Kind string
	// Cols are the columns a write sets, key column first, data last.
	Cols []string
	// Values returns the values of Cols for v.
	Values func(v *T) ([]any, error)
	// Extra are columns read back after data, passed to Fill.
	Extra []string
	Fill  func(v *T, extra []string)
	// Dup returns the ECONFLICT error for a unique constraint v broke.
	Dup func(v *T, byName bool, cause error) error
	// Touch sets what a store owns on an update after fn ran: immutable
	// fields from old, Version and UpdatedAt.
	Touch func(v, old *T, now time.Time)
}

// Key returns the key column.
func (t *Table[T]) Key() string { return t.Cols[0] }

// ReadCols returns the columns a read selects: data, then Extra.
func (t *Table[T]) ReadCols() string {
	return strings.Join(append([]string{"data"}, t.Extra...), ", ")
}

// Decode returns the value of a row read with ReadCols.
func (t *Table[T]) Decode(data []byte, extra []string) (*T, error) {
	v := new(T)
	if err := Decode(data, v); err != nil {
		return nil, err
	}
	if t.Fill != nil {
		t.Fill(v, extra)
	}
	return v, nil
}

// IsNameConstraint reports whether the unique constraint a driver error
// names (its message or constraint name) is a name rather than an id.
func IsNameConstraint(detail string) bool {
	return strings.Contains(detail, "name") || strings.Contains(detail, "public_key")
}

func encodeWith(v any, cols ...any) ([]any, error) {
	b, err := Encode(v)
	if err != nil {
		return nil, err
	}
	return append(cols, string(b)), nil
}

// Orgs is the organizations table.
var Orgs = &Table[ferry.Organization]{
	Name: "orgs", Kind: "organization",
	Cols: []string{"id", "name", "created_at", "data"},
	Values: func(o *ferry.Organization) ([]any, error) {
		return encodeWith(o, o.ID, o.Name, Nanos(o.CreatedAt))
	},
	Dup: func(o *ferry.Organization, byName bool, cause error) error {
		return dupName("organization", o.ID, o.Name, "", false, cause)
	},
}

// Projects is the projects table; names are unique per organization.
var Projects = &Table[ferry.Project]{
	Name: "projects", Kind: "project",
	Cols: []string{"id", "org_id", "name", "created_at", "data"},
	Values: func(p *ferry.Project) ([]any, error) {
		return encodeWith(p, p.ID, p.OrgID, p.Name, Nanos(p.CreatedAt))
	},
	Dup: func(p *ferry.Project, byName bool, cause error) error {
		return dupName("project", p.ID, p.Name, "organization "+p.OrgID, byName, cause)
	},
	Touch: func(p, old *ferry.Project, now time.Time) {
		p.ID, p.OrgID, p.CreatedAt = old.ID, old.OrgID, old.CreatedAt
	},
}

// APIKeys is the API keys table; public keys are unique. The secret hashes
// have columns of their own.
var APIKeys = &Table[ferry.APIKey]{
	Name: "api_keys", Kind: "API key",
	Cols: []string{"id", "org_id", "project_id", "public_key", "secret_hash", "digest_ha1", "signing_state", "created_at", "data"},
	Values: func(k *ferry.APIKey) ([]any, error) {
		return encodeWith(k, k.ID, k.OrgID, k.ProjectID, k.PublicKey, k.SecretHash, k.DigestHA1, k.SigningState, Nanos(k.CreatedAt))
	},
	Extra: []string{"secret_hash", "digest_ha1", "signing_state"},
	Fill: func(k *ferry.APIKey, extra []string) {
		k.SecretHash, k.DigestHA1, k.SigningState = extra[0], extra[1], extra[2]
	},
	Dup: func(k *ferry.APIKey, byName bool, cause error) error {
		if byName {
			return Duplicate(cause, "public key %s is already in use", k.PublicKey)
		}
		return dupName("API key", k.ID, "", "", false, cause)
	},
}

// Tokens is the tokens table, keyed by the token's hash.
var Tokens = &Table[ferry.Token]{
	Name: "tokens", Kind: "token",
	Cols: []string{"hash", "key_id", "expires_at", "created_at", "data"},
	Values: func(t *ferry.Token) ([]any, error) {
		return encodeWith(t, t.Hash, t.KeyID, Nanos(t.ExpiresAt), Nanos(t.CreatedAt))
	},
	Extra: []string{"hash"},
	Fill:  func(t *ferry.Token, extra []string) { t.Hash = extra[0] },
	Dup: func(t *ferry.Token, byName bool, cause error) error {
		return Duplicate(cause, "the token already exists")
	},
}

// Endpoints is the endpoints table; non-empty names are unique per project.
var Endpoints = &Table[ferry.Endpoint]{
	Name: "endpoints", Kind: "endpoint",
	Cols: []string{"id", "project_id", "name", "created_at", "data"},
	Values: func(e *ferry.Endpoint) ([]any, error) {
		return encodeWith(e, e.ID, e.ProjectID, e.Name, Nanos(e.CreatedAt))
	},
	Dup: func(e *ferry.Endpoint, byName bool, cause error) error {
		return dupName("endpoint", e.ID, e.Name, "project "+e.ProjectID, byName, cause)
	},
	Touch: func(e, old *ferry.Endpoint, now time.Time) {
		e.ID, e.ProjectID, e.Kind, e.CreatedAt = old.ID, old.ProjectID, old.Kind, old.CreatedAt
	},
}

// Migrations is the migrations table.
var Migrations = &Table[ferry.Migration]{
	Name: "migrations", Kind: "migration",
	Cols: []string{"id", "project_id", "name", "engine", "dialect", "state", "lease_agent", "lease_expires", "version", "created_at", "updated_at", "data"},
	Values: func(m *ferry.Migration) ([]any, error) {
		agent, expires := LeaseColumns(m.Lease)
		return encodeWith(m, m.ID, m.ProjectID, m.Name, string(m.Engine), m.Dialect, string(m.State), agent, expires, m.Version, Nanos(m.CreatedAt), Nanos(m.UpdatedAt))
	},
	Dup: func(m *ferry.Migration, byName bool, cause error) error {
		return dupName("migration", m.ID, "", "", false, cause)
	},
	Touch: func(m, old *ferry.Migration, now time.Time) {
		m.ID, m.CreatedAt, m.Version, m.UpdatedAt = old.ID, old.CreatedAt, old.Version+1, now
	},
}

// Pipelines is the pipelines table; names are unique per project.
var Pipelines = &Table[ferry.Pipeline]{
	Name: "pipelines", Kind: "pipeline",
	Cols: []string{"id", "project_id", "name", "state", "version", "created_at", "updated_at", "data"},
	Values: func(p *ferry.Pipeline) ([]any, error) {
		return encodeWith(p, p.ID, p.ProjectID, p.Name, p.State, p.Version, Nanos(p.CreatedAt), Nanos(p.UpdatedAt))
	},
	Dup: func(p *ferry.Pipeline, byName bool, cause error) error {
		return dupName("pipeline", p.ID, p.Name, "project "+p.ProjectID, byName, cause)
	},
	Touch: func(p, old *ferry.Pipeline, now time.Time) {
		p.ID, p.CreatedAt, p.Version, p.UpdatedAt = old.ID, old.CreatedAt, old.Version+1, now
	},
}

// Runs is the pipeline runs table.
var Runs = &Table[ferry.PipelineRun]{
	Name: "runs", Kind: "pipeline run",
	Cols: []string{"id", "project_id", "pipeline_id", "state", "lease_agent", "lease_expires", "version", "created_at", "updated_at", "data"},
	Values: func(r *ferry.PipelineRun) ([]any, error) {
		agent, expires := LeaseColumns(r.Lease)
		return encodeWith(r, r.ID, r.ProjectID, r.PipelineID, r.State, agent, expires, r.Version, Nanos(r.CreatedAt), Nanos(r.UpdatedAt))
	},
	Dup: func(r *ferry.PipelineRun, byName bool, cause error) error {
		return dupName("pipeline run", r.ID, "", "", false, cause)
	},
	Touch: func(r, old *ferry.PipelineRun, now time.Time) {
		r.ID, r.CreatedAt, r.Version, r.UpdatedAt = old.ID, old.CreatedAt, old.Version+1, now
	},
}

// Validations is the validations table.
var Validations = &Table[ferry.Validation]{
	Name: "validations", Kind: "validation",
	Cols: []string{"id", "project_id", "created_at", "data"},
	Values: func(v *ferry.Validation) ([]any, error) {
		return encodeWith(v, v.ID, v.ProjectID, Nanos(v.CreatedAt))
	},
	Dup: func(v *ferry.Validation, byName bool, cause error) error {
		return dupName("validation", v.ID, "", "", false, cause)
	},
	Touch: func(v, old *ferry.Validation, now time.Time) {
		v.ID, v.CreatedAt = old.ID, old.CreatedAt
	},
}

// Agents is the agents table.
var Agents = &Table[ferry.AgentInfo]{
	Name: "agents", Kind: "agent",
	Cols: []string{"id", "last_seen", "data"},
	Values: func(a *ferry.AgentInfo) ([]any, error) {
		return encodeWith(a, a.ID, Nanos(a.LastSeen))
	},
	Dup: func(a *ferry.AgentInfo, byName bool, cause error) error {
		return dupName("agent", a.ID, "", "", false, cause)
	},
}
