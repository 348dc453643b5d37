package dcs

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

// task loads the path's task: one of the project's Redis jobs, or 404.
func (h *handler) task(ctx context.Context, projectID, id string, need ferry.Access) (*ferry.Migration, error) {
	m, err := h.svc.GetMigration(ctx, projectID, id, need)
	if err != nil {
		if ferry.ErrorCode(err) == ferry.ENOTFOUND && ferry.AsError(err).Reason == "MIGRATION_NOT_FOUND" {
			return nil, taskNotFound(id)
		}
		return nil, err
	}
	if m.Engine != ferry.KindRedis {
		return nil, taskNotFound(id)
	}
	return m, nil
}

func taskNotFound(id string) error {
	return &ferry.Error{Code: ferry.ENOTFOUND, Reason: "MIGRATION_TASK_NOT_FOUND", Message: fmt.Sprintf("The migration task %s does not exist.", id)}
}

// createResponse is DCS's CreateMigrationTaskResponse.
type createResponse struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// create makes the task and starts it at once, as DCS does.
func (h *handler) create(ctx context.Context, r *http.Request) (int, any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return 0, nil, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("The request body must be JSON (Content-Type: application/json), not %q.", ct)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return 0, nil, httpauth.BodyError(err, MaxBodyBytes)
	}
	m, err := parseCreate(body, r.PathValue("project_id"))
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.CreateMigration(ctx, m, true); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, createResponse{ID: m.ID, Name: m.Name, Status: Status(m)}, nil
}

// listResponse is DCS's ListMigrationTaskResponse.
type listResponse struct {
	Count          int        `json:"count"`
	MigrationTasks []listItem `json:"migration_tasks"`
}

// list pages the project's Redis tasks (offset: records to skip; limit:
// page size). name filters by a case-insensitive substring of the task name.
func (h *handler) list(ctx context.Context, r *http.Request) (int, any, error) {
	offset, limit, name, err := listParams(r.URL.Query())
	if err != nil {
		return 0, nil, err
	}
	f := ferry.MigrationFilter{ProjectID: r.PathValue("project_id"), Engine: ferry.KindRedis, Offset: offset, Limit: limit}
	if name != "" {
		// The store has no name filter: read the project's Redis jobs and
		// page the matches here.
		f.Offset, f.Limit = 0, 0
	}
	jobs, total, err := h.svc.ListMigrations(ctx, f, ferry.AccessRead)
	if err != nil {
		return 0, nil, err
	}
	if name != "" {
		var match []*ferry.Migration
		for _, m := range jobs {
			if strings.Contains(strings.ToLower(m.Name), name) {
				match = append(match, m)
			}
		}
		total = len(match)
		jobs = match[min(offset, len(match)):min(offset+limit, len(match))]
	}
	out := listResponse{Count: total, MigrationTasks: make([]listItem, 0, len(jobs))}
	for _, m := range jobs {
		out.MigrationTasks = append(out.MigrationTasks, listItemOf(m))
	}
	return http.StatusOK, out, nil
}

// listParams reads a list's query: offset (records to skip), limit (page
// size) and name (a case-insensitive substring, lower-cased).
func listParams(q url.Values) (offset, limit int, name string, err error) {
	if offset, err = intParam(q.Get("offset"), "offset", 0, 0, 1<<30); err != nil {
		return 0, 0, "", err
	}
	if limit, err = intParam(q.Get("limit"), "limit", DefaultLimit, 1, MaxLimit); err != nil {
		return 0, 0, "", err
	}
	return offset, limit, strings.ToLower(q.Get("name")), nil
}

func intParam(s, name string, def, lo, hi int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, ferry.FieldError(name, "must be an integer between %d and %d, not %q.", lo, hi, s)
	}
	return n, nil
}

func (h *handler) show(ctx context.Context, r *http.Request) (int, any, error) {
	m, err := h.task(ctx, r.PathValue("project_id"), r.PathValue("task_id"), ferry.AccessRead)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, taskOf(m), nil
}

// stop stops a task: DCS's stopped task is TERMINATED and can be restarted,
// which is ferry's pause (resumable from its checkpoint). It answers the
// task, as DCS's StopMigrationTaskResponse does.
func (h *handler) stop(ctx context.Context, r *http.Request) (int, any, error) {
	projectID := r.PathValue("project_id")
	m, err := h.task(ctx, projectID, r.PathValue("task_id"), ferry.AccessRead)
	if err != nil {
		return 0, nil, err
	}
	if m, err = h.svc.PauseMigration(ctx, projectID, m.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, taskOf(m), nil
}

func (h *handler) stats(ctx context.Context, r *http.Request) (int, any, error) {
	m, err := h.task(ctx, r.PathValue("project_id"), r.PathValue("task_id"), ferry.AccessRead)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, statsOf(m), nil
}

// deleteResponse is DCS's DeleteMigrationTaskResponse: the ids deleted.
type deleteResponse struct {
	TaskIDList []string `json:"task_id_list"`
}

// batchDelete deletes each task of the list (a running one must be stopped
// first). It answers the ids it deleted; when it deleted none, the first
// failure is the answer.
func (h *handler) batchDelete(ctx context.Context, r *http.Request) (int, any, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return 0, nil, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("The request body must be JSON (Content-Type: application/json), not %q.", ct)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return 0, nil, httpauth.BodyError(err, MaxBodyBytes)
	}
	ids, err := parseDelete(body)
	if err != nil {
		return 0, nil, err
	}
	projectID := r.PathValue("project_id")
	if _, err := h.svc.Authorize(ctx, projectID, ferry.AccessWrite); err != nil {
		return 0, nil, err
	}
	out := deleteResponse{TaskIDList: []string{}}
	var first error
	for _, id := range ids {
		err := func() error {
			if _, err := h.task(ctx, projectID, id, ferry.AccessWrite); err != nil {
				return err
			}
			return h.svc.DeleteMigration(ctx, projectID, id)
		}()
		if err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		out.TaskIDList = append(out.TaskIDList, id)
	}
	if len(out.TaskIDList) == 0 {
		return 0, nil, first
	}
	return http.StatusOK, out, nil
}
