package ferry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Service is the application layer every API dialect and the CLI call. It
// enforces who may do what (the Principal in the context), validates
// requests and drives the state machine; agents do the data work.
type Service struct {
	Store    Store
	Registry *Registry
	Logger   *slog.Logger
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// TokenTTL is the lifetime of issued bearer tokens.
	TokenTTL time.Duration
	// MaxTokensPerKey bounds the live bearer tokens of one API key: issuing
	// one more revokes the oldest (0: DefaultMaxTokensPerKey).
	MaxTokensPerKey int
}

// DefaultMaxTokensPerKey is the default of Service.MaxTokensPerKey.
const DefaultMaxTokensPerKey = 100

// NewService returns a service over store and registry.
func NewService(store Store, reg *Registry, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.Default()
	}
	return &Service{Store: store, Registry: reg, Logger: logger, Now: func() time.Time { return time.Now().UTC() }, TokenTTL: time.Hour}
}

func (s *Service) now() time.Time { return s.Now().UTC() }

func principal(ctx context.Context) (*Principal, error) {
	p := PrincipalFrom(ctx)
	if p == nil {
		return nil, &Error{Code: EUNAUTHORIZED, Message: "authentication required"}
	}
	return p, nil
}

// Authorize returns the project if the caller has at least need on it.
// A project the caller cannot see at all is ENOTFOUND (so another
// organization's project ids are not disclosed); a visible one with too
// small a role is EFORBIDDEN.
func (s *Service) Authorize(ctx context.Context, projectID string, need Access) (*Project, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !ValidID(projectID) {
		return nil, &Error{Code: EINVALID, Field: "groupId", Reason: "INVALID_GROUP_ID", Message: fmt.Sprintf("%q is not a valid 24-hex project id", projectID)}
	}
	proj, err := s.Store.GetProject(ctx, projectID)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, &Error{Code: ENOTFOUND, Reason: "GROUP_NOT_FOUND", Message: fmt.Sprintf("no project with id %s", projectID)}
		}
		return nil, err
	}
	have := p.AccessTo(proj)
	if have == AccessNone {
		return nil, &Error{Code: ENOTFOUND, Reason: "GROUP_NOT_FOUND", Message: fmt.Sprintf("no project with id %s", projectID)}
	}
	if have < need {
		return nil, &Error{Code: EFORBIDDEN, Reason: "INSUFFICIENT_ROLE", Message: fmt.Sprintf("the key's role %s cannot do this in project %s", p.Role, projectID)}
	}
	return proj, nil
}

// ---- keys and tokens ----

// CreateAPIKey creates a key pair and returns the key and its private half,
// which is shown only now. The caller must own the organization (or be the
// system).
func (s *Service) CreateAPIKey(ctx context.Context, orgID, projectID string, role Role, description string) (*APIKey, string, error) {
	// Another organization's key gets ENOTFOUND, as if the organization
	// did not exist: its existence is not disclosed.
	if err := requireOrgOwner(ctx, orgID); err != nil {
		return nil, "", err
	}
	if !role.Valid() {
		return nil, "", FieldError("role", "unknown role %q (one of %v)", role, Roles)
	}
	if _, err := s.Store.GetOrg(ctx, orgID); err != nil {
		return nil, "", err
	}
	if role.OrgWide() {
		projectID = ""
	} else {
		if projectID == "" {
			return nil, "", FieldError("projectId", "a %s key needs a project", role)
		}
		proj, err := s.Store.GetProject(ctx, projectID)
		if err != nil {
			return nil, "", err
		}
		if proj.OrgID != orgID {
			return nil, "", FieldError("projectId", "project %s is not in organization %s", projectID, orgID)
		}
	}
	k := &APIKey{ID: NewID(), OrgID: orgID, ProjectID: projectID, Role: role, Description: description,
		PublicKey: strings.ToLower(RandomHex(4)), CreatedAt: s.now()}
	private := RandomHex(16)
	k.SetSecret(private)
	if err := s.Store.CreateAPIKey(ctx, k); err != nil {
		return nil, "", err
	}
	s.Logger.Info("api key created", "keyId", k.ID, "publicKey", k.PublicKey, "role", k.Role, "org", orgID)
	return k, private, nil
}

