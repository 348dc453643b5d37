package atlas

import (
	"net/http"
	"time"

	"github.com/ferrymigrate/ferry"
)

// pipelineBody is Atlas's DataLakeIngestionPipeline as a request body (POST
// and PATCH), plus ferry's backupFrequencyType. Read-only attributes (_id,
// groupId, state, dates, source.groupId, datasetRetentionPolicy's
// lastModifiedDate) are accepted, so a fetched pipeline can be sent back,
// and ignored.
type pipelineBody struct {
	ID                     *string           `json:"_id"`
	BackupFrequencyType    *string           `json:"backupFrequencyType"`
	CreatedDate            *string           `json:"createdDate"`
	DatasetRetentionPolicy *retentionBody    `json:"datasetRetentionPolicy"`
	GroupID                *string           `json:"groupId"`
	LastUpdatedDate        *string           `json:"lastUpdatedDate"`
	Name                   *string           `json:"name"`
	Sink                   *sinkBody         `json:"sink"`
	Source                 *sourceBody       `json:"source"`
	State                  *string           `json:"state"`
	Transformations        *[]transformation `json:"transformations"`
}

type sourceBody struct {
	Type           *string `json:"type"`
	ClusterName    *string `json:"clusterName"`
	CollectionName *string `json:"collectionName"`
	DatabaseName   *string `json:"databaseName"`
	GroupID        *string `json:"groupId"`
	PolicyItemID   *string `json:"policyItemId"`
}

type sinkBody struct {
	Type             *string           `json:"type"`
	MetadataProvider *string           `json:"metadataProvider"`
	MetadataRegion   *string           `json:"metadataRegion"`
	PartitionFields  *[]partitionField `json:"partitionFields"`
}

type partitionField struct {
	FieldName string `json:"fieldName"`
	Order     int    `json:"order"`
}

type transformation struct {
	Field string `json:"field"`
	Type  string `json:"type"`
}

type retentionBody struct {
	LastModifiedDate *string `json:"lastModifiedDate"`
	Units            *string `json:"units"`
	Value            *int    `json:"value"`
}

// triggerBody is Atlas's TriggerIngestionPipelineRequest.
type triggerBody struct {
	DatasetRetentionPolicy *retentionBody `json:"datasetRetentionPolicy"`
	SnapshotID             *string        `json:"snapshotId"`
}

// pipelineView is Atlas's DataLakeIngestionPipeline, plus ferry's
// backupFrequencyType.
type pipelineView struct {
	ID                     string           `json:"_id"`
	BackupFrequencyType    string           `json:"backupFrequencyType,omitempty"`
	CreatedDate            string           `json:"createdDate"`
	DatasetRetentionPolicy *retentionView   `json:"datasetRetentionPolicy,omitempty"`
	GroupID                string           `json:"groupId"`
	LastUpdatedDate        string           `json:"lastUpdatedDate"`
	Name                   string           `json:"name"`
	Sink                   sinkView         `json:"sink"`
	Source                 sourceView       `json:"source"`
	State                  string           `json:"state"`
	Transformations        []transformation `json:"transformations"`
}

type sourceView struct {
	Type           string `json:"type"`
	ClusterName    string `json:"clusterName"`
	CollectionName string `json:"collectionName"`
	DatabaseName   string `json:"databaseName"`
	GroupID        string `json:"groupId"`
	PolicyItemID   string `json:"policyItemId,omitempty"`
}

type sinkView struct {
	Type             string           `json:"type"`
	MetadataProvider string           `json:"metadataProvider,omitempty"`
	MetadataRegion   string           `json:"metadataRegion,omitempty"`
	PartitionFields  []partitionField `json:"partitionFields"`
}

type retentionView struct {
	LastModifiedDate string `json:"lastModifiedDate,omitempty"`
	Units            string `json:"units"`
	Value            int    `json:"value"`
}

// runView is Atlas's IngestionPipelineRun, as the seed shows it.
type runView struct {
	ID                     string         `json:"_id"`
	BackupFrequencyType    string         `json:"backupFrequencyType,omitempty"`
	CreatedDate            string         `json:"createdDate"`
	DatasetName            string         `json:"datasetName,omitempty"`
	DatasetRetentionPolicy *retentionView `json:"datasetRetentionPolicy,omitempty"`
	GroupID                string         `json:"groupId"`
	LastUpdatedDate        string         `json:"lastUpdatedDate"`
	Phase                  string         `json:"phase"`
	PipelineID             string         `json:"pipelineId"`
	ScheduledDeletionDate  string         `json:"scheduledDeletionDate,omitempty"`
	SnapshotID             string         `json:"snapshotId,omitempty"`
	State                  string         `json:"state"`
	Stats                  runStatsView   `json:"stats"`
}

type runStatsView struct {
	BytesExported int64 `json:"bytesExported"`
	NumDocs       int64 `json:"numDocs"`
}

func retentionViewOf(p *ferry.RetentionPolicy) *retentionView {
	if p == nil {
		return nil
	}
	v := &retentionView{Units: p.Units, Value: p.Value}
	if !p.LastModifiedDate.IsZero() {
		v.LastModifiedDate = atlasTime(p.LastModifiedDate)
	}
	return v
}

