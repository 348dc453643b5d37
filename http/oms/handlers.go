package oms

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// tenant returns the ferry project an OMS request acts on: the query
// parameter projectId (alias groupId), else bodyProject (create), else the
// caller key's own project (GROUP_* keys). ORG_* keys must name it.
func tenant(ctx context.Context, r *http.Request, bodyProject string) (string, error) {
	q := r.URL.Query()
	id := q.Get("projectId")
	if g := q.Get("groupId"); g != "" {
		if id != "" && id != g {
			return "", ferry.FieldError("groupId", "differs from projectId; give one")
		}
		id = g
	}
	if bodyProject != "" {
		if id != "" && id != bodyProject {
			return "", ferry.FieldError("projectId", "the query's projectId differs from the body's")
		}
		id = bodyProject
	}
	if id != "" {
		if !ferry.ValidID(id) {
			return "", &ferry.Error{Code: ferry.EINVALID, Field: "projectId", Reason: "INVALID_PROJECT_ID", Message: fmt.Sprintf("%q is not a valid 24-hex ferry project id", id)}
		}
		return id, nil
	}
	if p := ferry.PrincipalFrom(ctx); p != nil && p.ProjectID != "" {
		return p.ProjectID, nil
	}
	return "", &ferry.Error{Code: ferry.EINVALID, Field: "projectId", Reason: "PROJECT_REQUIRED",
		Message: "an organization key must name the ferry project the OMS call acts on",
		Advice:  "add ?projectId=<24-hex ferry project id> (or the body field projectId on create), or use a project (GROUP_*) key"}
}

// migration loads the job of the path for OMS: one of the tenant's mysql
// jobs, or NOT_FOUND.
func (h *handler) migration(ctx context.Context, r *http.Request, need ferry.Access) (*ferry.Migration, string, error) {
	return h.project(ctx, r, r.PathValue("id"), need)
}

// project loads the OMS project (ferry migration) id. The ferry project it
// belongs to is the query's projectId (alias groupId) when given, else the
// job's own: OMS names a project by its id alone, so an ORG_* key needs no
// tenant parameter.
func (h *handler) project(ctx context.Context, r *http.Request, id string, need ferry.Access) (*ferry.Migration, string, error) {
	var projectID string
	var err error
	if q := r.URL.Query(); q.Get("projectId") != "" || q.Get("groupId") != "" {
		projectID, err = tenant(ctx, r, "")
	} else {
		projectID, err = h.svc.MigrationProject(ctx, id, need)
	}
	if err != nil {
		return nil, "", err
	}
	m, err := h.svc.GetMigration(ctx, projectID, id, need)
	if err != nil {
		return nil, "", err
	}
	if m.Engine != ferry.KindMySQL {
		return nil, "", notFound(id)
	}
	return m, projectID, nil
}

func notFound(id string) error {
	return &ferry.Error{Code: ferry.ENOTFOUND, Reason: "PROJECT_NOT_FOUND", Message: fmt.Sprintf("no migration project %s", id)}
}

func (h *handler) create(ctx context.Context, r *http.Request) (any, *page, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return nil, nil, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("the body must be JSON (Content-Type: application/json), not %q", ct)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, nil, httpauth.BodyError(err, MaxBodyBytes)
	}
	req, m, err := parseCreate(body, "")
	if err != nil {
		return nil, nil, err
	}
	if m.ProjectID, err = tenant(ctx, r, req.ProjectID); err != nil {
		if fe := ferry.AsError(err); fe == nil || fe.Reason != "PROJECT_REQUIRED" || !ferry.ValidID(req.SourceEndpointID) {
			return nil, nil, err
		}
		// An ORG key creating from a registered endpoint: its project.
		if m.ProjectID, err = h.svc.EndpointProject(ctx, req.SourceEndpointID); err != nil {
			return nil, nil, err
		}
	}
	if err := h.svc.CreateMigration(ctx, m, false); err != nil {
		return nil, nil, err
	}
	// OMS answers the new project's id as data.
	return m.ID, nil, nil
}