// PrincipalOf returns the principal a key authenticates as.
func PrincipalOf(k *APIKey) *Principal {
	return &Principal{KeyID: k.ID, PublicKey: k.PublicKey, OrgID: k.OrgID, ProjectID: k.ProjectID, Role: k.Role}
}

// AuthenticateKey checks a public/private pair.
func (s *Service) AuthenticateKey(ctx context.Context, public, private string) (*Principal, error) {
	k, err := s.Store.GetAPIKeyByPublic(ctx, public)
	if err != nil || !k.CheckSecret(private) {
		return nil, &Error{Code: EUNAUTHORIZED, Message: "invalid API key"}
	}
	return PrincipalOf(k), nil
}

// DigestKey returns the key a Digest response is checked against.
func (s *Service) DigestKey(ctx context.Context, public string) (*APIKey, error) {
	k, err := s.Store.GetAPIKeyByPublic(ctx, public)
	if err != nil {
		return nil, &Error{Code: EUNAUTHORIZED, Message: "invalid API key"}
	}
	return k, nil
}

// IssueToken exchanges a key pair (OAuth client credentials, IAM password)
// for a bearer token valid for TokenTTL.
func (s *Service) IssueToken(ctx context.Context, public, private string) (string, *Token, error) {
	return s.IssueScopedToken(ctx, public, private, "")
}

// IssueScopedToken is IssueToken for a token scoped to project projectID
// ("" for none), which the key must be able to read: the token then acts on
// that project only, as a project key of the key's role would (ORG_OWNER
// and ORG_MEMBER as GROUP_OWNER, ORG_READ_ONLY as GROUP_READ_ONLY), and
// never on the organization. A key holds at most MaxTokensPerKey tokens:
// issuing one more revokes its oldest.
func (s *Service) IssueScopedToken(ctx context.Context, public, private, projectID string) (string, *Token, error) {
	p, err := s.AuthenticateKey(ctx, public, private)
	if err != nil {
		return "", nil, err
	}
	if projectID != "" {
		if _, err := s.Authorize(WithPrincipal(ctx, p), projectID, AccessRead); err != nil {
			return "", nil, err
		}
	}
	raw := "ferry_" + RandomHex(24)
	now := s.now()
	t := &Token{Hash: HashSecret(raw), KeyID: p.KeyID, ProjectID: projectID, CreatedAt: now, ExpiresAt: now.Add(s.TokenTTL)}
	if err := s.Store.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	_ = s.Store.DeleteExpiredTokens(ctx, now)
	if err := s.Store.TrimTokens(ctx, p.KeyID, s.maxTokens()); err != nil {
		return "", nil, fmt.Errorf("issue token: revoke the oldest: %w", err)
	}
	return raw, t, nil
}

func (s *Service) maxTokens() int {
	if s.MaxTokensPerKey <= 0 {
		return DefaultMaxTokensPerKey
	}
	return s.MaxTokensPerKey
}

// scoped narrows principal p to project projectID (a scoped token).
func scoped(p *Principal, projectID string) *Principal {
	if projectID == "" {
		return p
	}
	q := *p
	q.ProjectID = projectID
	switch p.Role {
	case RoleOrgOwner, RoleOrgMember:
		q.Role = RoleGroupOwner
	case RoleOrgReadOnly:
		q.Role = RoleGroupReadOnly
	}
	if !p.Role.OrgWide() && p.ProjectID != projectID {
		// A project key's token for another project: nothing.
		q.Role = ""
	}
	return &q
}

