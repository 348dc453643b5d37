package oms

// OMS V4 OpenAPI: POST /api/v2?Action=<name> with a JSON body, answered in
// V4's wrapper {success, errorDetail, code, message, advice, requestId,
// pageNumber, pageSize, totalCount, cost, data} (on success errorDetail,
// code, message and advice are null, as V4's samples show).
//
// Served actions (the project actions of the OMS V4 OpenAPI):
//
//	CreateProject            body: V4 CreateProject fields   data: {id}
//	ListProjects             body: filters and paging        data: [project], paged
//	DescribeProject          body: {id}                      data: project with steps
//	DescribeProjectProgress  body: {id}                      data: V4 progress
//	DescribeProjectSteps     body: {id}                      data: [step]
//	StartProject             body: {id}                      data: null
//	StopProject              body: {id}                      data: null
//	ResumeProject            body: {id}                      data: null
//	ReleaseProject           body: {id}                      data: null
//	DeleteProject            body: {id}                      data: null
//
// Bodies are decoded strictly: a field V4 does not define for the action is
// a PARAM_ERROR naming it (UNKNOWN_FIELD), and a V4 field whose value asks
// for something ferry does not do (row filters, throttles, SYNC projects,
// ...) is a NOT_IMPLEMENTED or PARAM_ERROR naming it; nothing is silently
// ignored. The ferry project (tenant) a call acts in is the job's own for
// calls with an id; CreateProject takes it from the query parameter
// projectId, else a GROUP_* key's project, else the project of the
// registered endpoint sourceEndpointId names; ListProjects lists every
// project the key can see unless projectId narrows it.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// V4Path is the path of every OMS V4 OpenAPI call.
const V4Path = "/api/v2"

// Prefixes are the paths the server mounts this dialect on: the V2 REST
// tree and the V4 OpenAPI path.
var Prefixes = []string{Prefix, V4Path}

// labelLabelIDs keeps the V4 labelIds of a job, comma-separated.
const labelLabelIDs = "oms.labelIds"

// v4op is one V4 action: it decodes body (never nil; "{}" when empty) and
// returns the data and, for lists, the page.
type v4op func(ctx context.Context, r *http.Request, body []byte) (any, *page, error)

func (h *handler) v4Actions() map[string]v4op {
	return map[string]v4op{
		"CreateProject":           h.v4Create,
		"ListProjects":            h.v4List,
		"DescribeProject":         h.v4ByID(func(m *ferry.Migration) any { return v4ProjectOf(m, true) }),
		"DescribeProjectProgress": h.v4ByID(func(m *ferry.Migration) any { return v4ProgressOf(m) }),
		"DescribeProjectSteps":    h.v4ByID(func(m *ferry.Migration) any { return v4StepsOf(m) }),
		"StartProject":            h.v4Action(h.svc.StartMigration),
		"StopProject":             h.v4Action(h.svc.PauseMigration),
		"ResumeProject":           h.v4Action(h.svc.ResumeMigration),
		"ReleaseProject":          h.v4Action(h.svc.ReleaseMigration),
		"DeleteProject": h.v4Action(func(ctx context.Context, projectID, id string) (*ferry.Migration, error) {
			return nil, h.svc.DeleteMigration(ctx, projectID, id)
		}),
	}
}

