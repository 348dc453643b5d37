package ferry

import (
	"context"
	"fmt"
)

// requireOrgOwner checks that the caller owns orgID (or is the system).
func requireOrgOwner(ctx context.Context, orgID string) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	if !ValidID(orgID) {
		return &Error{Code: EINVALID, Field: "orgId", Reason: "INVALID_ORG_ID", Message: fmt.Sprintf("%q is not a valid 24-hex organization id", orgID)}
	}
	if p.System {
		return nil
	}
	if p.OrgID != orgID {
		return &Error{Code: ENOTFOUND, Reason: "ORG_NOT_FOUND", Message: "no organization with id " + orgID}
	}
	if p.Role != RoleOrgOwner {
		return &Error{Code: EFORBIDDEN, Reason: "INSUFFICIENT_ROLE", Message: fmt.Sprintf("the key's role %s cannot manage the organization's API keys (ORG_OWNER only)", p.Role)}
	}
	return nil
}

// ListAPIKeys lists an organization's API keys (ORG_OWNER). An APIKey
// carries only hashes of its private key, and never serializes them.
func (s *Service) ListAPIKeys(ctx context.Context, orgID string) ([]*APIKey, error) {
	if err := requireOrgOwner(ctx, orgID); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetOrg(ctx, orgID); err != nil {
		return nil, err
	}
	return s.Store.ListAPIKeys(ctx, orgID)
}

// DeleteAPIKey deletes one of an organization's API keys (ORG_OWNER); its
// bearer tokens stop working with it.
func (s *Service) DeleteAPIKey(ctx context.Context, orgID, keyID string) error {
	if err := requireOrgOwner(ctx, orgID); err != nil {
		return err
	}
	notFound := &Error{Code: ENOTFOUND, Reason: "API_KEY_NOT_FOUND", Message: fmt.Sprintf("no API key with id %s in organization %s", keyID, orgID)}
	if !ValidID(keyID) {
		return &Error{Code: EINVALID, Field: "apiUserId", Reason: "INVALID_API_KEY_ID", Message: fmt.Sprintf("%q is not a valid 24-hex API key id", keyID)}
	}
	k, err := s.Store.GetAPIKey(ctx, keyID)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return notFound
		}
		return err
	}
	if k.OrgID != orgID {
		return notFound
	}
	if err := s.Store.DeleteAPIKey(ctx, keyID); err != nil {
		return err
	}
	s.Logger.Info("api key deleted", "keyId", k.ID, "publicKey", k.PublicKey, "org", orgID)
	return nil
}

// ListAgents lists the migration hosts that have announced themselves. Any
// authenticated caller may see them (they are shared by all projects).
func (s *Service) ListAgents(ctx context.Context) ([]*AgentInfo, error) {
	if _, err := principal(ctx); err != nil {
		return nil, err
	}
	return s.Store.ListAgents(ctx)
}
