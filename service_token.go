package ferry

import "context"

// RevokeToken revokes a bearer token issued to the key pair public/private
// (OAuth token revocation, RFC 7009). An unknown or expired token is not an
// error; a token issued to another key is EFORBIDDEN.
func (s *Service) RevokeToken(ctx context.Context, public, private, raw string) error {
	p, err := s.AuthenticateKey(ctx, public, private)
	if err != nil {
		return err
	}
	t, err := s.Store.GetToken(ctx, HashSecret(raw))
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return nil
		}
		return err
	}
	if t.KeyID != p.KeyID {
		return &Error{Code: EFORBIDDEN, Message: "the token was not issued to this client"}
	}
	return s.Store.DeleteToken(ctx, HashSecret(raw))
}