// V4Actions lists the served V4 actions, sorted.
func V4Actions() []string {
	var out []string
	for a := range (&handler{}).v4Actions() {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// v4Envelope is V4's wrapper, in its documented order.
type v4Envelope struct {
	Success     bool         `json:"success"`
	ErrorDetail *errorDetail `json:"errorDetail"`
	Code        *string      `json:"code"`
	Message     *string      `json:"message"`
	Advice      *string      `json:"advice"`
	RequestID   string       `json:"requestId"`
	PageNumber  *int         `json:"pageNumber"`
	PageSize    *int         `json:"pageSize"`
	TotalCount  *int         `json:"totalCount"`
	Cost        string       `json:"cost"`
	Data        any          `json:"data"`
}

func (h *handler) serveV4(w http.ResponseWriter, r *http.Request) {
	c := h.begin(w)
	defer func() {
		if v := recover(); v != nil {
			h.logger.Error("panic", "method", r.Method, "path", r.URL.Path, "requestId", c.requestID, "panic", v)
			h.writeV4Error(w, r, c, fmt.Errorf("panic: %v", v))
		}
	}()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.writeV4Error(w, r, c, &ferry.Error{Code: codeMethodNotAllowed, Reason: "METHOD_NOT_ALLOWED",
			Message: fmt.Sprintf("%s is not allowed on %s: OMS V4 calls are POST %s?Action=<action>", r.Method, V4Path, V4Path)})
		return
	}
	p, err := h.auth.Check(w, r)
	if err != nil {
		scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if ferry.ErrorCode(err) == ferry.EUNAUTHORIZED && (scheme == "" || strings.EqualFold(scheme, "digest")) {
			h.auth.Challenge(w)
		}
		h.writeV4Error(w, r, c, err)
		return
	}
	action := r.URL.Query().Get("Action")
	fn, ok := h.v4Actions()[action]
	if !ok {
		msg := fmt.Sprintf("unknown Action %q", action)
		if action == "" {
			msg = "the query parameter Action is required"
		}
		h.writeV4Error(w, r, c, &ferry.Error{Code: ferry.EINVALID, Field: "Action", Reason: "INVALID_ACTION",
			Message: msg, Advice: "supported actions: " + strings.Join(V4Actions(), ", ")})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		h.writeV4Error(w, r, c, &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("the body must be JSON (Content-Type: application/json), not %q", ct)})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		h.writeV4Error(w, r, c, &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_UNREADABLE", Message: "the request body could not be read"})
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	data, pg, err := fn(ferry.WithPrincipal(r.Context(), p), r, body)
	if err != nil {
		h.writeV4Error(w, r, c, err)
		return
	}
	env := v4Envelope{Success: true, RequestID: c.requestID, Cost: cost(c), Data: data}
	if pg != nil {
		env.PageNumber, env.PageSize, env.TotalCount = &pg.number, &pg.size, &pg.total
	}
	writeJSON(w, http.StatusOK, env)
}

func (h *handler) writeV4Error(w http.ResponseWriter, r *http.Request, c *call, err error) {
	fe := ferry.AsError(err)
	if fe == nil || fe.Code == ferry.EINTERNAL {
		h.logger.Error("internal error", "method", r.Method, "path", r.URL.Path, "action", r.URL.Query().Get("Action"), "requestId", c.requestID, "err", err)
		fe = &ferry.Error{Code: ferry.EINTERNAL, Message: "Internal error.", Advice: "retry later; report request id " + c.requestID + " if it persists"}
	}
	status, code := StatusOf(fe.Code)
	msg := fe.Message
	if fe.Field != "" {
		msg = fe.Field + ": " + msg
	}
	detailCode := fe.Reason
	if detailCode == "" {
		detailCode = code
	}
	advice := fe.Advice
	writeJSON(w, status, v4Envelope{
		Success: false, Code: &code, Message: &msg, Advice: &advice, RequestID: c.requestID, Cost: cost(c),
		ErrorDetail: &errorDetail{Code: detailCode, Level: "ERROR", Message: msg, Field: fe.Field, Proposal: fe.Advice},
	})
}

// decodeStrict reads a V4 body into v: decodeBytes' checks plus unknown
// fields, which are an error naming the field and the action's fields.
func decodeStrict(body []byte, v any, action string) error {
	if len(body) > MaxBodyBytes {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "BODY_TOO_LARGE", Message: fmt.Sprintf("the request body exceeds %d bytes", MaxBodyBytes)}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			name = strings.Trim(name, `"`)
			return &ferry.Error{Code: ferry.EINVALID, Field: name, Reason: "UNKNOWN_FIELD",
				Message: fmt.Sprintf("%s has no field %q", action, name),
				Advice:  "send only the fields the OMS V4 OpenAPI documents for " + action}
		}
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "unexpected data after the JSON body"}
	}
	return nil
}

// v4IDRequest is the body of the actions on one project.
type v4IDRequest struct {
	ID string `json:"id"`
}

func (h *handler) v4Job(ctx context.Context, r *http.Request, body []byte, action string) (*ferry.Migration, string, error) {
	var req v4IDRequest
	if err := decodeStrict(body, &req, action); err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(req.ID) == "" {
		return nil, "", ferry.FieldError("id", "is required (the project's id)")
	}
	return h.project(ctx, r, req.ID, ferry.AccessRead)
}

func (h *handler) v4ByID(view func(m *ferry.Migration) any) v4op {
	return func(ctx context.Context, r *http.Request, body []byte) (any, *page, error) {
		m, _, err := h.v4Job(ctx, r, body, r.URL.Query().Get("Action"))
		if err != nil {
			return nil, nil, err
		}
		return view(m), nil, nil
	}
}

func (h *handler) v4Action(fn func(ctx context.Context, projectID, id string) (*ferry.Migration, error)) v4op {
	return func(ctx context.Context, r *http.Request, body []byte) (any, *page, error) {
		m, projectID, err := h.v4Job(ctx, r, body, r.URL.Query().Get("Action"))
		if err != nil {
			return nil, nil, err
		}
		if _, err := fn(ctx, projectID, m.ID); err != nil {
			return nil, nil, err
		}
		return nil, nil, nil
	}
}

// ---- CreateProject ----

