package dcs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// Label keys under which a job created by this dialect keeps the DCS request
// fields it echoes (Migration.Labels) ...
const (
	labelMigrationType    = "dcs.migration_type"
	labelNetworkType      = "dcs.network_type"
	labelVpcID            = "dcs.tenant_vpc_id"
	labelSubnetID         = "dcs.tenant_subnet_id"
	labelSecurityGroupID  = "dcs.tenant_security_group_id"
	labelSourceID         = "dcs.source.id"
	labelSourceName       = "dcs.source.name"
	labelSourceMultiDB    = "dcs.source.proxy_multi_db"
	labelTargetID         = "dcs.target.id"
	labelTargetName       = "dcs.target.name"
	labelTargetMultiDB    = "dcs.target.proxy_multi_db"
	labelEcsTenantPrivate = "dcs.ecs_tenant_private_ip"
)

// DCS enums.
const (
	typeBackupImport = "backupfile_import"
	typeOnline       = "online_migration"
	methodFull       = "full_amount_migration"
	methodIncr       = "incremental_migration"
)

// flexString is a string field DCS clients send as a string or a number
// ("6379" or 6379).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return &json.UnmarshalTypeError{Value: "non-string", Type: stringType}
	}
	*f = flexString(n.String())
	return nil
}

var stringType = reflect.TypeOf("")

// createRequest is DCS's CreateMigrationTaskBody, plus the online-migration
// settings DCS configures separately (resume_mode, bandwidth_limit_mb and the
// tenant network ids), accepted here in the same call.
type createRequest struct {
	TaskName              string       `json:"task_name"`
	Description           string       `json:"description"`
	MigrationType         string       `json:"migration_type"`
	MigrationMethod       string       `json:"migration_method"`
	ResumeMode            string       `json:"resume_mode"`
	BandwidthLimitMB      flexString   `json:"bandwidth_limit_mb"`
	NetworkType           string       `json:"network_type"`
	TenantVpcID           string       `json:"tenant_vpc_id"`
	TenantSubnetID        string       `json:"tenant_subnet_id"`
	TenantSecurityGroupID string       `json:"tenant_security_group_id"`
	BackupFiles           *backupFiles `json:"backup_files"`
	SourceInstance        *instanceIn  `json:"source_instance"`
	TargetInstance        *instanceIn  `json:"target_instance"`
}

// backupFiles is DCS's BackupFilesBody.
type backupFiles struct {
	FileSource string     `json:"file_source"`
	BucketName string     `json:"bucket_name"`
	Files      []fileBody `json:"files"`
	BackupID   string     `json:"backup_id"`
}

// fileBody is DCS's Files object.
type fileBody struct {
	FileName string     `json:"file_name"`
	Size     flexString `json:"size"`
	UpdateAt string     `json:"update_at"`
}

// instanceIn is DCS's Source/TargetInstanceBody as a request.
type instanceIn struct {
	Addrs        string     `json:"addrs"`
	Password     string     `json:"password"`
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	IP           string     `json:"ip"`
	Port         flexString `json:"port"`
	DB           flexString `json:"db"`
	ProxyMultiDB bool       `json:"proxy_multi_db"`
}

// deleteRequest is DCS's DeleteMigrateTaskRequest.
type deleteRequest struct {
	TaskIDList []string `json:"task_id_list"`
}

// decodeBody reads a JSON body into v (see decodeBytes).
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.Contains(strings.ToLower(ct), "json") {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "UNSUPPORTED_MEDIA_TYPE", Message: fmt.Sprintf("The request body must be JSON (Content-Type: application/json), not %q.", ct)}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return httpauth.BodyError(err, MaxBodyBytes)
	}
	return decodeBytes(body, v)
}

// decodeBytes reads a JSON body into v. Malformed JSON, wrong types,
// trailing data, an empty body and bodies over MaxBodyBytes are EINVALID
// errors naming the problem; unknown fields are ignored.
func decodeBytes(body []byte, v any) error {
	if len(body) > MaxBodyBytes {
		return httpauth.TooLarge(MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "EMPTY_BODY", Message: "Empty request body."}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "The message body contains data after the JSON value."}
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("The message body is not in JSON format (byte %d: %s).", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		if typ.Field == "" {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("The message body must be a JSON object, not %s.", typ.Value)}
		}
		return &ferry.Error{Code: ferry.EINVALID, Field: typ.Field, Reason: "INVALID_TYPE", Message: fmt.Sprintf("invalid type: %s is not allowed here.", typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "The message body is truncated JSON."}
	}
	return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "The message body is not in JSON format: " + err.Error()}
}