// AuthenticateToken checks a bearer token.
func (s *Service) AuthenticateToken(ctx context.Context, raw string) (*Principal, error) {
	t, err := s.Store.GetToken(ctx, HashSecret(raw))
	if err != nil || !s.now().Before(t.ExpiresAt) {
		return nil, &Error{Code: EUNAUTHORIZED, Message: "invalid or expired token"}
	}
	k, err := s.Store.GetAPIKey(ctx, t.KeyID)
	if err != nil {
		return nil, &Error{Code: EUNAUTHORIZED, Message: "the token's key was deleted"}
	}
	return scoped(PrincipalOf(k), t.ProjectID), nil
}

// ---- organizations and projects ----

// CreateOrg creates an organization (system only: the CLI bootstrap).
func (s *Service) CreateOrg(ctx context.Context, name string) (*Organization, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !p.System {
		return nil, &Error{Code: EFORBIDDEN, Message: "organizations are created by the ferry administrator (ferry orgs create)"}
	}
	if err := ValidateName("name", name); err != nil {
		return nil, err
	}
	o := &Organization{ID: NewID(), Name: name, CreatedAt: s.now()}
	return o, s.Store.CreateOrg(ctx, o)
}

// ListOrgs lists the organizations the caller belongs to.
func (s *Service) ListOrgs(ctx context.Context) ([]*Organization, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if p.System {
		return s.Store.ListOrgs(ctx)
	}
	o, err := s.Store.GetOrg(ctx, p.OrgID)
	if err != nil {
		return nil, err
	}
	return []*Organization{o}, nil
}

// GetOrg returns an organization the caller belongs to.
func (s *Service) GetOrg(ctx context.Context, id string) (*Organization, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if !ValidID(id) {
		return nil, &Error{Code: EINVALID, Field: "orgId", Reason: "INVALID_ORG_ID", Message: fmt.Sprintf("%q is not a valid 24-hex organization id", id)}
	}
	if !p.System && p.OrgID != id {
		return nil, &Error{Code: ENOTFOUND, Reason: "ORG_NOT_FOUND", Message: "no organization with id " + id}
	}
	return s.Store.GetOrg(ctx, id)
}

// CreateProject creates a project in orgID (ORG_OWNER or ORG_MEMBER).
func (s *Service) CreateProject(ctx context.Context, orgID, name string) (*Project, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(name) == "" || len(name) > 64 {
		return nil, FieldError("name", "is required (at most 64 characters)")
	}
	if err := ValidateName("name", name); err != nil {
		return nil, err
	}
	if orgID == "" && !p.System {
		orgID = p.OrgID
	}
	if !ValidID(orgID) {
		return nil, FieldError("orgId", "must be a 24-hex organization id")
	}
	if !p.System {
		if p.OrgID != orgID {
			return nil, &Error{Code: ENOTFOUND, Reason: "ORG_NOT_FOUND", Message: "no organization with id " + orgID}
		}
		if !p.Role.OrgWide() || p.Role.Access() < AccessWrite {
			return nil, &Error{Code: EFORBIDDEN, Reason: "INSUFFICIENT_ROLE", Message: fmt.Sprintf("the key's role %s cannot create projects", p.Role)}
		}
	}
	if _, err := s.Store.GetOrg(ctx, orgID); err != nil {
		return nil, err
	}
	proj := &Project{ID: NewID(), OrgID: orgID, Name: name, CreatedAt: s.now()}
	if err := s.Store.CreateProject(ctx, proj); err != nil {
		if ErrorCode(err) == ECONFLICT {
			return nil, &Error{Code: ECONFLICT, Reason: "GROUP_ALREADY_EXISTS", Field: "name", Message: fmt.Sprintf("a project named %q already exists in the organization", name)}
		}
		return nil, err
	}
	return proj, nil
}

// ListProjects lists the projects the caller can see; orgID narrows it.
func (s *Service) ListProjects(ctx context.Context, orgID string, offset, limit int) ([]*Project, int, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, 0, err
	}
	f := ProjectFilter{OrgID: orgID, Offset: offset, Limit: limit}
	if !p.System {
		if orgID != "" && orgID != p.OrgID {
			return nil, 0, &Error{Code: ENOTFOUND, Reason: "ORG_NOT_FOUND", Message: "no organization with id " + orgID}
		}
		f.OrgID = p.OrgID
		if !p.Role.OrgWide() {
			f.IDs = []string{p.ProjectID}
		}
	}
	return s.Store.ListProjects(ctx, f)
}