// v4CreateRequest is V4's CreateProject body (the fields ferry maps).
type v4CreateRequest struct {
	Name                      string             `json:"name"`
	Type                      string             `json:"type"`
	LabelIDs                  []string           `json:"labelIds"`
	SourceEndpointID          string             `json:"sourceEndpointId"`
	SinkEndpointID            string             `json:"sinkEndpointId"`
	TransferMapping           *v4TransferMapping `json:"transferMapping"`
	CommonTransferConfig      *v4CommonConfig    `json:"commonTransferConfig"`
	EnableStructTransfer      bool               `json:"enableStructTransfer"`
	StructTransferConfig      *v4StructConfig    `json:"structTransferConfig"`
	EnableFullTransfer        bool               `json:"enableFullTransfer"`
	EnableFullVerify          bool               `json:"enableFullVerify"`
	FullTransferConfig        *v4FullConfig      `json:"fullTransferConfig"`
	EnableIncrTransfer        bool               `json:"enableIncrTransfer"`
	EnableReverseIncrTransfer bool               `json:"enableReverseIncrTransfer"`
	IncrTransferConfig        *v4IncrConfig      `json:"incrTransferConfig"`
}

type v4TransferMapping struct {
	Mode                  string       `json:"mode"`
	Databases             []v4Database `json:"databases"`
	DatabasesBlack        []v4Database `json:"databasesBlack"`
	TableAndViewWhiteList []string     `json:"tableAndViewWhiteList"`
	TableAndViewBlackList []string     `json:"tableAndViewBlackList"`
}

type v4Database struct {
	Name       string    `json:"name"`
	MappedName string    `json:"mappedName"`
	Tables     []v4Table `json:"tables"`
	Views      []v4Table `json:"views"`
}

type v4Table struct {
	Name          string   `json:"name"`
	MappedName    string   `json:"mappedName"`
	WhereClause   string   `json:"whereClause"`
	FilterColumns []string `json:"filterColumns"`
	ShardColumns  []string `json:"shardColumns"`
}

type v4CommonConfig struct {
	TableCategory string `json:"tableCategory"`
	ActiveActive  bool   `json:"activeActive"`
}

type v4StructConfig struct {
	ByteCharConvertStrategy string `json:"byteCharConvertStrategy"`
	DeferIndexCreation      bool   `json:"deferIndexCreation"`
}

type v4FullConfig struct {
	ReadWorkerNum            int    `json:"readWorkerNum"`
	WriteWorkerNum           int    `json:"writeWorkerNum"`
	ThrottleRps              int    `json:"throttleRps"`
	ThrottleIOPS             int    `json:"throttleIOPS"`
	AllowDestTableNotEmpty   bool   `json:"allowDestTableNotEmpty"`
	FullTransferSpeedMode    string `json:"fullTransferSpeedMode"`
	FullVerifySpeedMode      string `json:"fullVerifySpeedMode"`
	NonePkUkTruncateDstTable bool   `json:"nonePkUkTruncateDstTable"`
}

type v4IncrConfig struct {
	StartTimestamp           json.RawMessage `json:"startTimestamp"`
	RecordTypeWhiteList      []string        `json:"recordTypeWhiteList"`
	StoreLogKeptHour         int             `json:"storeLogKeptHour"`
	EnableIncrSyncStatistics bool            `json:"enableIncrSyncStatistics"`
	IncrSyncConcurrency      int             `json:"incrSyncConcurrency"`
	SupportDDLTypes          []string        `json:"supportDDLTypes"`
	ThrottleRps              int             `json:"throttleRps"`
	ThrottleIOPS             int             `json:"throttleIOPS"`
}

func notBuilt(field, what string) error {
	return &ferry.Error{Code: ferry.ENOTIMPLEMENTED, Field: field, Reason: "NOT_SUPPORTED",
		Message: what + " is not supported by ferry", Advice: "leave " + field + " unset"}
}

