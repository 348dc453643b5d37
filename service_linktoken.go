package ferry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// LinkTokenDescription marks the API key behind an organization's
// live-migration link token.
const LinkTokenDescription = "ferry live-migration link token"

// linkTokenPrefix starts every link token.
const linkTokenPrefix = "ferry-link-v1."

// LinkToken is what a link token carries: an ORG_MEMBER API key of the
// organization, so that the source side of a push migration can create and
// watch live migrations in it. It is shown once, when created.
type LinkToken struct {
	OrgID      string `json:"orgId"`
	PublicKey  string `json:"publicKey"`
	PrivateKey string `json:"privateKey"`
}

// ParseLinkToken decodes a link token.
func ParseLinkToken(s string) (*LinkToken, error) {
	raw, ok := strings.CutPrefix(s, linkTokenPrefix)
	bad := &Error{Code: EINVALID, Field: "linkToken", Reason: "INVALID_LINK_TOKEN", Message: "not a ferry link token"}
	if !ok {
		return nil, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		return nil, bad
	}
	var t LinkToken
	if json.Unmarshal(b, &t) != nil || !ValidID(t.OrgID) || t.PublicKey == "" || t.PrivateKey == "" {
		return nil, bad
	}
	return &t, nil
}

// CreateLinkToken creates the organization's link token (an ORG_OWNER's
// call), replacing the one it had. IP access lists are not enforced by
// ferry's keys, so a non-empty accessList is refused.
func (s *Service) CreateLinkToken(ctx context.Context, orgID string, accessList []string) (string, error) {
	if len(accessList) > 0 {
		return "", &Error{Code: ENOTIMPLEMENTED, Field: "accessListIps", Reason: "NOT_SUPPORTED",
			Message: "ferry's API keys have no IP access lists, so a link token cannot be limited to addresses",
			Advice:  "leave accessListIps empty and restrict access to ferry in the network"}
	}
	if err := requireOrgOwner(ctx, orgID); err != nil {
		return "", err
	}
	if err := s.DeleteLinkTokens(ctx, orgID); err != nil {
		return "", err
	}
	k, priv, err := s.CreateAPIKey(ctx, orgID, "", RoleOrgMember, LinkTokenDescription)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(LinkToken{OrgID: orgID, PublicKey: k.PublicKey, PrivateKey: priv})
	if err != nil {
		return "", err
	}
	return linkTokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// DeleteLinkTokens revokes the organization's link token (its key); an
// organization without one is not an error.
func (s *Service) DeleteLinkTokens(ctx context.Context, orgID string) error {
	keys, err := s.ListAPIKeys(ctx, orgID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if k.Description == LinkTokenDescription {
			if err := s.DeleteAPIKey(ctx, orgID, k.ID); err != nil {
				return err
			}
		}
	}
	return nil
}

// AvailableProject is a project a live migration can go to: its MongoDB
// endpoints and the migration hosts (agents) that can run it.
type AvailableProject struct {
	Project   *Project
	Endpoints []*Endpoint
	Hosts     []string
}

// AvailableProjects lists the organization's projects the caller can see,
// with their MongoDB endpoints and the agents.
func (s *Service) AvailableProjects(ctx context.Context, orgID string) ([]AvailableProject, error) {
	agents, err := s.ListAgents(ctx)
	if err != nil {
		return nil, err
	}
	hosts := []string{}
	for _, a := range agents {
		hosts = append(hosts, a.ID)
	}
	var out []AvailableProject
	for offset := 0; ; {
		projects, total, err := s.ListProjects(ctx, orgID, offset, 100)
		if err != nil {
			return nil, err
		}
		for _, p := range projects {
			eps, err := s.ListEndpoints(ctx, p.ID)
			if err != nil {
				return nil, err
			}
			ap := AvailableProject{Project: p, Hosts: hosts}
			for _, e := range eps {
				if e.Kind == KindMongoDB {
					ap.Endpoints = append(ap.Endpoints, e)
				}
			}
			out = append(out, ap)
		}
		offset += len(projects)
		if len(projects) == 0 || offset >= total {
			break
		}
	}
	return out, nil
}
