package ferry

import (
	"context"
	"fmt"
	"sort"
)

// MigrationProject returns the project of migration id when the caller can
// act on it at level need. It serves APIs whose paths name a job but no
// tenant (OMS: a project id is the job's id): a job the caller cannot see,
// or a deleted one, is ENOTFOUND as if it did not exist.
func (s *Service) MigrationProject(ctx context.Context, id string, need Access) (string, error) {
	if _, err := principal(ctx); err != nil {
		return "", err
	}
	notFound := &Error{Code: ENOTFOUND, Reason: "MIGRATION_NOT_FOUND", Message: fmt.Sprintf("no migration with id %s", id)}
	if !ValidID(id) {
		return "", notFound
	}
	m, err := s.Store.GetMigration(ctx, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return "", notFound
		}
		return "", err
	}
	if m.State == StateDeleted {
		return "", notFound
	}
	if _, err := s.Authorize(ctx, m.ProjectID, need); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return "", notFound
		}
		return "", err
	}
	return m.ProjectID, nil
}

// EndpointProject returns the project of the registered endpoint id when the
// caller can read it (ENOTFOUND otherwise), so that a job created from
// registered endpoints can find its tenant from them.
func (s *Service) EndpointProject(ctx context.Context, id string) (string, error) {
	if _, err := principal(ctx); err != nil {
		return "", err
	}
	notFound := &Error{Code: ENOTFOUND, Reason: "ENDPOINT_NOT_FOUND", Message: fmt.Sprintf("no endpoint with id %s", id)}
	if !ValidID(id) {
		return "", notFound
	}
	e, err := s.Store.GetEndpoint(ctx, id)
	if err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return "", notFound
		}
		return "", err
	}
	if _, err := s.Authorize(ctx, e.ProjectID, AccessRead); err != nil {
		if ErrorCode(err) == ENOTFOUND {
			return "", notFound
		}
		return "", err
	}
	return e.ProjectID, nil
}

// ListVisibleMigrations is ListMigrations over every project the caller can
// see (f.ProjectID is ignored): oldest first, paged by f.Offset and f.Limit.
func (s *Service) ListVisibleMigrations(ctx context.Context, f MigrationFilter, need Access) ([]*Migration, int, error) {
	var all []*Migration
	for offset := 0; ; {
		projects, total, err := s.ListProjects(ctx, "", offset, 100)
		if err != nil {
			return nil, 0, err
		}
		for _, p := range projects {
			pf := f
			pf.ProjectID, pf.Offset, pf.Limit = p.ID, 0, 0
			jobs, _, err := s.ListMigrations(ctx, pf, need)
			if err != nil {
				if c := ErrorCode(err); c == EFORBIDDEN || c == ENOTFOUND {
					continue
				}
				return nil, 0, err
			}
			all = append(all, jobs...)
		}
		offset += len(projects)
		if len(projects) == 0 || offset >= total {
			break
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].CreatedAt.Before(all[j].CreatedAt) })
	total := len(all)
	if f.Offset > 0 {
		if f.Offset >= len(all) {
			all = nil
		} else {
			all = all[f.Offset:]
		}
	}
	if f.Limit > 0 && len(all) > f.Limit {
		all = all[:f.Limit]
	}
	return all, total, nil
}