// toV2 checks a V4 create body and maps it to the V2 request the dialect
// already maps to a job, plus the options V4 adds.
func (req *v4CreateRequest) toMigration(projectID string) (*ferry.Migration, error) {
	v2 := createRequest{
		Name: req.Name, Type: req.Type,
		SourceEndpointID: req.SourceEndpointID, SinkEndpointID: req.SinkEndpointID,
		EnableStructMigration: req.EnableStructTransfer, EnableFullMigration: req.EnableFullTransfer,
		EnableIncrSync: req.EnableIncrTransfer, EnableReverseIncrSync: req.EnableReverseIncrTransfer,
		EnableFullVerify: req.EnableFullVerify,
	}
	if req.SourceEndpointID == "" {
		return nil, ferry.FieldError("sourceEndpointId", "is required (the id of a registered MySQL-family endpoint)")
	}
	if req.SinkEndpointID == "" {
		return nil, ferry.FieldError("sinkEndpointId", "is required (the id of a registered MySQL-family endpoint)")
	}
	if len(req.LabelIDs) > 5 {
		return nil, ferry.FieldError("labelIds", "at most five label ids, not %d", len(req.LabelIDs))
	}
	for i, l := range req.LabelIDs {
		if strings.TrimSpace(l) == "" || strings.Contains(l, ",") {
			return nil, ferry.FieldError(fmt.Sprintf("labelIds[%d]", i), "must be a non-empty id without commas")
		}
	}
	if !req.EnableStructTransfer && !req.EnableFullTransfer && !req.EnableIncrTransfer {
		return nil, ferry.FieldError("enableStructTransfer", "enable at least one of enableStructTransfer, enableFullTransfer, enableIncrTransfer")
	}
	var opts ferry.Options
	if c := req.CommonTransferConfig; c != nil {
		switch c.TableCategory {
		case "", "ALL":
		case "WITH_UNIQUE_ROW_ID", "WITHOUT_UNIQUE_ROW_ID":
			return nil, notBuilt("commonTransferConfig.tableCategory", "selecting tables by category "+c.TableCategory)
		default:
			return nil, ferry.FieldError("commonTransferConfig.tableCategory", "unknown table category %q (ALL, WITH_UNIQUE_ROW_ID, WITHOUT_UNIQUE_ROW_ID)", c.TableCategory)
		}
		if c.ActiveActive {
			return nil, notBuilt("commonTransferConfig.activeActive", "active-active disaster recovery")
		}
	}
	if c := req.StructTransferConfig; c != nil {
		if c.ByteCharConvertStrategy != "" {
			return nil, notBuilt("structTransferConfig.byteCharConvertStrategy", "an Oracle byte/char conversion strategy")
		}
		if c.DeferIndexCreation {
			return nil, notBuilt("structTransferConfig.deferIndexCreation", "deferring index creation after the full copy")
		}
	}
	par := 0
	setPar := func(field string, n int) error {
		if n < 0 || n > 256 {
			return ferry.FieldError(field, "must be between 0 and 256, not %d", n)
		}
		if n > par {
			par = n
		}
		return nil
	}
	if c := req.FullTransferConfig; c != nil {
		if err := setPar("fullTransferConfig.readWorkerNum", c.ReadWorkerNum); err != nil {
			return nil, err
		}
		if err := setPar("fullTransferConfig.writeWorkerNum", c.WriteWorkerNum); err != nil {
			return nil, err
		}
		if c.ThrottleRps != 0 {
			return nil, notBuilt("fullTransferConfig.throttleRps", "a rows-per-second throttle")
		}
		if c.ThrottleIOPS != 0 {
			return nil, notBuilt("fullTransferConfig.throttleIOPS", "an IOPS throttle")
		}
		if c.AllowDestTableNotEmpty {
			opts.Conflict = ferry.ConflictReplace
		}
		for field, mode := range map[string]string{"fullTransferConfig.fullTransferSpeedMode": c.FullTransferSpeedMode, "fullTransferConfig.fullVerifySpeedMode": c.FullVerifySpeedMode} {
			switch mode {
			case "", "NORMAL":
			case "STEADY", "FAST":
				return nil, notBuilt(field, "speed mode "+mode+" (give readWorkerNum/writeWorkerNum instead)")
			default:
				return nil, ferry.FieldError(field, "unknown speed mode %q (STEADY, NORMAL, FAST)", mode)
			}
		}
		if c.NonePkUkTruncateDstTable {
			return nil, notBuilt("fullTransferConfig.nonePkUkTruncateDstTable", "truncating key-less target tables")
		}
	}
	if c := req.IncrTransferConfig; c != nil {
		if ts := strings.Trim(strings.TrimSpace(string(c.StartTimestamp)), `"`); ts != "" && ts != "null" && ts != "0" {
			return nil, notBuilt("incrTransferConfig.startTimestamp", "starting incremental sync at a given time")
		}
		if len(c.RecordTypeWhiteList) > 0 {
			seen := map[string]bool{}
			for i, t := range c.RecordTypeWhiteList {
				switch t {
				case "INSERT", "UPDATE", "DELETE":
					seen[t] = true
				default:
					return nil, ferry.FieldError(fmt.Sprintf("incrTransferConfig.recordTypeWhiteList[%d]", i), "unknown record type %q (INSERT, UPDATE, DELETE)", t)
				}
			}
			if len(seen) != 3 {
				return nil, notBuilt("incrTransferConfig.recordTypeWhiteList", "syncing only some record types")
			}
		}
		if c.StoreLogKeptHour != 0 {
			return nil, notBuilt("incrTransferConfig.storeLogKeptHour", "an incremental log store (ferry reads the binlog directly)")
		}
		if c.EnableIncrSyncStatistics {
			return nil, notBuilt("incrTransferConfig.enableIncrSyncStatistics", "incremental sync statistics")
		}
		if len(c.SupportDDLTypes) > 0 {
			return nil, notBuilt("incrTransferConfig.supportDDLTypes", "choosing which DDL types incremental sync applies")
		}
		if c.ThrottleRps != 0 {
			return nil, notBuilt("incrTransferConfig.throttleRps", "a rows-per-second throttle")
		}
		if c.ThrottleIOPS != 0 {
			return nil, notBuilt("incrTransferConfig.throttleIOPS", "an IOPS throttle")
		}
		if err := setPar("incrTransferConfig.incrSyncConcurrency", c.IncrSyncConcurrency); err != nil {
			return nil, err
		}
	}
	if tm := req.TransferMapping; tm != nil {
		v2.TransferMapping = &transferMapping{Mode: tm.Mode, TableAndViewWhiteList: tm.TableAndViewWhiteList, TableAndViewBlackList: tm.TableAndViewBlackList}
		conv := func(field string, dbs []v4Database) ([]databaseIn, error) {
			var out []databaseIn
			for i, db := range dbs {
				fld := fmt.Sprintf("transferMapping.%s[%d]", field, i)
				if len(db.Views) > 0 {
					return nil, notBuilt(fld+".views", "migrating views one by one")
				}
				d := databaseIn{Name: db.Name, MappedName: db.MappedName}
				for j, tb := range db.Tables {
					tf := fmt.Sprintf("%s.tables[%d]", fld, j)
					if strings.TrimSpace(tb.WhereClause) != "" {
						return nil, notBuilt(tf+".whereClause", "a row filter")
					}
					if len(tb.FilterColumns) > 0 {
						return nil, notBuilt(tf+".filterColumns", "a column filter")
					}
					if len(tb.ShardColumns) > 0 {
						return nil, notBuilt(tf+".shardColumns", "shard columns")
					}
					d.Tables = append(d.Tables, tableIn{Name: tb.Name, MappedName: tb.MappedName})
				}
				out = append(out, d)
			}
			return out, nil
		}
		var err error
		if v2.TransferMapping.Databases, err = conv("databases", tm.Databases); err != nil {
			return nil, err
		}
		if v2.TransferMapping.DatabasesBlack, err = conv("databasesBlack", tm.DatabasesBlack); err != nil {
			return nil, err
		}
	}
	m, err := v2.toMigration(projectID)
	if err != nil {
		return nil, err
	}
	m.Options.Parallelism = par
	m.Options.Conflict = opts.Conflict
	if req.TransferMapping != nil {
		raw, err := json.Marshal(req.TransferMapping)
		if err != nil {
			return nil, err
		}
		m.Labels[labelTransferMapping] = string(raw)
	}
	if len(req.LabelIDs) > 0 {
		m.Labels[labelLabelIDs] = strings.Join(req.LabelIDs, ",")
	}
	return m, nil
}

