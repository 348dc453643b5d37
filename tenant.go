package ferry

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"time"
)

// Organization owns projects and API keys.
type Organization struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Project (Atlas: group; OMS/DCS: project) is the tenant every job lives in.
type Project struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"orgId"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

// Role is an API key's role, as Atlas names them.
type Role string

const (
	RoleOrgOwner      Role = "ORG_OWNER"
	RoleOrgMember     Role = "ORG_MEMBER"
	RoleOrgReadOnly   Role = "ORG_READ_ONLY"
	RoleGroupOwner    Role = "GROUP_OWNER"
	RoleGroupReadOnly Role = "GROUP_READ_ONLY"
)

// Roles lists every role.
var Roles = []Role{RoleOrgOwner, RoleOrgMember, RoleOrgReadOnly, RoleGroupOwner, RoleGroupReadOnly}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// OrgWide reports whether the role applies to every project of the
// organization (ORG_*) rather than to one project (GROUP_*).
func (r Role) OrgWide() bool {
	return r == RoleOrgOwner || r == RoleOrgMember || r == RoleOrgReadOnly
}

// Access levels a role grants on a project it can see.
type Access int

const (
	AccessNone   Access = iota
	AccessRead          // read jobs, runs, progress
	AccessMember        // read, plus what Atlas reserves for ORG_MEMBER (live migration reads)
	AccessWrite         // create, change and delete jobs
	AccessOwner         // manage the organization: projects, keys
)

// Access returns what r grants on a project it covers.
//
//	ORG_OWNER: owner; ORG_MEMBER: member (reads everything, writes jobs);
//	ORG_READ_ONLY: read; GROUP_OWNER: write on its project; GROUP_READ_ONLY: read.
func (r Role) Access() Access {
	switch r {
	case RoleOrgOwner:
		return AccessOwner
	case RoleOrgMember:
		return AccessWrite
	case RoleGroupOwner:
		return AccessWrite
	case RoleOrgReadOnly, RoleGroupReadOnly:
		return AccessRead
	}
	return AccessNone
}

// APIKey is a programmatic key pair. The private key is shown once at
// creation; only hashes of it are stored.
type APIKey struct {
	ID          string `json:"id"`
	OrgID       string `json:"orgId"`
	ProjectID   string `json:"projectId,omitempty"` // for GROUP_* roles
	PublicKey   string `json:"publicKey"`
	Role        Role   `json:"role"`
	Description string `json:"description,omitempty"`
	// SecretHash is hex(sha256(private key)), used by bearer/token flows.
	SecretHash string `json:"-"`
	// DigestHA1 is hex(md5(public:realm:private)), what HTTP Digest needs
	// to check a response without knowing the private key.
	DigestHA1 string `json:"-"`
	// SigningState is what AK/SK (SDK-HMAC-SHA256) signing checks against:
	// the key's HMAC-SHA256 states (see HMACSigningState), not the key.
	SigningState string    `json:"-"`
	CreatedAt    time.Time `json:"createdAt"`
}

// DigestRealm is the realm of ferry's HTTP Digest authentication.
const DigestRealm = "ferry"

// SetSecret stores the hashes of the private key on k.
func (k *APIKey) SetSecret(private string) {
	k.SecretHash = HashSecret(private)
	h := md5.Sum([]byte(k.PublicKey + ":" + DigestRealm + ":" + private))
	k.DigestHA1 = hex.EncodeToString(h[:])
	k.SigningState = HMACSigningState(private)
}

// CheckSecret reports whether private is k's private key.
func (k *APIKey) CheckSecret(private string) bool {
	return subtle.ConstantTimeCompare([]byte(HashSecret(private)), []byte(k.SecretHash)) == 1
}

// HashSecret returns hex(sha256(s)).
func HashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// Token is a bearer token issued by ferry (Atlas OAuth client credentials,
// DCS X-Auth-Token). Only its hash is stored.
type Token struct {
	Hash  string `json:"-"`
	KeyID string `json:"keyId"`
	// ProjectID is the project the token was issued for (an IAM project
	// scope), "" for none: a scoped token acts only on that project.
	ProjectID string    `json:"projectId,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
	CreatedAt time.Time `json:"createdAt"`
}

// Principal is the authenticated caller of a request.
type Principal struct {
	KeyID     string
	PublicKey string
	OrgID     string
	ProjectID string // set for GROUP_* keys
	Role      Role
	// System marks the in-process caller (CLI bootstrap, agents): all access.
	System bool
}

// SystemPrincipal has every right; it is used by the process itself.
var SystemPrincipal = &Principal{System: true, Role: RoleOrgOwner}

// AccessTo returns the access p has on project.
func (p *Principal) AccessTo(project *Project) Access {
	if p == nil || project == nil {
		return AccessNone
	}
	if p.System {
		return AccessOwner
	}
	if project.OrgID != p.OrgID {
		return AccessNone
	}
	if !p.Role.OrgWide() && p.ProjectID != project.ID {
		return AccessNone
	}
	return p.Role.Access()
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
