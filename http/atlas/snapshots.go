package atlas

import (
	"net/http"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// snapshotView is Atlas's DiskBackupSnapshot for a pipeline's available
// snapshot (ferry's own snapshot points: see ferry.Snapshot).
type snapshotView struct {
	ID               string   `json:"id"`
	CreatedAt        string   `json:"createdAt"`
	Description      string   `json:"description"`
	ExpiresAt        string   `json:"expiresAt,omitempty"`
	FrequencyType    string   `json:"frequencyType"`
	PolicyItems      []string `json:"policyItems"`
	SnapshotType     string   `json:"snapshotType"`
	Status           string   `json:"status"`
	StorageSizeBytes int64    `json:"storageSizeBytes"`
	Type             string   `json:"type"`
}

// policyItemView is Atlas's DiskBackupApiPolicyItem.
type policyItemView struct {
	ID                string `json:"id"`
	FrequencyInterval int    `json:"frequencyInterval"`
	FrequencyType     string `json:"frequencyType"`
	RetentionUnit     string `json:"retentionUnit"`
	RetentionValue    int    `json:"retentionValue"`
}

func snapshotViewOf(projectID string, s ferry.Snapshot) snapshotView {
	v := snapshotView{ID: s.ID, CreatedAt: atlasTime(s.CreatedAt), ExpiresAt: atlasTimePtr(s.ExpiresAt), PolicyItems: []string{},
		Status: "completed", StorageSizeBytes: s.Bytes, Type: "replicaSet",
		Description: "ferry snapshot point of pipeline run " + s.RunID + ", dataset " + s.DatasetName}
	if s.FrequencyType == "" || s.FrequencyType == "ON_DEMAND" {
		v.FrequencyType, v.SnapshotType = "ondemand", "onDemand"
	} else {
		v.FrequencyType, v.SnapshotType = strings.ToLower(s.FrequencyType), "scheduled"
		for _, sc := range ferry.Schedules(projectID, nil) {
			if sc.Frequency() == s.FrequencyType {
				v.PolicyItems = append(v.PolicyItems, sc.ID)
			}
		}
	}
	return v
}

// availableSnapshots: GET .../pipelines/{pipelineName}/availableSnapshots
// (paged; completedAfter).
func (h *handler) availableSnapshots(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	pg, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	var after *time.Time
	if s := r.URL.Query().Get("completedAfter"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return 0, nil, fieldErr("INVALID_QUERY_PARAMETER", "completedAfter", "must be an ISO 8601 date and time in UTC, not %s", quote(s))
		}
		after = &t
	}
	snaps, err := h.svc.ListSnapshots(r.Context(), gid, name, after)
	if err != nil {
		return 0, nil, err
	}
	views := []snapshotView{}
	for i := pg.offset(); i < len(snaps) && i < pg.offset()+pg.size; i++ {
		views = append(views, snapshotViewOf(gid, snaps[i]))
	}
	return http.StatusOK, newList(r, pg, views, len(snaps)), nil
}

// availableSchedules: GET .../pipelines/{pipelineName}/availableSchedules.
func (h *handler) availableSchedules(r *http.Request) (int, any, error) {
	gid, name, err := pipelineName(r)
	if err != nil {
		return 0, nil, err
	}
	scs, err := h.svc.ListSchedules(r.Context(), gid, name)
	if err != nil {
		return 0, nil, err
	}
	out := make([]policyItemView, 0, len(scs))
	for _, s := range scs {
		out = append(out, policyItemView{ID: s.ID, FrequencyInterval: s.FrequencyInterval, FrequencyType: s.FrequencyType,
			RetentionUnit: s.RetentionUnit, RetentionValue: s.RetentionValue})
	}
	return http.StatusOK, out, nil
}