func (h *handler) v4Create(ctx context.Context, r *http.Request, body []byte) (any, *page, error) {
	var req v4CreateRequest
	if err := decodeStrict(body, &req, "CreateProject"); err != nil {
		return nil, nil, err
	}
	m, err := req.toMigration("")
	if err != nil {
		return nil, nil, err
	}
	if m.ProjectID, err = h.v4CreateTenant(ctx, r, req.SourceEndpointID); err != nil {
		return nil, nil, err
	}
	if err := h.svc.CreateMigration(ctx, m, false); err != nil {
		return nil, nil, err
	}
	return map[string]string{"id": m.ID}, nil, nil
}

// v4CreateTenant: the query's projectId, a GROUP_* key's project, or the
// project of the registered source endpoint.
func (h *handler) v4CreateTenant(ctx context.Context, r *http.Request, sourceEndpointID string) (string, error) {
	q := r.URL.Query()
	if q.Get("projectId") != "" || q.Get("groupId") != "" {
		return tenant(ctx, r, "")
	}
	if p := ferry.PrincipalFrom(ctx); p != nil && p.ProjectID != "" {
		return p.ProjectID, nil
	}
	if ferry.ValidID(sourceEndpointID) {
		return h.svc.EndpointProject(ctx, sourceEndpointID)
	}
	return "", &ferry.Error{Code: ferry.EINVALID, Field: "sourceEndpointId", Reason: "PROJECT_REQUIRED",
		Message: "an organization key must give a registered endpoint's id (or ?projectId=) so ferry knows the project",
		Advice:  "give sourceEndpointId as the endpoint's 24-hex id, add ?projectId=<ferry project id>, or use a project (GROUP_*) key"}
}

// ---- ListProjects ----

type v4ListRequest struct {
	SearchKey           string   `json:"searchKey"`
	Types               []string `json:"types"`
	Statuses            []string `json:"statuses"`
	LabelIDs            []string `json:"labelIds"`
	SourceEndpointTypes []string `json:"sourceEndpointTypes"`
	SinkEndpointTypes   []string `json:"sinkEndpointTypes"`
	SortField           string   `json:"sortField"`
	Order               string   `json:"order"`
	PageNumber          int      `json:"pageNumber"`
	PageSize            int      `json:"pageSize"`
	NeedRelatedInfo     bool     `json:"needRelatedInfo"`
}