// parseCreate decodes a create body and maps it to a Redis job of project
// projectID (the fuzzed decoder).
func parseCreate(body []byte, projectID string) (*ferry.Migration, error) {
	var req createRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, err
	}
	return req.toMigration(projectID)
}

func (req *createRequest) toMigration(projectID string) (*ferry.Migration, error) {
	if strings.TrimSpace(req.TaskName) == "" {
		return nil, ferry.FieldError("task_name", "is mandatory.")
	}
	if len(req.TaskName) > 64 {
		return nil, ferry.FieldError("task_name", "must be at most 64 characters.")
	}
	m := &ferry.Migration{
		ProjectID:   projectID,
		Name:        req.TaskName,
		Description: req.Description,
		Engine:      ferry.KindRedis,
		Dialect:     "dcs",
		Labels:      map[string]string{labelMigrationType: req.MigrationType},
		Options:     ferry.Options{Extra: map[string]string{}},
	}
	switch req.MigrationMethod {
	case methodFull:
		m.Modes = ferry.Modes{Full: true, Verify: true}
	case methodIncr:
		// DCS's incremental migration is a full copy followed by sync;
		// ferry verifies source and target key by key at the end of both.
		m.Modes = ferry.Modes{Full: true, Incremental: true, Verify: true}
	case "":
		return nil, ferry.FieldError("migration_method", "is mandatory (full_amount_migration or incremental_migration).")
	default:
		return nil, ferry.FieldError("migration_method", "unknown value %q (full_amount_migration or incremental_migration).", req.MigrationMethod)
	}
	switch req.ResumeMode {
	case "", "auto", "manual":
		m.Options.ResumeMode = ferry.ResumeMode(req.ResumeMode)
	default:
		return nil, ferry.FieldError("resume_mode", "unknown value %q (auto or manual).", req.ResumeMode)
	}
	if req.BandwidthLimitMB != "" {
		n, err := strconv.Atoi(string(req.BandwidthLimitMB))
		if err != nil || n < 0 {
			return nil, ferry.FieldError("bandwidth_limit_mb", "must be a non-negative integer number of MB/s, not %q.", string(req.BandwidthLimitMB))
		}
		m.Options.BandwidthLimitMB = n
	}
	switch req.NetworkType {
	case "", "vpc", "vpn":
	default:
		return nil, ferry.FieldError("network_type", "unknown value %q (vpc or vpn).", req.NetworkType)
	}
	for k, v := range map[string]string{labelNetworkType: req.NetworkType, labelVpcID: req.TenantVpcID, labelSubnetID: req.TenantSubnetID, labelSecurityGroupID: req.TenantSecurityGroupID} {
		if v != "" {
			m.Labels[k] = v
		}
	}
	var err error
	switch req.MigrationType {
	case typeOnline:
		if req.BackupFiles != nil {
			return nil, ferry.FieldError("backup_files", "is only for migration_type backupfile_import.")
		}
		if req.SourceInstance == nil {
			return nil, ferry.FieldError("source_instance", "is mandatory for online_migration.")
		}
		if m.Source, err = instance("source_instance", req.SourceInstance, m.Labels, labelSourceID, labelSourceName, labelSourceMultiDB); err != nil {
			return nil, err
		}
	case typeBackupImport:
		if req.MigrationMethod == methodIncr {
			return nil, ferry.FieldError("migration_method", "a backup file import is a full_amount_migration.")
		}
		if req.SourceInstance != nil {
			return nil, ferry.FieldError("source_instance", "is only for migration_type online_migration.")
		}
		if err := req.BackupFiles.extra(m.Options.Extra); err != nil {
			return nil, err
		}
	case "":
		return nil, ferry.FieldError("migration_type", "is mandatory (backupfile_import or online_migration).")
	default:
		return nil, ferry.FieldError("migration_type", "unknown value %q (backupfile_import or online_migration).", req.MigrationType)
	}
	if req.TargetInstance == nil {
		return nil, ferry.FieldError("target_instance", "is mandatory.")
	}
	if m.Target, err = instance("target_instance", req.TargetInstance, m.Labels, labelTargetID, labelTargetName, labelTargetMultiDB); err != nil {
		return nil, err
	}
	return m, nil
}

