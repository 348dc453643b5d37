package atlas

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/ferrymigrate/ferry"
)

// liveMigrationRequest is Atlas's LiveMigrationRequest20240530 (the create
// and validate body). `dropEnabled` is the 2023-01-01 name of
// dropDestinationData. Read-only attributes (_id, links) are ignored.
type liveMigrationRequest struct {
	ID                  *string        `json:"_id"`
	Destination         *lmDestination `json:"destination"`
	DropDestinationData *bool          `json:"dropDestinationData"`
	DropEnabled         *bool          `json:"dropEnabled"`
	Links               []link         `json:"links"`
	MigrationHosts      *[]string      `json:"migrationHosts"`
	Sharding            *lmSharding    `json:"sharding"`
	Source              *lmSource      `json:"source"`
}

type lmSource struct {
	CACertificatePath     *string `json:"caCertificatePath"`
	ClusterName           *string `json:"clusterName"`
	GroupID               *string `json:"groupId"`
	ManagedAuthentication *bool   `json:"managedAuthentication"`
	Password              *string `json:"password"`
	SSL                   *bool   `json:"ssl"`
	Username              *string `json:"username"`
}

type lmDestination struct {
	ClusterName        *string `json:"clusterName"`
	GroupID            *string `json:"groupId"`
	HostnameSchemaType *string `json:"hostnameSchemaType"`
	PrivateLinkID      *string `json:"privateLinkId"`
}

type lmSharding struct {
	CreateSupportingIndexes *bool          `json:"createSupportingIndexes"`
	ShardingEntries         []lmShardEntry `json:"shardingEntries"`
}

type lmShardEntry struct {
	Collection      string      `json:"collection"`
	Database        string      `json:"database"`
	ShardCollection lmShardKeys `json:"shardCollection"`
}

type lmShardKeys struct {
	Key []map[string]any `json:"key"`
}

// liveMigrationView is Atlas's LiveMigrationResponse, as the seed shows it.
type liveMigrationView struct {
	ID              string   `json:"_id"`
	LagTimeSeconds  *int64   `json:"lagTimeSeconds"`
	MigrationHosts  []string `json:"migrationHosts"`
	ReadyForCutover bool     `json:"readyForCutover"`
	Status          string   `json:"status"`
}

// validationView is Atlas's LiveImportValidation.
type validationView struct {
	ID            string  `json:"_id"`
	ErrorMessage  *string `json:"errorMessage"`
	GroupID       string  `json:"groupId"`
	SourceGroupID *string `json:"sourceGroupId"`
	Status        string  `json:"status"`
}

// liveMigrationStatus maps ferry's state to Atlas's live migration status.
func liveMigrationStatus(s ferry.State) string {
	switch s {
	case ferry.StateCreated:
		return "NEW"
	case ferry.StateRunning, ferry.StateCuttingOver, ferry.StateReleasing, ferry.StatePaused:
		return "WORKING"
	case ferry.StateCompleted, ferry.StateReleased:
		return "COMPLETE"
	case ferry.StateFailed:
		return "FAILED"
	case ferry.StateExpired:
		return "EXPIRED"
	}
	return "WORKING"
}

func liveMigrationViewOf(m *ferry.Migration) liveMigrationView {
	v := liveMigrationView{ID: m.ID, MigrationHosts: []string{}, ReadyForCutover: m.ReadyForCutover, Status: liveMigrationStatus(m.State)}
	// Atlas answers the migration hosts the request named; ferry's own API
	// reports the agents that ran the job (hosts). A request that named
	// none gets the agents, the hosts that actually migrate.
	if named := m.Labels["migrationHost"]; named != "" {
		v.MigrationHosts = append(v.MigrationHosts, named)
	} else if m.Hosts != nil {
		v.MigrationHosts = append(v.MigrationHosts, m.Hosts...)
	}
	// Atlas reports the lag only during an active migration, before cutover.
	if m.State == ferry.StateRunning && m.CurrentStep == ferry.StepIncremental && m.LagSeconds != nil {
		lag := *m.LagSeconds
		v.LagTimeSeconds = &lag
	}
	return v
}

// hostnameSchemaTypes are the network types Atlas accepts between the
// migration host and the destination cluster.
var hostnameSchemaTypes = []string{"PUBLIC", "PRIVATE_LINK", "VPC_PEERING"}

