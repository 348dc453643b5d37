package native

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// register lays out every route. The OpenAPI document (openapi.go) is
// written separately and a test checks the two agree.
func (h *Handler) register() {
	h.handlePublic("GET", "/api/v1/openapi.json", h.openAPI)

	h.handle("GET", "/api/v1/orgs", h.listOrgs)
	h.handle("GET", "/api/v1/orgs/{orgId}", h.getOrg)
	h.handle("GET", "/api/v1/orgs/{orgId}/api-keys", h.listAPIKeys)
	h.handle("POST", "/api/v1/orgs/{orgId}/api-keys", h.createAPIKey)
	h.handle("DELETE", "/api/v1/orgs/{orgId}/api-keys/{keyId}", h.deleteAPIKey)

	h.handle("GET", "/api/v1/projects", h.listProjects)
	h.handle("POST", "/api/v1/projects", h.createProject)
	h.handle("GET", "/api/v1/projects/{projectId}", h.getProject)
	h.handle("PATCH", "/api/v1/projects/{projectId}", h.renameProject)
	h.handle("DELETE", "/api/v1/projects/{projectId}", h.deleteProject)

	h.handle("GET", "/api/v1/projects/{projectId}/endpoints", h.listEndpoints)
	h.handle("POST", "/api/v1/projects/{projectId}/endpoints", h.createEndpoint)
	h.handle("GET", "/api/v1/projects/{projectId}/endpoints/{endpoint}", h.getEndpoint)
	h.handle("PATCH", "/api/v1/projects/{projectId}/endpoints/{endpoint}", h.updateEndpoint)
	h.handle("DELETE", "/api/v1/projects/{projectId}/endpoints/{endpoint}", h.deleteEndpoint)

	h.handle("GET", "/api/v1/projects/{projectId}/migrations", h.listMigrations)
	h.handle("POST", "/api/v1/projects/{projectId}/migrations", h.createMigration)
	h.handle("GET", "/api/v1/projects/{projectId}/migrations/{migrationId}", h.getMigration)
	h.handle("DELETE", "/api/v1/projects/{projectId}/migrations/{migrationId}", h.deleteMigration)
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/start", h.migrationAction(h.svc.StartMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/pause", h.migrationAction(h.svc.PauseMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/resume", h.migrationAction(h.svc.ResumeMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/cutover", h.migrationAction(h.svc.CutoverMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/verify", h.migrationAction(h.svc.VerifyMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/release", h.migrationAction(h.svc.ReleaseMigration))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/release-source", h.migrationAction(h.svc.ReleaseSource))
	h.handle("POST", "/api/v1/projects/{projectId}/migrations/{migrationId}/extend-cutover", h.extendCutover)

	h.handle("POST", "/api/v1/projects/{projectId}/validations", h.createValidation)
	h.handle("GET", "/api/v1/projects/{projectId}/validations/{validationId}", h.getValidation)

	h.handle("GET", "/api/v1/projects/{projectId}/pipelines", h.listPipelines)
	h.handle("POST", "/api/v1/projects/{projectId}/pipelines", h.createPipeline)
	h.handle("GET", "/api/v1/projects/{projectId}/pipelines/{pipelineName}", h.getPipeline)
	h.handle("PATCH", "/api/v1/projects/{projectId}/pipelines/{pipelineName}", h.updatePipeline)
	h.handle("DELETE", "/api/v1/projects/{projectId}/pipelines/{pipelineName}", h.deletePipeline)
	h.handle("POST", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/pause", h.setPipelineState(ferry.PipelinePaused))
	h.handle("POST", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/resume", h.setPipelineState(ferry.PipelineActive))
	h.handle("POST", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/trigger", h.triggerRun)
	h.handle("GET", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs", h.listRuns)
	h.handle("GET", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs/{runId}", h.getRun)
	h.handle("DELETE", "/api/v1/projects/{projectId}/pipelines/{pipelineName}/runs/{runId}", h.deleteRunDataset)

	h.handle("GET", "/api/v1/agents", h.listAgents)
}

func (h *Handler) openAPI(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, err := w.Write(openAPIJSON())
	return err
}

// ---- organizations and keys ----

func (h *Handler) listOrgs(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	orgs, err := h.svc.ListOrgs(r.Context())
	if err != nil {
		return err
	}
	items, total := pageSlice(orgs, p)
	writeJSON(w, http.StatusOK, newList(items, total, p))
	return nil
}

func (h *Handler) getOrg(w http.ResponseWriter, r *http.Request) error {
	o, err := h.svc.GetOrg(r.Context(), r.PathValue("orgId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, o)
	return nil
}

func (h *Handler) listAPIKeys(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	keys, err := h.svc.ListAPIKeys(r.Context(), r.PathValue("orgId"))
	if err != nil {
		return err
	}
	views := make([]apiKeyView, 0, len(keys))
	for _, k := range keys {
		views = append(views, viewAPIKey(k))
	}
	items, total := pageSlice(views, p)
	writeJSON(w, http.StatusOK, newList(items, total, p))
	return nil
}

type apiKeyInput struct {
	Role        ferry.Role `json:"role"`
	ProjectID   string     `json:"projectId"`
	Description string     `json:"description"`
}

func (h *Handler) createAPIKey(w http.ResponseWriter, r *http.Request) error {
	var in apiKeyInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	if in.Role == "" {
		return ferry.FieldError("role", "is required (one of %v)", ferry.Roles)
	}
	k, private, err := h.svc.CreateAPIKey(r.Context(), r.PathValue("orgId"), in.ProjectID, in.Role, in.Description)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/orgs/"+k.OrgID+"/api-keys/"+k.ID)
	writeJSON(w, http.StatusCreated, apiKeyCreated{apiKeyView: viewAPIKey(k), PrivateKey: private})
	return nil
}

func (h *Handler) deleteAPIKey(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteAPIKey(r.Context(), r.PathValue("orgId"), r.PathValue("keyId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- projects ----

func (h *Handler) listProjects(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	orgID := r.URL.Query().Get("orgId")
	if orgID != "" && !ferry.ValidID(orgID) {
		return &ferry.Error{Code: ferry.EINVALID, Field: "orgId", Reason: "INVALID_ID", Message: fmt.Sprintf("%q is not a valid 24-hex id", orgID)}
	}
	projects, total, err := h.svc.ListProjects(r.Context(), orgID, p.offset, p.limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(projects, total, p))
	return nil
}

type projectInput struct {
	Name  string `json:"name"`
	OrgID string `json:"orgId"`
}

func (h *Handler) createProject(w http.ResponseWriter, r *http.Request) error {
	var in projectInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	proj, err := h.svc.CreateProject(r.Context(), in.OrgID, in.Name)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+proj.ID)
	writeJSON(w, http.StatusCreated, proj)
	return nil
}

func (h *Handler) getProject(w http.ResponseWriter, r *http.Request) error {
	proj, err := h.svc.GetProject(r.Context(), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, proj)
	return nil
}

func (h *Handler) renameProject(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name string `json:"name"`
	}
	if err := decode(w, r, &in); err != nil {
		return err
	}
	proj, err := h.svc.RenameProject(r.Context(), r.PathValue("projectId"), in.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, proj)
	return nil
}

func (h *Handler) deleteProject(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteProject(r.Context(), r.PathValue("projectId")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- endpoints ----

func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	eps, err := h.svc.ListEndpoints(r.Context(), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	views := make([]endpointView, 0, len(eps))
	for _, e := range eps {
		views = append(views, viewEndpoint(e))
	}
	items, total := pageSlice(views, p)
	writeJSON(w, http.StatusOK, newList(items, total, p))
	return nil
}

func (h *Handler) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in endpointInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	e := in.model(r.PathValue("projectId"))
	if err := h.svc.CreateEndpoint(r.Context(), &e); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+e.ProjectID+"/endpoints/"+e.ID)
	writeJSON(w, http.StatusCreated, viewEndpoint(&e))
	return nil
}

func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := h.svc.GetEndpoint(r.Context(), r.PathValue("projectId"), r.PathValue("endpoint"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewEndpoint(e))
	return nil
}

func (h *Handler) updateEndpoint(w http.ResponseWriter, r *http.Request) error {
	var in endpointPatch
	if err := decode(w, r, &in); err != nil {
		return err
	}
	e, err := h.svc.UpdateEndpoint(r.Context(), r.PathValue("projectId"), r.PathValue("endpoint"), ferry.EndpointPatch(in))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewEndpoint(e))
	return nil
}

func (h *Handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteEndpoint(r.Context(), r.PathValue("projectId"), r.PathValue("endpoint")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- migrations ----

// states lists the state names a ?state= filter accepts.
var states = []ferry.State{ferry.StateCreated, ferry.StateRunning, ferry.StatePaused, ferry.StateCuttingOver, ferry.StateCompleted,
	ferry.StateFailed, ferry.StateExpired, ferry.StateReleasing, ferry.StateReleased}

func (h *Handler) listMigrations(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := ferry.MigrationFilter{ProjectID: r.PathValue("projectId"), Offset: p.offset, Limit: p.limit, Dialect: q.Get("dialect")}
	for _, v := range q["state"] {
		for s := range strings.SplitSeq(v, ",") {
			st := ferry.State(strings.TrimSpace(s))
			if !slices.Contains(states, st) {
				return &ferry.Error{Code: ferry.EINVALID, Field: "state", Reason: "INVALID_PARAMETER", Message: fmt.Sprintf("unknown state %q (one of %v)", st, states)}
			}
			f.States = append(f.States, st)
		}
	}
	if e := q.Get("engine"); e != "" {
		if !ferry.EngineKind(e).Valid() {
			return &ferry.Error{Code: ferry.EINVALID, Field: "engine", Reason: "INVALID_PARAMETER", Message: fmt.Sprintf("unknown engine %q (one of %v)", e, ferry.Kinds)}
		}
		f.Engine = ferry.EngineKind(e)
	}
	ms, total, err := h.svc.ListMigrations(r.Context(), f, ferry.AccessRead)
	if err != nil {
		return err
	}
	views := make([]migrationView, 0, len(ms))
	for _, m := range ms {
		views = append(views, viewMigration(m))
	}
	writeJSON(w, http.StatusOK, newList(views, total, p))
	return nil
}

func (h *Handler) createMigration(w http.ResponseWriter, r *http.Request) error {
	var in migrationInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m := in.model(r.PathValue("projectId"))
	if err := h.svc.CreateMigration(r.Context(), m, in.Start); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+m.ProjectID+"/migrations/"+m.ID)
	writeJSON(w, http.StatusCreated, viewMigration(m))
	return nil
}

func (h *Handler) getMigration(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "migrationId")
	if err != nil {
		return err
	}
	m, err := h.svc.GetMigration(r.Context(), r.PathValue("projectId"), id, ferry.AccessRead)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewMigration(m))
	return nil
}

func (h *Handler) deleteMigration(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "migrationId")
	if err != nil {
		return err
	}
	if err := h.svc.DeleteMigration(r.Context(), r.PathValue("projectId"), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) migrationAction(fn func(ctx context.Context, projectID, id string) (*ferry.Migration, error)) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := idParam(r, "migrationId")
		if err != nil {
			return err
		}
		m, err := fn(r.Context(), r.PathValue("projectId"), id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, viewMigration(m))
		return nil
	}
}

type extendInput struct {
	Hours int `json:"hours"`
}

func (h *Handler) extendCutover(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "migrationId")
	if err != nil {
		return err
	}
	var in extendInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	m, err := h.svc.ExtendCutover(r.Context(), r.PathValue("projectId"), id, time.Duration(in.Hours)*time.Hour)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewMigration(m))
	return nil
}

// ---- validations ----

func (h *Handler) createValidation(w http.ResponseWriter, r *http.Request) error {
	var in jobSpec
	if err := decode(w, r, &in); err != nil {
		return err
	}
	v, err := h.svc.CreateValidation(r.Context(), in.model(r.PathValue("projectId")))
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+v.ProjectID+"/validations/"+v.ID)
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (h *Handler) getValidation(w http.ResponseWriter, r *http.Request) error {
	id, err := idParam(r, "validationId")
	if err != nil {
		return err
	}
	v, err := h.svc.GetValidation(r.Context(), r.PathValue("projectId"), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// ---- pipelines and runs ----

func (h *Handler) listPipelines(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	pipes, err := h.svc.ListPipelines(r.Context(), r.PathValue("projectId"))
	if err != nil {
		return err
	}
	items, total := pageSlice(pipes, p)
	writeJSON(w, http.StatusOK, newList(items, total, p))
	return nil
}

func (h *Handler) createPipeline(w http.ResponseWriter, r *http.Request) error {
	var in pipelineInput
	if err := decode(w, r, &in); err != nil {
		return err
	}
	p := &ferry.Pipeline{ProjectID: r.PathValue("projectId"), Name: in.Name, Source: in.Source, Sink: in.Sink,
		Transformations: in.Transformations, BackupFrequencyType: in.BackupFrequencyType, DatasetRetentionPolicy: in.DatasetRetentionPolicy}
	if err := h.svc.CreatePipeline(r.Context(), p); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+p.ProjectID+"/pipelines/"+p.Name)
	writeJSON(w, http.StatusCreated, p)
	return nil
}

func (h *Handler) getPipeline(w http.ResponseWriter, r *http.Request) error {
	p, err := h.svc.GetPipeline(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) updatePipeline(w http.ResponseWriter, r *http.Request) error {
	var in pipelinePatch
	if err := decode(w, r, &in); err != nil {
		return err
	}
	p, err := h.svc.UpdatePipeline(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), func(p *ferry.Pipeline) error {
		in.apply(p)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) deletePipeline(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeletePipeline(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) setPipelineState(state string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		p, err := h.svc.SetPipelineState(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), state)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}
}

type triggerInput struct {
	SnapshotID             string                 `json:"snapshotId"`
	DatasetRetentionPolicy *ferry.RetentionPolicy `json:"datasetRetentionPolicy"`
}

func (h *Handler) triggerRun(w http.ResponseWriter, r *http.Request) error {
	var in triggerInput
	if err := decodeOptional(w, r, &in); err != nil {
		return err
	}
	run, err := h.svc.TriggerRun(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), in.SnapshotID, in.DatasetRetentionPolicy)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/projects/"+run.ProjectID+"/pipelines/"+run.PipelineName+"/runs/"+run.ID)
	writeJSON(w, http.StatusCreated, viewRun(run))
	return nil
}

func (h *Handler) listRuns(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	runs, total, err := h.svc.ListRuns(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), p.offset, p.limit)
	if err != nil {
		return err
	}
	views := make([]ferry.PipelineRun, 0, len(runs))
	for _, run := range runs {
		views = append(views, viewRun(run))
	}
	writeJSON(w, http.StatusOK, newList(views, total, p))
	return nil
}

func (h *Handler) getRun(w http.ResponseWriter, r *http.Request) error {
	run, err := h.svc.GetRun(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), r.PathValue("runId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewRun(run))
	return nil
}

func (h *Handler) deleteRunDataset(w http.ResponseWriter, r *http.Request) error {
	run, err := h.svc.DeleteRunDataset(r.Context(), r.PathValue("projectId"), r.PathValue("pipelineName"), r.PathValue("runId"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewRun(run))
	return nil
}

// ---- agents ----

func (h *Handler) listAgents(w http.ResponseWriter, r *http.Request) error {
	p, err := paging(r)
	if err != nil {
		return err
	}
	agents, err := h.svc.ListAgents(r.Context())
	if err != nil {
		return err
	}
	items, total := pageSlice(agents, p)
	writeJSON(w, http.StatusOK, newList(items, total, p))
	return nil
}