func pipelineViewOf(p *ferry.Pipeline) pipelineView {
	v := pipelineView{
		ID: p.ID, Name: p.Name, GroupID: p.ProjectID, State: p.State,
		BackupFrequencyType: p.BackupFrequencyType,
		CreatedDate:         atlasTime(p.CreatedAt), LastUpdatedDate: atlasTime(p.UpdatedAt),
		DatasetRetentionPolicy: retentionViewOf(p.DatasetRetentionPolicy),
		Source: sourceView{Type: p.Source.Type, ClusterName: p.Source.ClusterName, CollectionName: p.Source.CollectionName,
			DatabaseName: p.Source.DatabaseName, GroupID: p.Source.GroupID, PolicyItemID: p.Source.PolicyItemID},
		Sink: sinkView{Type: p.Sink.Type, MetadataProvider: p.Sink.MetadataProvider, MetadataRegion: p.Sink.MetadataRegion,
			PartitionFields: []partitionField{}},
		Transformations: []transformation{},
	}
	if v.Source.GroupID == "" {
		v.Source.GroupID = p.ProjectID
	}
	for _, f := range p.Sink.PartitionFields {
		v.Sink.PartitionFields = append(v.Sink.PartitionFields, partitionField{FieldName: f.FieldName, Order: f.Order})
	}
	for _, t := range p.Transformations {
		v.Transformations = append(v.Transformations, transformation{Field: t.Field, Type: t.Type})
	}
	return v
}

func runViewOf(r *ferry.PipelineRun) runView {
	return runView{
		ID: r.ID, BackupFrequencyType: r.BackupFrequencyType,
		CreatedDate: atlasTime(r.CreatedAt), LastUpdatedDate: atlasTime(r.UpdatedAt),
		DatasetName: r.DatasetName, DatasetRetentionPolicy: retentionViewOf(r.DatasetRetentionPolicy),
		GroupID: r.ProjectID, Phase: r.Phase, PipelineID: r.PipelineID,
		ScheduledDeletionDate: atlasTimePtr(r.ScheduledDeletionDate), SnapshotID: r.SnapshotID,
		State: r.State, Stats: runStatsView{BytesExported: r.Stats.BytesExported, NumDocs: r.Stats.NumDocs},
	}
}

// apply copies the attributes a request body gives onto p.
func (b *pipelineBody) apply(p *ferry.Pipeline) error {
	if b.Name != nil {
		p.Name = *b.Name
	}
	if b.BackupFrequencyType != nil {
		p.BackupFrequencyType = *b.BackupFrequencyType
		if b.Source == nil || b.Source.PolicyItemID == nil {
			p.Source.PolicyItemID = "" // the frequency picks its schedule
		}
	}
	if s := b.Source; s != nil {
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&p.Source.Type, s.Type)
		if s.Type != nil && *s.Type != ferry.SourcePeriodic && s.PolicyItemID == nil {
			p.Source.PolicyItemID = "" // an on-demand source has no schedule
		}
		set(&p.Source.ClusterName, s.ClusterName)
		set(&p.Source.CollectionName, s.CollectionName)
		set(&p.Source.DatabaseName, s.DatabaseName)
		if s.PolicyItemID != nil {
			if *s.PolicyItemID != "" && !ferry.ValidID(*s.PolicyItemID) {
				return fieldErr("VALIDATION_ERROR", "source.policyItemId", "must be a 24-hex id")
			}
			p.Source.PolicyItemID = *s.PolicyItemID
			if b.BackupFrequencyType == nil {
				p.BackupFrequencyType = "" // the schedule sets the frequency
			}
		}
	}
	if s := b.Sink; s != nil {
		if s.Type != nil {
			p.Sink.Type = *s.Type
		}
		if s.MetadataProvider != nil {
			p.Sink.MetadataProvider = *s.MetadataProvider
		}
		if s.MetadataRegion != nil {
			p.Sink.MetadataRegion = *s.MetadataRegion
		}
		if s.PartitionFields != nil {
			p.Sink.PartitionFields = nil
			for _, f := range *s.PartitionFields {
				p.Sink.PartitionFields = append(p.Sink.PartitionFields, ferry.PartitionField{FieldName: f.FieldName, Order: f.Order})
			}
		}
	}
	if b.Transformations != nil {
		p.Transformations = nil
		for _, t := range *b.Transformations {
			p.Transformations = append(p.Transformations, ferry.Transformation{Field: t.Field, Type: t.Type})
		}
	}
	if b.DatasetRetentionPolicy != nil {
		rp := b.DatasetRetentionPolicy.merge(p.DatasetRetentionPolicy)
		p.DatasetRetentionPolicy = rp
	}
	return nil
}

// merge returns the policy the body describes over cur (PATCH of a part).
func (b *retentionBody) merge(cur *ferry.RetentionPolicy) *ferry.RetentionPolicy {
	out := &ferry.RetentionPolicy{}
	if cur != nil {
		*out = *cur
	}
	if b.Units != nil {
		out.Units = *b.Units
	}
	if b.Value != nil {
		out.Value = *b.Value
	}
	return out
}