// parseLiveMigration decodes and shape-checks a LiveMigrationRequest20240530
// for project groupID and maps it to a ferry job: a MongoDB migration
// between the project's registered endpoints named by the cluster names,
// running the full copy, the incremental sync and verification.
func parseLiveMigration(groupID string, body []byte) (*ferry.Migration, error) {
	var req liveMigrationRequest
	if err := decodeStrict(body, &req); err != nil {
		return nil, err
	}
	missing := func(field string) error {
		return fieldErr("MISSING_ATTRIBUTE", field, "The required attribute %s was not specified.", field)
	}
	src, dst := req.Source, req.Destination
	if src == nil {
		return nil, missing("source")
	}
	if dst == nil {
		return nil, missing("destination")
	}
	if src.ClusterName == nil || strings.TrimSpace(*src.ClusterName) == "" {
		return nil, missing("source.clusterName")
	}
	if src.GroupID == nil || *src.GroupID == "" {
		return nil, missing("source.groupId")
	}
	if !ferry.ValidID(*src.GroupID) {
		return nil, fieldErr("INVALID_GROUP_ID", "source.groupId", "The specified group ID %s is invalid.", quote(*src.GroupID))
	}
	if dst.ClusterName == nil || strings.TrimSpace(*dst.ClusterName) == "" {
		return nil, missing("destination.clusterName")
	}
	if dst.GroupID == nil || *dst.GroupID == "" {
		return nil, missing("destination.groupId")
	}
	if !ferry.ValidID(*dst.GroupID) {
		return nil, fieldErr("INVALID_GROUP_ID", "destination.groupId", "The specified group ID %s is invalid.", quote(*dst.GroupID))
	}
	if *dst.GroupID != groupID {
		return nil, fieldErr("VALIDATION_ERROR", "destination.groupId", "must be the project of the request path (%s)", groupID)
	}
	if dst.HostnameSchemaType == nil || *dst.HostnameSchemaType == "" {
		return nil, missing("destination.hostnameSchemaType")
	}
	if !slices.Contains(hostnameSchemaTypes, *dst.HostnameSchemaType) {
		return nil, fieldErr("INVALID_ENUM_VALUE", "destination.hostnameSchemaType",
			"An invalid enumeration value %s was specified for destination.hostnameSchemaType (one of %s).",
			quote(*dst.HostnameSchemaType), strings.Join(hostnameSchemaTypes, ", "))
	}
	managed := src.ManagedAuthentication != nil && *src.ManagedAuthentication
	if managed && (src.Username != nil || src.Password != nil) {
		return nil, fieldErr("VALIDATION_ERROR", "source.managedAuthentication", "is true: do not provide a username and password")
	}
	if req.MigrationHosts != nil {
		hosts := *req.MigrationHosts
		if len(hosts) != 1 || strings.TrimSpace(hosts[0]) == "" {
			return nil, fieldErr("VALIDATION_ERROR", "migrationHosts", "must list exactly one migration host")
		}
	}

	m := &ferry.Migration{
		ProjectID: groupID,
		Engine:    ferry.KindMongoDB,
		Dialect:   "atlas",
		Source:    ferry.Endpoint{Name: *src.ClusterName},
		Target:    ferry.Endpoint{Name: *dst.ClusterName},
		Modes:     ferry.Modes{Full: true, Incremental: true, Verify: true},
		Labels: map[string]string{
			"sourceGroupId":      *src.GroupID,
			"hostnameSchemaType": *dst.HostnameSchemaType,
		},
	}
	// Credentials and TLS settings given here apply on top of the
	// registered source endpoint's.
	if !managed {
		if src.Username != nil {
			m.Source.Username = *src.Username
		}
		if src.Password != nil {
			m.Source.Password = *src.Password
		}
	}
	if src.SSL != nil && *src.SSL {
		m.Source.TLS = true
	}
	if src.CACertificatePath != nil && *src.CACertificatePath != "" {
		m.Source.Options = map[string]string{"caCertificatePath": *src.CACertificatePath}
	}
	if dst.PrivateLinkID != nil && *dst.PrivateLinkID != "" {
		m.Labels["privateLinkId"] = *dst.PrivateLinkID
	}
	if req.MigrationHosts != nil {
		m.Labels["migrationHost"] = (*req.MigrationHosts)[0]
	}
	if (req.DropDestinationData != nil && *req.DropDestinationData) || (req.DropEnabled != nil && *req.DropEnabled) {
		m.Options.DropTarget = true
	}
	if req.Sharding != nil {
		if req.Sharding.CreateSupportingIndexes == nil {
			return nil, missing("sharding.createSupportingIndexes")
		}
		for i, e := range req.Sharding.ShardingEntries {
			if e.Database == "" || e.Collection == "" || len(e.ShardCollection.Key) == 0 {
				return nil, fieldErr("VALIDATION_ERROR", "sharding.shardingEntries["+itoa(i)+"]", "needs database, collection and shardCollection.key")
			}
		}
		raw, err := json.Marshal(req.Sharding)
		if err != nil {
			return nil, errMalformed
		}
		m.Options.Extra = map[string]string{"sharding": string(raw)}
	}
	return m, nil
}