// extra stores a backup import's files in the job's engine settings, as
// the Redis engine's typed backup spec.
func (b *backupFiles) extra(x map[string]string) error {
	if b == nil {
		return ferry.FieldError("backup_files", "is mandatory for backupfile_import.")
	}
	switch b.FileSource {
	case config.SourceBucket:
		if b.BucketName == "" {
			return ferry.FieldError("backup_files.bucket_name", "is mandatory when file_source is self_build_obs.")
		}
		if len(b.Files) == 0 {
			return ferry.FieldError("backup_files.files", "is mandatory when file_source is self_build_obs.")
		}
	case config.SourceRecord:
		if b.BackupID == "" {
			return ferry.FieldError("backup_files.backup_id", "is mandatory when file_source is backup_record.")
		}
	case "":
		return ferry.FieldError("backup_files.file_source", "is mandatory (self_build_obs or backup_record).")
	default:
		return ferry.FieldError("backup_files.file_source", "unknown value %q (self_build_obs or backup_record).", b.FileSource)
	}
	spec := config.Backup{FileSource: b.FileSource, Bucket: b.BucketName, ID: b.BackupID}
	for i, f := range b.Files {
		if strings.TrimSpace(f.FileName) == "" {
			return ferry.FieldError(fmt.Sprintf("backup_files.files[%d].file_name", i), "is mandatory.")
		}
		size := int64(-1)
		if f.Size != "" {
			n, err := strconv.ParseInt(string(f.Size), 10, 64)
			if err != nil || n < 0 {
				return ferry.FieldError(fmt.Sprintf("backup_files.files[%d].size", i), "must be a non-negative number of bytes, not %q.", string(f.Size))
			}
			size = n
		}
		spec.Files = append(spec.Files, config.BackupFile{Name: f.FileName, Size: size, UpdateAt: f.UpdateAt})
	}
	return spec.Encode(x)
}

// instance maps a source or target instance to a Redis endpoint: addrs
// ("host:port", comma separated), else ip and port; without an address, the
// id (or name) names an endpoint registered in the project, which the
// service resolves. The DCS id and name are kept in labels for echo.
func instance(field string, in *instanceIn, labels map[string]string, idKey, nameKey, multiKey string) (ferry.Endpoint, error) {
	e := ferry.Endpoint{Kind: ferry.KindRedis, Password: in.Password, Database: string(in.DB)}
	if e.Database != "" {
		if n, err := strconv.Atoi(e.Database); err != nil || n < 0 {
			return e, ferry.FieldError(field+".db", "must be a Redis database number, not %q.", e.Database)
		}
	}
	for _, a := range strings.Split(in.Addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return e, ferry.FieldError(field+".addrs", "bad address %q (want host:port, comma separated).", a)
		}
		e.Addrs = append(e.Addrs, a)
	}
	if len(e.Addrs) == 0 && in.IP != "" {
		if in.Port == "" {
			return e, ferry.FieldError(field+".port", "is mandatory with ip.")
		}
		e.Addrs = []string{net.JoinHostPort(in.IP, string(in.Port))}
	}
	if len(e.Addrs) == 0 {
		switch {
		case in.ID != "":
			e.Name = in.ID
		case in.Name != "":
			e.Name = in.Name
		default:
			return e, ferry.FieldError(field+".addrs", "is mandatory (or the id of an instance registered as a ferry endpoint).")
		}
	} else {
		e.Name = in.Name
	}
	if in.ID != "" {
		labels[idKey] = in.ID
	}
	if in.Name != "" {
		labels[nameKey] = in.Name
	}
	if in.ProxyMultiDB {
		labels[multiKey] = "true"
	}
	return e, nil
}

// parseDelete decodes a batch delete body (the fuzzed decoder).
func parseDelete(body []byte) ([]string, error) {
	var req deleteRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, err
	}
	if len(req.TaskIDList) == 0 {
		return nil, ferry.FieldError("task_id_list", "is mandatory and must not be empty.")
	}
	if len(req.TaskIDList) > 100 {
		return nil, ferry.FieldError("task_id_list", "at most 100 tasks per call.")
	}
	seen := map[string]bool{}
	var ids []string
	for i, id := range req.TaskIDList {
		if strings.TrimSpace(id) == "" {
			return nil, ferry.FieldError(fmt.Sprintf("task_id_list[%d]", i), "must not be empty.")
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}