// GetProject returns a project the caller can read.
func (s *Service) GetProject(ctx context.Context, id string) (*Project, error) {
	return s.Authorize(ctx, id, AccessRead)
}

// GetProjectByName returns the caller's organization's project called name.
func (s *Service) GetProjectByName(ctx context.Context, name string) (*Project, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	notFound := &Error{Code: ENOTFOUND, Reason: "GROUP_NAME_NOT_FOUND", Message: fmt.Sprintf("no project named %q", name)}
	if p.System {
		return nil, &Error{Code: EINVALID, Message: "look a project up by name with an organization's key"}
	}
	proj, err := s.Store.GetProjectByName(ctx, p.OrgID, name)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, notFound
		}
		return nil, err
	}
	if p.AccessTo(proj) == AccessNone {
		return nil, notFound
	}
	return proj, nil
}

// RenameProject renames a project (its owner); names stay unique in the
// organization.
func (s *Service) RenameProject(ctx context.Context, id, name string) (*Project, error) {
	if strings.TrimSpace(name) == "" || len(name) > 64 {
		return nil, FieldError("name", "is required (at most 64 characters)")
	}
	if err := ValidateName("name", name); err != nil {
		return nil, err
	}
	if _, err := s.Authorize(ctx, id, AccessOwner); err != nil {
		return nil, err
	}
	proj, err := s.Store.UpdateProject(ctx, id, func(p *Project) error {
		p.Name = name
		return nil
	})
	if ErrorCode(err) == ECONFLICT {
		return nil, &Error{Code: ECONFLICT, Reason: "GROUP_ALREADY_EXISTS", Field: "name", Message: fmt.Sprintf("a project named %q already exists in the organization", name)}
	}
	return proj, err
}

// DeleteProject deletes a project with no running jobs (ORG_OWNER).
func (s *Service) DeleteProject(ctx context.Context, id string) error {
	if _, err := s.Authorize(ctx, id, AccessOwner); err != nil {
		return err
	}
	jobs, _, err := s.Store.ListMigrations(ctx, MigrationFilter{ProjectID: id, States: []State{StateRunning, StateCuttingOver, StatePaused, StateReleasing}})
	if err != nil {
		return err
	}
	if len(jobs) > 0 {
		return &Error{Code: ECONFLICT, Reason: "CANNOT_CLOSE_GROUP_ACTIVE_MIGRATIONS", Message: fmt.Sprintf("project %s still has %d migration(s) that are not finished; release them first", id, len(jobs))}
	}
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{ProjectID: id, States: []string{RunPending, RunInProgress}})
	if err != nil {
		return err
	}
	pipes, err := s.Store.ListPipelines(ctx, id)
	if err != nil {
		return err
	}
	active := 0
	for _, pl := range pipes {
		if pl.State == PipelineActive {
			active++
		}
	}
	if len(runs) > 0 || active > 0 {
		return &Error{Code: ECONFLICT, Reason: "CANNOT_CLOSE_GROUP_ACTIVE_PIPELINES", Message: fmt.Sprintf("project %s still has %d active pipeline(s) and %d running pipeline run(s); pause or delete them first", id, active, len(runs))}
	}
	return s.Store.DeleteProject(ctx, id)
}

// ---- endpoints ----

// CreateEndpoint registers a named endpoint ("cluster") in a project.
func (s *Service) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	if _, err := s.Authorize(ctx, e.ProjectID, AccessWrite); err != nil {
		return err
	}
	if strings.TrimSpace(e.Name) == "" {
		return FieldError("name", "is required")
	}
	if err := ValidateName("name", e.Name); err != nil {
		return err
	}
	if err := e.Validate("endpoint"); err != nil {
		return err
	}
	e.ID = NewID()
	e.CreatedAt = s.now()
	return s.Store.CreateEndpoint(ctx, e)
}

