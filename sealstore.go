package ferry

import (
	"context"
	"fmt"
	"time"
)

// SealStore returns st with the secrets of endpoints and jobs encrypted at
// rest by box: an endpoint's password, its options whose name says they
// are secret (password, secret, key, token, credential) or whose value is
// a connection string with credentials, the same fields of a job's source
// and target, and a job's secret-named engine options. Writes seal them,
// reads open them; a value sealed with another key or damaged fails the
// read with a clear error. Values stored before encryption was turned on
// (plaintext) are read as they are; MigrateSecrets rewrites them sealed.
//
// It lives in the core (stdlib crypto only) so that every store adapter
// gets it the same way, and the adapters never see a plaintext secret.
func SealStore(st Store, box SecretBox) Store {
	if box == nil {
		return st
	}
	return &sealedStore{Store: st, box: box}
}

// UnwrapStore returns the store a SealStore wraps (st itself otherwise).
func UnwrapStore(st Store) Store {
	if s, ok := st.(*sealedStore); ok {
		return s.Store
	}
	return st
}

type sealedStore struct {
	Store
	box SecretBox
}

// Ping passes a health check through to the wrapped store.
func (s *sealedStore) Ping(ctx context.Context) error {
	if p, ok := s.Store.(interface{ Ping(context.Context) error }); ok {
		return p.Ping(ctx)
	}
	return nil
}

// secretField calls fn on each secret string of e (a pointer to it).
func endpointSecrets(e *Endpoint, fn func(what string, v *string) error) error {
	if err := fn("password", &e.Password); err != nil {
		return err
	}
	if len(e.Options) == 0 {
		return nil
	}
	o := make(map[string]string, len(e.Options)) // never change a caller's map
	for k, v := range e.Options {
		if v != "" && (isSecretOption(k) || IsSealed(v) || RedactURI(v) != v) {
			if err := fn("options."+k, &v); err != nil {
				return err
			}
		}
		o[k] = v
	}
	e.Options = o
	return nil
}

func migrationSecrets(m *Migration, fn func(what string, v *string) error) error {
	if err := endpointSecrets(&m.Source, func(w string, v *string) error { return fn("source."+w, v) }); err != nil {
		return err
	}
	if err := endpointSecrets(&m.Target, func(w string, v *string) error { return fn("target."+w, v) }); err != nil {
		return err
	}
	if len(m.Options.Extra) == 0 {
		return nil
	}
	x := make(map[string]string, len(m.Options.Extra))
	for k, v := range m.Options.Extra {
		if v != "" && (isSecretOption(k) || IsSealed(v)) {
			if err := fn("options.extra."+k, &v); err != nil {
				return err
			}
		}
		x[k] = v
	}
	m.Options.Extra = x
	return nil
}

func (s *sealedStore) sealer(what string) func(string, *string) error {
	return func(field string, v *string) error {
		if *v == "" {
			return nil
		}
		c, err := s.box.Seal(*v)
		if err != nil {
			return fmt.Errorf("%s %s: %w", what, field, err)
		}
		*v = c
		return nil
	}
}

func (s *sealedStore) opener(what string) func(string, *string) error {
	return func(field string, v *string) error {
		if !IsSealed(*v) {
			return nil // stored before encryption was on: MigrateSecrets seals it
		}
		p, err := s.box.Open(*v)
		if err != nil {
			return &Error{Code: EINTERNAL, Reason: "SECRET_UNREADABLE", Message: fmt.Sprintf("%s %s: %v", what, field, err),
				Advice: "start ferry with the secret key file the store was encrypted with (--secret-key-file)"}
		}
		*v = p
		return nil
	}
}

func (s *sealedStore) openEndpoint(e *Endpoint) error {
	if e == nil {
		return nil
	}
	return endpointSecrets(e, s.opener("endpoint "+e.ID))
}

func (s *sealedStore) openMigration(m *Migration) error {
	if m == nil {
		return nil
	}
	return migrationSecrets(m, s.opener("migration "+m.ID))
}

func (s *sealedStore) CreateEndpoint(ctx context.Context, e *Endpoint) error {
	c := *e
	if err := endpointSecrets(&c, s.sealer("endpoint")); err != nil {
		return err
	}
	if err := s.Store.CreateEndpoint(ctx, &c); err != nil {
		return err
	}
	// What the store filled in (id, times), with the caller's secrets.
	pw, opts := e.Password, e.Options
	*e = c
	e.Password, e.Options = pw, opts
	return nil
}

func (s *sealedStore) GetEndpoint(ctx context.Context, id string) (*Endpoint, error) {
	e, err := s.Store.GetEndpoint(ctx, id)
	if err != nil {
		return nil, err
	}
	return e, s.openEndpoint(e)
}

func (s *sealedStore) GetEndpointByName(ctx context.Context, projectID, name string) (*Endpoint, error) {
	e, err := s.Store.GetEndpointByName(ctx, projectID, name)
	if err != nil {
		return nil, err
	}
	return e, s.openEndpoint(e)
}

func (s *sealedStore) ListEndpoints(ctx context.Context, projectID string) ([]*Endpoint, error) {
	es, err := s.Store.ListEndpoints(ctx, projectID)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if err := s.openEndpoint(e); err != nil {
			return nil, err
		}
	}
	return es, nil
}