// pipelineName returns the path's pipeline name, checked against Atlas's
// pattern.
func pipelineName(r *http.Request) (string, string, error) {
	gid, err := groupID(r)
	if err != nil {
		return "", "", err
	}
	name := r.PathValue("pipelineName")
	if !ferry.ValidPipelineName(name) {
		return "", "", fieldErr("VALIDATION_ERROR", "pipelineName", "%s does not match ^[^/\\\\ \"$]{1,64}$", quote(name))
	}
	return gid, name, nil
}

func (h *handler) listPipelines(r *http.Request) (int, any, error) {
	if r.PathValue("groupId") == "byName" {
		return h.groupByName(r, "pipelines")
	}
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	ps, err := h.svc.ListPipelines(r.Context(), gid)
	if err != nil {
		return 0, nil, err
	}
	// Atlas answers listPipelines with a plain array, not a paginated list.
	out := make([]pipelineView, 0, len(ps))
	for _, p := range ps {
		out = append(out, pipelineViewOf(p))
	}
	return http.StatusOK, out, nil
}

func (h *handler) createPipeline(r *http.Request) (int, any, error) {
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b pipelineBody
	if err := decodeStrict(body, &b); err != nil {
		return 0, nil, err
	}
	if b.Name == nil || *b.Name == "" {
		return 0, nil, fieldErr("MISSING_ATTRIBUTE", "name", "The required attribute name was not specified.")
	}
	if b.Source == nil {
		return 0, nil, fieldErr("MISSING_ATTRIBUTE", "source", "The required attribute source was not specified.")
	}
	p := &ferry.Pipeline{ProjectID: gid}
	if err := b.apply(p); err != nil {
		return 0, nil, err
	}
	if err := h.svc.CreatePipeline(r.Context(), p); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pipelineViewOf(p), nil
}

func (h *handler) getPipeline(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	p, err := h.svc.GetPipeline(r.Context(), gid, name)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pipelineViewOf(p), nil
}

func (h *handler) updatePipeline(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b pipelineBody
	if err := decodeStrict(body, &b); err != nil {
		return 0, nil, err
	}
	p, err := h.svc.UpdatePipeline(r.Context(), gid, name, b.apply)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pipelineViewOf(p), nil
}

func (h *handler) deletePipeline(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.DeletePipeline(r.Context(), gid, name); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct{}{}, nil
}

func (h *handler) setPipelineState(r *http.Request, state string) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	p, err := h.svc.SetPipelineState(r.Context(), gid, name, state)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, pipelineViewOf(p), nil
}

func (h *handler) pausePipeline(r *http.Request) (int, any, error) {
	return h.setPipelineState(r, ferry.PipelinePaused)
}

func (h *handler) resumePipeline(r *http.Request) (int, any, error) {
	return h.setPipelineState(r, ferry.PipelineActive)
}

func (h *handler) triggerPipeline(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	var b triggerBody
	if len(body) > 0 {
		if err := decodeStrict(body, &b); err != nil {
			return 0, nil, err
		}
	}
	snap := ""
	if b.SnapshotID != nil {
		snap = *b.SnapshotID
	}
	var rp *ferry.RetentionPolicy
	if b.DatasetRetentionPolicy != nil {
		rp = b.DatasetRetentionPolicy.merge(nil)
	}
	run, err := h.svc.TriggerRun(r.Context(), gid, name, snap, rp)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, runViewOf(run), nil
}

func (h *handler) listRuns(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	pg, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	f := ferry.RunFilter{Offset: pg.offset(), Limit: pg.size}
	if s := r.URL.Query().Get("createdBefore"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return 0, nil, fieldErr("INVALID_QUERY_PARAMETER", "createdBefore", "must be an ISO 8601 date and time in UTC, not %s", quote(s))
		}
		f.CreatedBefore = &t
	}
	runs, total, err := h.svc.ListRunsFiltered(r.Context(), gid, name, f)
	if err != nil {
		return 0, nil, err
	}
	views := make([]runView, 0, len(runs))
	for _, run := range runs {
		views = append(views, runViewOf(run))
	}
	return http.StatusOK, newList(r, pg, views, total), nil
}

func (h *handler) runPath(r *http.Request) (gid, name, runID string, err error) {
	gid, name, err = pipelineName(r)
	if err != nil {
		return
	}
	runID, err = pathID(r, "pipelineRunId", "VALIDATION_ERROR")
	return
}

func (h *handler) getRun(r *http.Request) (int, any, error) {
	gid, name, id, err := h.runPath(r)
	if err != nil {
		return 0, nil, err
	}
	run, err := h.svc.GetRun(r.Context(), gid, name, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, runViewOf(run), nil
}

func (h *handler) deleteRun(r *http.Request) (int, any, error) {
	gid, name, id, err := h.runPath(r)
	if err != nil {
		return 0, nil, err
	}
	if _, err := h.svc.DeleteRunDataset(r.Context(), gid, name, id); err != nil {
		return 0, nil, err
	}
	// Atlas answers 202 with an empty RequestAccepted object.
	return http.StatusAccepted, struct{}{}, nil
}