func (h *handler) v4List(ctx context.Context, r *http.Request, body []byte) (any, *page, error) {
	var req v4ListRequest
	if err := decodeStrict(body, &req, "ListProjects"); err != nil {
		return nil, nil, err
	}
	number, size := req.PageNumber, req.PageSize
	if number == 0 {
		number = 1
	}
	if size == 0 {
		size = DefaultPageSize
	}
	if number < 1 || number > 1<<30 {
		return nil, nil, ferry.FieldError("pageNumber", "must be at least 1, not %d", req.PageNumber)
	}
	if size < 1 || size > MaxPageSize {
		return nil, nil, ferry.FieldError("pageSize", "must be between 1 and %d, not %d", MaxPageSize, req.PageSize)
	}
	f := ferry.MigrationFilter{Engine: ferry.KindMySQL}
	for i, st := range req.Statuses {
		states, ok := statesOf[st]
		if !ok {
			return nil, nil, ferry.FieldError(fmt.Sprintf("statuses[%d]", i), "unknown status %q (INIT, RUNNING, SUSPEND, FAILED, FINISHED, RELEASING, RELEASED, DELETED)", st)
		}
		f.States = append(f.States, states...)
	}
	for i, t := range req.Types {
		switch t {
		case "MIGRATION", "SYNC":
		default:
			return nil, nil, ferry.FieldError(fmt.Sprintf("types[%d]", i), "unknown project type %q (MIGRATION, SYNC)", t)
		}
	}
	switch req.SortField {
	case "", "gmtCreate", "gmtModified", "name":
	default:
		return nil, nil, ferry.FieldError("sortField", "unknown sort field %q (gmtCreate, gmtModified, name)", req.SortField)
	}
	desc := true
	switch strings.ToLower(req.Order) {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return nil, nil, ferry.FieldError("order", "must be asc or desc, not %q", req.Order)
	}
	var jobs []*ferry.Migration
	var err error
	q := r.URL.Query()
	if q.Get("projectId") != "" || q.Get("groupId") != "" {
		var projectID string
		if projectID, err = tenant(ctx, r, ""); err != nil {
			return nil, nil, err
		}
		f.ProjectID = projectID
		jobs, _, err = h.svc.ListMigrations(ctx, f, ferry.AccessRead)
	} else {
		jobs, _, err = h.svc.ListVisibleMigrations(ctx, f, ferry.AccessRead)
	}
	if err != nil {
		return nil, nil, err
	}
	in := func(v string, set []string) bool {
		if len(set) == 0 {
			return true
		}
		for _, s := range set {
			if strings.EqualFold(s, v) {
				return true
			}
		}
		return false
	}
	var out []v4ProjectView
	for _, m := range jobs {
		if len(req.Types) > 0 && !in("MIGRATION", req.Types) {
			continue // ferry has no SYNC projects
		}
		if k := strings.ToLower(strings.TrimSpace(req.SearchKey)); k != "" && !strings.Contains(strings.ToLower(m.Name), k) && m.ID != req.SearchKey {
			continue
		}
		v := v4ProjectOf(m, false)
		if !in(v.SourceEndpointType, req.SourceEndpointTypes) || !in(v.SinkEndpointType, req.SinkEndpointTypes) {
			continue
		}
		if len(req.LabelIDs) > 0 {
			ok := false
			for _, l := range v.Labels {
				ok = ok || in(l.ID, req.LabelIDs)
			}
			if !ok {
				continue
			}
		}
		out = append(out, v)
	}
	less := func(a, b v4ProjectView) bool {
		switch req.SortField {
		case "name":
			return a.Name < b.Name
		case "gmtModified":
			return a.modified.Before(b.modified)
		}
		return a.created.Before(b.created)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if desc {
			return less(out[j], out[i])
		}
		return less(out[i], out[j])
	})
	total := len(out)
	from := (number - 1) * size
	if from > len(out) {
		from = len(out)
	}
	to := min(from+size, len(out))
	if !req.NeedRelatedInfo {
		for i := range out {
			out[i].SourceConnectInfo, out[i].SinkConnectInfo = nil, nil
		}
	}
	return append([]v4ProjectView{}, out[from:to]...), &page{number: number, size: size, total: total}, nil
}

// ---- views ----