// GetEndpoint returns a project's endpoint by id or name.
func (s *Service) GetEndpoint(ctx context.Context, projectID, idOrName string) (*Endpoint, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	var e *Endpoint
	var err error
	if ValidID(idOrName) {
		e, err = s.Store.GetEndpoint(ctx, idOrName)
		if err == nil && e.ProjectID != projectID {
			err = &Error{Code: ENOTFOUND, Message: "no endpoint " + idOrName}
		}
	} else {
		e, err = s.Store.GetEndpointByName(ctx, projectID, idOrName)
	}
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil, &Error{Code: ENOTFOUND, Reason: "CLUSTER_NOT_FOUND", Message: fmt.Sprintf("no endpoint %q in project %s", idOrName, projectID)}
		}
		return nil, err
	}
	return e, nil
}

// ListEndpoints lists a project's endpoints.
func (s *Service) ListEndpoints(ctx context.Context, projectID string) ([]*Endpoint, error) {
	if _, err := s.Authorize(ctx, projectID, AccessRead); err != nil {
		return nil, err
	}
	return s.Store.ListEndpoints(ctx, projectID)
}

// EndpointPatch lists the fields of an endpoint to change; nil leaves a
// field as it is. The kind cannot change.
type EndpointPatch struct {
	Name          *string
	Kind          *EngineKind
	Addrs         []string
	Username      *string
	Password      *string
	Database      *string
	TLS           *bool
	TLSSkipVerify *bool
	CACertPEM     *string
	Cluster       *bool
	Options       map[string]string
}

// UpdateEndpoint changes a registered endpoint. Jobs keep the copy of the
// endpoint they were created with: the change applies to jobs created after.
func (s *Service) UpdateEndpoint(ctx context.Context, projectID, idOrName string, patch EndpointPatch) (*Endpoint, error) {
	cur, err := s.GetEndpoint(ctx, projectID, idOrName)
	if err != nil {
		return nil, err
	}
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return nil, err
	}
	if patch.Kind != nil && *patch.Kind != cur.Kind {
		return nil, FieldError("kind", "cannot change (%s): register a new endpoint instead", cur.Kind)
	}
	if patch.Name != nil && strings.TrimSpace(*patch.Name) == "" {
		return nil, FieldError("name", "cannot be empty")
	}
	if patch.Name != nil {
		if err := ValidateName("name", *patch.Name); err != nil {
			return nil, err
		}
	}
	e, err := s.Store.UpdateEndpoint(ctx, cur.ID, func(e *Endpoint) error {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		setb := func(dst *bool, v *bool) {
			if v != nil {
				*dst = *v
			}
		}
		set(&e.Name, patch.Name)
		set(&e.Username, patch.Username)
		set(&e.Password, patch.Password)
		set(&e.Database, patch.Database)
		set(&e.CACertPEM, patch.CACertPEM)
		setb(&e.TLS, patch.TLS)
		setb(&e.TLSSkipVerify, patch.TLSSkipVerify)
		setb(&e.Cluster, patch.Cluster)
		if patch.Addrs != nil {
			e.Addrs = patch.Addrs
		}
		if patch.Options != nil {
			e.Options = patch.Options
		}
		return e.Validate("endpoint")
	})
	if ErrorCode(err) == ECONFLICT && patch.Name != nil {
		return nil, &Error{Code: ECONFLICT, Field: "name", Message: fmt.Sprintf("an endpoint named %q already exists in the project", *patch.Name)}
	}
	return e, err
}

// DeleteEndpoint removes a project's endpoint.
func (s *Service) DeleteEndpoint(ctx context.Context, projectID, idOrName string) error {
	e, err := s.GetEndpoint(ctx, projectID, idOrName)
	if err != nil {
		return err
	}
	if _, err := s.Authorize(ctx, projectID, AccessWrite); err != nil {
		return err
	}
	return s.Store.DeleteEndpoint(ctx, e.ID)
}