func (s *sealedStore) UpdateEndpoint(ctx context.Context, id string, fn func(*Endpoint) error) (*Endpoint, error) {
	e, err := s.Store.UpdateEndpoint(ctx, id, func(e *Endpoint) error {
		if err := s.openEndpoint(e); err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
		return endpointSecrets(e, s.sealer("endpoint "+e.ID))
	})
	if err != nil {
		return nil, err
	}
	return e, s.openEndpoint(e)
}

func (s *sealedStore) CreateMigration(ctx context.Context, m *Migration) error {
	c := *m
	if err := migrationSecrets(&c, s.sealer("migration")); err != nil {
		return err
	}
	if err := s.Store.CreateMigration(ctx, &c); err != nil {
		return err
	}
	src, dst, extra := m.Source, m.Target, m.Options.Extra
	*m = c
	m.Source, m.Target, m.Options.Extra = src, dst, extra
	return nil
}

func (s *sealedStore) GetMigration(ctx context.Context, id string) (*Migration, error) {
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		return nil, err
	}
	return m, s.openMigration(m)
}

func (s *sealedStore) ListMigrations(ctx context.Context, f MigrationFilter) ([]*Migration, int, error) {
	ms, n, err := s.Store.ListMigrations(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	for _, m := range ms {
		if err := s.openMigration(m); err != nil {
			return nil, 0, err
		}
	}
	return ms, n, nil
}

func (s *sealedStore) UpdateMigration(ctx context.Context, id string, fn func(*Migration) error) (*Migration, error) {
	m, err := s.Store.UpdateMigration(ctx, id, func(m *Migration) error {
		if err := s.openMigration(m); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		return migrationSecrets(m, s.sealer("migration "+m.ID))
	})
	if err != nil {
		return nil, err
	}
	return m, s.openMigration(m)
}

func (s *sealedStore) ClaimMigration(ctx context.Context, agentID string, now time.Time, ttl time.Duration) (*Migration, error) {
	m, err := s.Store.ClaimMigration(ctx, agentID, now, ttl)
	if err != nil || m == nil {
		return m, err
	}
	return m, s.openMigration(m)
}

// MigrateSecrets rewrites, sealed, every endpoint and job of st (a
// SealStore) that still holds a plaintext secret, and checks that every
// sealed one opens with this key: a value sealed with another key or
// damaged is an error naming the row (ferry must not start on it). It
// returns how many rows it rewrote. Run it when the service starts.
func MigrateSecrets(ctx context.Context, st Store) (int, error) {
	s, ok := st.(*sealedStore)
	if !ok {
		return 0, fmt.Errorf("migrate secrets: the store has no secret key")
	}
	inner := s.Store
	orgs, err := inner.ListOrgs(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate secrets: %w", err)
	}
	n := 0
	check := func(what string) func(string, *string) error {
		open := s.opener(what)
		return func(field string, v *string) error {
			if !IsSealed(*v) {
				return nil
			}
			c := *v
			return open(field, &c)
		}
	}
	plain := false
	seal := func(what string) func(string, *string) error {
		sl := s.sealer(what)
		return func(field string, v *string) error {
			if *v == "" || IsSealed(*v) {
				return nil
			}
			return sl(field, v)
		}
	}
	hasPlain := func(field string, v *string) error {
		if *v != "" && !IsSealed(*v) {
			plain = true
		}
		return nil
	}
	for _, o := range orgs {
		projs, _, err := inner.ListProjects(ctx, ProjectFilter{OrgID: o.ID})
		if err != nil {
			return n, fmt.Errorf("migrate secrets: %w", err)
		}
		for _, p := range projs {
			eps, err := inner.ListEndpoints(ctx, p.ID)
			if err != nil {
				return n, fmt.Errorf("migrate secrets: %w", err)
			}
			for _, e := range eps {
				plain = false
				what := "endpoint " + e.ID
				if err := endpointSecrets(e, check(what)); err != nil {
					return n, fmt.Errorf("migrate secrets: %w", err)
				}
				if endpointSecrets(e, hasPlain); !plain {
					continue
				}
				if _, err := inner.UpdateEndpoint(ctx, e.ID, func(e *Endpoint) error { return endpointSecrets(e, seal(what)) }); err != nil {
					return n, fmt.Errorf("migrate secrets: %w", err)
				}
				n++
			}
			ms, _, err := inner.ListMigrations(ctx, MigrationFilter{ProjectID: p.ID})
			if err != nil {
				return n, fmt.Errorf("migrate secrets: %w", err)
			}
			for _, m := range ms {
				plain = false
				what := "migration " + m.ID
				if err := migrationSecrets(m, check(what)); err != nil {
					return n, fmt.Errorf("migrate secrets: %w", err)
				}
				if migrationSecrets(m, hasPlain); !plain {
					continue
				}
				if _, err := inner.UpdateMigration(ctx, m.ID, func(m *Migration) error { return migrationSecrets(m, seal(what)) }); err != nil {
					return n, fmt.Errorf("migrate secrets: %w", err)
				}
				n++
			}
		}
	}
	return n, nil
}