func (h *handler) list(ctx context.Context, r *http.Request) (any, *page, error) {
	projectID, err := tenant(ctx, r, "")
	all := false
	if fe := ferry.AsError(err); fe != nil && fe.Reason == "PROJECT_REQUIRED" {
		all, err = true, nil // an ORG key naming no project: every project it can see
	}
	if err != nil {
		return nil, nil, err
	}
	number, size, states, err := listParams(r.URL.Query())
	if err != nil {
		return nil, nil, err
	}
	f := ferry.MigrationFilter{ProjectID: projectID, Engine: ferry.KindMySQL, Offset: (number - 1) * size, Limit: size, States: states}
	var jobs []*ferry.Migration
	var total int
	if all {
		jobs, total, err = h.svc.ListVisibleMigrations(ctx, f, ferry.AccessRead)
	} else {
		jobs, total, err = h.svc.ListMigrations(ctx, f, ferry.AccessRead)
	}
	if err != nil {
		return nil, nil, err
	}
	out := make([]projectView, 0, len(jobs))
	for _, m := range jobs {
		out = append(out, projectOf(m, false))
	}
	return out, &page{number: number, size: size, total: total}, nil
}

// listParams reads a list's query: pageNumber (1-based), pageSize and
// status (OMS statuses, repeated or comma separated) as ferry states.
func listParams(q url.Values) (number, size int, states []ferry.State, err error) {
	if number, err = intParam(q.Get("pageNumber"), "pageNumber", 1, 1, 1<<30); err != nil {
		return 0, 0, nil, err
	}
	if size, err = intParam(q.Get("pageSize"), "pageSize", DefaultPageSize, 1, MaxPageSize); err != nil {
		return 0, 0, nil, err
	}
	for _, v := range q["status"] {
		for _, st := range strings.Split(v, ",") {
			st = strings.TrimSpace(st)
			s, ok := statesOf[st]
			if !ok {
				return 0, 0, nil, ferry.FieldError("status", "unknown status %q (INIT, RUNNING, SUSPEND, FAILED, FINISHED, RELEASING, RELEASED, DELETED)", st)
			}
			states = append(states, s...)
		}
	}
	return number, size, states, nil
}

// intParam parses an optional integer query parameter within [min, max].
func intParam(s, name string, def, min, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min || n > max {
		return 0, ferry.FieldError(name, "must be an integer between %d and %d, not %q", min, max, s)
	}
	return n, nil
}

func (h *handler) detail(ctx context.Context, r *http.Request) (any, *page, error) {
	m, _, err := h.migration(ctx, r, ferry.AccessRead)
	if err != nil {
		return nil, nil, err
	}
	return projectOf(m, true), nil, nil
}

func (h *handler) progress(ctx context.Context, r *http.Request) (any, *page, error) {
	m, _, err := h.migration(ctx, r, ferry.AccessRead)
	if err != nil {
		return nil, nil, err
	}
	return progressOf(m), nil, nil
}

func (h *handler) steps(ctx context.Context, r *http.Request) (any, *page, error) {
	m, _, err := h.migration(ctx, r, ferry.AccessRead)
	if err != nil {
		return nil, nil, err
	}
	return stepsOf(m), nil, nil
}

// action runs a state change on the path's job; OMS answers data null.
func (h *handler) action(fn func(ctx context.Context, projectID, id string) (*ferry.Migration, error)) op {
	return func(ctx context.Context, r *http.Request) (any, *page, error) {
		m, projectID, err := h.migration(ctx, r, ferry.AccessRead)
		if err != nil {
			return nil, nil, err
		}
		if _, err := fn(ctx, projectID, m.ID); err != nil {
			return nil, nil, err
		}
		return nil, nil, nil
	}
}

func (h *handler) start(ctx context.Context, r *http.Request) (any, *page, error) {
	return h.action(h.svc.StartMigration)(ctx, r)
}

// stop suspends the project (SUSPEND): PauseMigration.
func (h *handler) stop(ctx context.Context, r *http.Request) (any, *page, error) {
	return h.action(h.svc.PauseMigration)(ctx, r)
}

func (h *handler) resume(ctx context.Context, r *http.Request) (any, *page, error) {
	return h.action(h.svc.ResumeMigration)(ctx, r)
}

func (h *handler) release(ctx context.Context, r *http.Request) (any, *page, error) {
	return h.action(h.svc.ReleaseMigration)(ctx, r)
}

func (h *handler) delete(ctx context.Context, r *http.Request) (any, *page, error) {
	return h.action(func(ctx context.Context, projectID, id string) (*ferry.Migration, error) {
		return nil, h.svc.DeleteMigration(ctx, projectID, id)
	})(ctx, r)
}