// V4StepName maps a ferry step to the V4 step name: precheck PRE_CHECK,
// schema STRUCT_TRANSFER, full FULL_TRANSFER, incremental INCR_TRANSFER,
// verify FULL_VERIFIER, cutover APP_SWITCH, reverse_incremental
// REVERSE_INCR_TRANSFER.
func V4StepName(n ferry.StepName) string {
	switch n {
	case ferry.StepPrecheck:
		return "PRE_CHECK"
	case ferry.StepSchema:
		return "STRUCT_TRANSFER"
	case ferry.StepFull:
		return "FULL_TRANSFER"
	case ferry.StepIncremental:
		return "INCR_TRANSFER"
	case ferry.StepCutover:
		return "APP_SWITCH"
	case ferry.StepVerify:
		return "FULL_VERIFIER"
	case ferry.StepReverseIncremental:
		return "REVERSE_INCR_TRANSFER"
	}
	return strings.ToUpper(string(n))
}

// v4ProgressView is DescribeProjectProgress' data, field for field.
type v4ProgressView struct {
	ProjectID                     string `json:"projectId"`
	Status                        string `json:"status"`
	AlarmLevel                    string `json:"alarmLevel"`
	EnableIncrSync                bool   `json:"enableIncrSync"`
	CurrentStep                   string `json:"currentStep"`
	IncrSyncCheckpoint            int64  `json:"incrSyncCheckpoint"`
	EnableStructTransfer          bool   `json:"enableStructTransfer"`
	EnableFullTransfer            bool   `json:"enableFullTransfer"`
	StructTransferProgress        int    `json:"structTransferProgress"`
	FullTransferProgress          int    `json:"fullTransferProgress"`
	EnableReverseIncrTransfer     bool   `json:"enableReverseIncrTransfer"`
	ReverseIncrTransferCheckpoint int64  `json:"reverseIncrTransferCheckpoint"`
}

func v4CurrentStep(m *ferry.Migration) string {
	if m.CurrentStep == "" {
		return ""
	}
	return V4StepName(m.CurrentStep)
}

func v4ProgressOf(m *ferry.Migration) v4ProgressView {
	return v4ProgressView{
		ProjectID:                     m.ID,
		Status:                        Status(m.State),
		AlarmLevel:                    importance(m),
		EnableIncrSync:                m.Modes.Incremental,
		CurrentStep:                   v4CurrentStep(m),
		IncrSyncCheckpoint:            checkpoint(m, ferry.StepIncremental),
		EnableStructTransfer:          m.Modes.Schema,
		EnableFullTransfer:            m.Modes.Full,
		StructTransferProgress:        stepPercent(m, ferry.StepSchema),
		FullTransferProgress:          stepPercent(m, ferry.StepFull),
		EnableReverseIncrTransfer:     m.Modes.ReverseIncremental,
		ReverseIncrTransferCheckpoint: checkpoint(m, ferry.StepReverseIncremental),
	}
}