func (h *handler) createLiveMigration(r *http.Request) (int, any, error) {
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	m, err := parseLiveMigration(gid, body)
	if err != nil {
		return 0, nil, err
	}
	if err := h.svc.CreateMigration(r.Context(), m, true); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, liveMigrationViewOf(m), nil
}

func (h *handler) listLiveMigrations(r *http.Request) (int, any, error) {
	if r.PathValue("groupId") == "byName" {
		return h.groupByName(r, "liveMigrations")
	}
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	pg, err := parsePage(r)
	if err != nil {
		return 0, nil, err
	}
	ms, total, err := h.svc.ListMigrations(r.Context(), ferry.MigrationFilter{ProjectID: gid, Engine: ferry.KindMongoDB, Offset: pg.offset(), Limit: pg.size}, ferry.AccessMember)
	if err != nil {
		return 0, nil, err
	}
	views := make([]liveMigrationView, 0, len(ms))
	for _, m := range ms {
		views = append(views, liveMigrationViewOf(m))
	}
	return http.StatusOK, newList(r, pg, views, total), nil
}

// liveMigration loads a live migration (a MongoDB job) the caller may read.
func (h *handler) liveMigration(r *http.Request) (*ferry.Migration, error) {
	gid, err := groupID(r)
	if err != nil {
		return nil, err
	}
	id, err := pathID(r, "liveMigrationId", "VALIDATION_ERROR")
	if err != nil {
		return nil, err
	}
	m, err := h.svc.GetMigration(r.Context(), gid, id, ferry.AccessMember)
	if err != nil {
		return nil, err
	}
	if m.Engine != ferry.KindMongoDB {
		return nil, &ferry.Error{Code: ferry.ENOTFOUND, Reason: "MIGRATION_NOT_FOUND", Message: "no live migration with id " + id + " in project " + gid}
	}
	return m, nil
}

func (h *handler) getLiveMigration(r *http.Request) (int, any, error) {
	m, err := h.liveMigration(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, liveMigrationViewOf(m), nil
}

func (h *handler) cutoverLiveMigration(r *http.Request) (int, any, error) {
	m, err := h.liveMigration(r)
	if err != nil {
		return 0, nil, err
	}
	if _, err := h.svc.CutoverMigration(r.Context(), m.ProjectID, m.ID); err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, nil, nil
}

func validationViewOf(v *ferry.Validation) validationView {
	out := validationView{ID: v.ID, GroupID: v.ProjectID, Status: v.Status}
	if v.SourceGroupID != "" {
		s := v.SourceGroupID
		out.SourceGroupID = &s
	}
	if len(v.Errors) > 0 {
		s := strings.Join(v.Errors, "; ")
		out.ErrorMessage = &s
	}
	return out
}

func (h *handler) validateLiveMigration(r *http.Request) (int, any, error) {
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := readBody(r)
	if err != nil {
		return 0, nil, err
	}
	m, err := parseLiveMigration(gid, body)
	if err != nil {
		return 0, nil, err
	}
	v, err := h.svc.CreateValidation(r.Context(), m)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, validationViewOf(v), nil
}

func (h *handler) getValidation(r *http.Request) (int, any, error) {
	gid, err := groupID(r)
	if err != nil {
		return 0, nil, err
	}
	id, err := pathID(r, "validationId", "VALIDATION_ERROR")
	if err != nil {
		return 0, nil, err
	}
	v, err := h.svc.GetValidation(r.Context(), gid, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, validationViewOf(v), nil
}