type v4StepView struct {
	Order       int         `json:"order"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Status      string      `json:"status"`
	ExtraInfo   v4ExtraInfo `json:"extraInfo"`
	StartTime   *string     `json:"startTime"`
	FinishTime  *string     `json:"finishTime"`
	Progress    int         `json:"progress"`
	StepInfo    stepInfo    `json:"stepInfo"`
}

type v4ExtraInfo struct {
	ErrorDetails []errorDetail     `json:"errorDetails"`
	ErrorCode    *string           `json:"errorCode"`
	ErrorMsg     *string           `json:"errorMsg"`
	ErrorParam   map[string]string `json:"errorParam"`
	FailedTime   *string           `json:"failedTime"`
}

func v4StepsOf(m *ferry.Migration) []v4StepView {
	v2 := stepsOf(m)
	out := make([]v4StepView, 0, len(v2))
	for i, s := range v2 {
		st := &m.Steps[i]
		v := v4StepView{Order: s.Order, Name: V4StepName(st.Name), Description: s.Description, Status: s.Status,
			StartTime: s.StartTime, FinishTime: s.FinishTime, Progress: s.Progress, StepInfo: s.StepInfo,
			ExtraInfo: v4ExtraInfo{ErrorDetails: []errorDetail{}, ErrorParam: map[string]string{}}}
		if s.ExtraInfo.ErrorMsg != "" {
			msg, code := s.ExtraInfo.ErrorMsg, "STEP_FAILED"
			v.ExtraInfo.ErrorMsg, v.ExtraInfo.ErrorCode = &msg, &code
			v.ExtraInfo.FailedTime = omsTime(st.FinishedAt)
			v.ExtraInfo.ErrorDetails = append(v.ExtraInfo.ErrorDetails, errorDetail{Code: code, Level: "ERROR", Message: msg})
		}
		out = append(out, v)
	}
	return out
}

type v4Label struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type v4ConnectInfo struct {
	EndpointID   string `json:"endpointId"`
	EndpointName string `json:"endpointName"`
	EndpointSide string `json:"endpointSide"`
	DBEngine     string `json:"dbEngine"`
	IP           string `json:"ip"`
	Port         int    `json:"port"`
	Username     string `json:"username"`
}

// v4ProjectView is a V4 project (ListProjects item; DescribeProject adds
// steps).
type v4ProjectView struct {
	ID                        string          `json:"id"`
	Name                      string          `json:"name"`
	Type                      string          `json:"type"`
	Status                    string          `json:"status"`
	Labels                    []v4Label       `json:"labels"`
	Importance                string          `json:"importance"`
	IsMerging                 bool            `json:"isMerging"`
	IsModifying               bool            `json:"isModifying"`
	IsSubProject              bool            `json:"isSubProject"`
	GmtCreate                 *string         `json:"gmtCreate"`
	GmtModified               *string         `json:"gmtModified"`
	GmtStart                  *string         `json:"gmtStart"`
	GmtFinish                 *string         `json:"gmtFinish"`
	SourceEndpointType        string          `json:"sourceEndpointType"`
	SinkEndpointType          string          `json:"sinkEndpointType"`
	TransferMapping           json.RawMessage `json:"transferMapping"`
	CommonTransferConfig      v4CommonConfig  `json:"commonTransferConfig"`
	EnableStructTransfer      bool            `json:"enableStructTransfer"`
	EnableFullTransfer        bool            `json:"enableFullTransfer"`
	EnableFullVerify          bool            `json:"enableFullVerify"`
	FullTransferConfig        v4FullConfig    `json:"fullTransferConfig"`
	EnableIncrTransfer        bool            `json:"enableIncrTransfer"`
	EnableReverseIncrTransfer bool            `json:"enableReverseIncrTransfer"`
	IncrTransferConfig        v4IncrConfigOut `json:"incrTransferConfig"`
	SourceConnectInfo         *v4ConnectInfo  `json:"sourceConnectInfo,omitempty"`
	SinkConnectInfo           *v4ConnectInfo  `json:"sinkConnectInfo,omitempty"`
	ExtraInfo                 v4ProjectExtra  `json:"extraInfo"`
	Steps                     []v4StepView    `json:"steps,omitempty"`

	created, modified time.Time // for sorting at full precision
}

type v4IncrConfigOut struct {
	IncrSyncConcurrency int `json:"incrSyncConcurrency"`
}

type v4ProjectExtra struct {
	ErrorMessage string `json:"errorMessage"`
	// CurrentStep is V4's step name of the job's current step.
	CurrentStep string `json:"currentStep"`
}

func connectInfo(e ferry.Endpoint, side, typ string) *v4ConnectInfo {
	ev := endpointOf(e, typ)
	return &v4ConnectInfo{EndpointID: e.ID, EndpointName: e.Name, EndpointSide: side, DBEngine: ev.Type, IP: ev.Host, Port: ev.Port, Username: ev.UserName}
}

func v4ProjectOf(m *ferry.Migration, detail bool) v4ProjectView {
	v2 := projectOf(m, false)
	v := v4ProjectView{
		ID: m.ID, Name: m.Name, Type: "MIGRATION", Status: v2.Status, Labels: []v4Label{}, Importance: v2.Importance,
		GmtCreate: v2.GmtCreate, GmtModified: v2.GmtModified, GmtStart: v2.GmtStart, GmtFinish: v2.GmtFinish,
		SourceEndpointType: v2.Source.Type, SinkEndpointType: v2.Sink.Type, TransferMapping: v2.TransferMapping,
		CommonTransferConfig: v4CommonConfig{TableCategory: "ALL"},
		EnableStructTransfer: m.Modes.Schema, EnableFullTransfer: m.Modes.Full, EnableFullVerify: m.Modes.Verify,
		FullTransferConfig: v4FullConfig{ReadWorkerNum: m.Options.Parallelism, WriteWorkerNum: m.Options.Parallelism,
			AllowDestTableNotEmpty: m.Options.Conflict == ferry.ConflictReplace, FullTransferSpeedMode: "NORMAL", FullVerifySpeedMode: "NORMAL"},
		EnableIncrTransfer: m.Modes.Incremental, EnableReverseIncrTransfer: m.Modes.ReverseIncremental,
		IncrTransferConfig: v4IncrConfigOut{IncrSyncConcurrency: m.Options.Parallelism},
		SourceConnectInfo:  connectInfo(m.Source, "SOURCE", m.Labels[labelSourceType]),
		SinkConnectInfo:    connectInfo(m.Target, "SINK", m.Labels[labelSinkType]),
		ExtraInfo:          v4ProjectExtra{ErrorMessage: m.Error, CurrentStep: v4CurrentStep(m)},
		created:            m.CreatedAt,
		modified:           m.UpdatedAt,
	}
	if ids := m.Labels[labelLabelIDs]; ids != "" {
		for _, id := range strings.Split(ids, ",") {
			v.Labels = append(v.Labels, v4Label{ID: id, Name: id})
		}
	}
	if detail {
		v.Steps = v4StepsOf(m)
	}
	return v
}
