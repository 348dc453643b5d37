package oms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/http/httpauth"
)

// Endpoint types the OMS dialect accepts: all speak the MySQL protocol and
// run on ferry's mysql engine.
var endpointTypes = map[string]bool{"MYSQL": true, "MARIADB": true, "OB_MYSQL": true, "TIDB": true}

// Label keys under which a job created by this dialect keeps the OMS request
// fields it echoes.
const (
	labelSourceType      = "oms.sourceType"
	labelSinkType        = "oms.sinkType"
	labelTransferMapping = "oms.transferMapping"
)

// createRequest is the body of POST /api/omsp/v2/migrations. Field names
// follow OMS: the seed's enable* flags, V4's source/sink and
// transferMapping; endpoints are given inline (source, sink) or by a
// registered ferry endpoint's id or name (sourceEndpointId, sinkEndpointId).
type createRequest struct {
	ProjectID             string           `json:"projectId"`
	Name                  string           `json:"name"`
	Description           string           `json:"description"`
	Type                  string           `json:"type"`
	Importance            string           `json:"importance"`
	SourceEndpointID      string           `json:"sourceEndpointId"`
	SinkEndpointID        string           `json:"sinkEndpointId"`
	Source                *endpointIn      `json:"source"`
	Sink                  *endpointIn      `json:"sink"`
	Target                *endpointIn      `json:"target"` // alias of sink
	EnableStructMigration bool             `json:"enableStructMigration"`
	EnableFullMigration   bool             `json:"enableFullMigration"`
	EnableIncrSync        bool             `json:"enableIncrSync"`
	EnableReverseIncrSync bool             `json:"enableReverseIncrSync"`
	EnableFullVerify      bool             `json:"enableFullVerify"`
	TransferMapping       *transferMapping `json:"transferMapping"`
}

// endpointIn is an inline data source.
type endpointIn struct {
	Type       string `json:"type"`
	Host       string `json:"host"`
	Port       int    `json:"port"`
	UserName   string `json:"userName"`
	Password   string `json:"password"`
	Database   string `json:"database"`
	TLS        bool   `json:"tls"`
	EndpointID string `json:"endpointId"`
}

// transferMapping selects what moves (OMS V4's shape).
type transferMapping struct {
	Mode                  string       `json:"mode"` // SPECIFIC (default) or WILDCARD
	Databases             []databaseIn `json:"databases"`
	DatabasesBlack        []databaseIn `json:"databasesBlack"`
	TableAndViewWhiteList []string     `json:"tableAndViewWhiteList"`
	TableAndViewBlackList []string     `json:"tableAndViewBlackList"`
}

type databaseIn struct {
	Name       string    `json:"name"`
	MappedName string    `json:"mappedName"`
	Tables     []tableIn `json:"tables"`
}

type tableIn struct {
	Name       string `json:"name"`
	MappedName string `json:"mappedName"`
}

// decodeBytes reads a JSON body into v. Malformed JSON, wrong types,
// trailing data, an empty body and bodies over MaxBodyBytes are EINVALID
// errors naming the problem; unknown fields are ignored (OMS clients send
// many).
func decodeBytes(body []byte, v any) error {
	if len(body) > MaxBodyBytes {
		return httpauth.TooLarge(MaxBodyBytes)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "EMPTY_BODY", Message: "a JSON request body is required"}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "unexpected data after the JSON body"}
	}
	return nil
}

// jsonError turns a decoding error into an EINVALID error naming the field.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("malformed JSON at byte %d: %s", syn.Offset, syn.Error())}
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: fmt.Sprintf("the body must be a JSON object, not %s", typ.Value)}
		}
		return &ferry.Error{Code: ferry.EINVALID, Field: field, Reason: "INVALID_TYPE", Message: fmt.Sprintf("must be %s, not %s", jsonTypeName(typ.Type.Kind().String()), typ.Value)}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "truncated JSON body"}
	}
	return &ferry.Error{Code: ferry.EINVALID, Reason: "MALFORMED_JSON", Message: "malformed JSON body: " + err.Error()}
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return kind
}

// toMigration maps a create request to a ferry job of project projectID.
func (req *createRequest) toMigration(projectID string) (*ferry.Migration, error) {
	if strings.TrimSpace(req.Name) == "" {
		return nil, ferry.FieldError("name", "is required")
	}
	if strings.ContainsAny(req.Name, " \t\r\n") || len(req.Name) > 64 {
		return nil, ferry.FieldError("name", "must not contain spaces and must be at most 64 characters")
	}
	switch req.Type {
	case "", "MIGRATION":
	case "SYNC":
		return nil, &ferry.Error{Code: ferry.EINVALID, Field: "type", Reason: "UNSUPPORTED_PROJECT_TYPE", Message: "SYNC (data synchronization) projects are not supported; use MIGRATION"}
	default:
		return nil, ferry.FieldError("type", "unknown project type %q (MIGRATION)", req.Type)
	}
	if req.Sink != nil && req.Target != nil {
		return nil, ferry.FieldError("target", "give sink or its alias target, not both")
	}
	sink := req.Sink
	if sink == nil {
		sink = req.Target
	}
	m := &ferry.Migration{
		ProjectID:   projectID,
		Name:        req.Name,
		Description: req.Description,
		Engine:      ferry.KindMySQL,
		Importance:  req.Importance,
		Dialect:     "oms",
		Labels:      map[string]string{},
		Modes: ferry.Modes{
			Schema:             req.EnableStructMigration,
			Full:               req.EnableFullMigration,
			Incremental:        req.EnableIncrSync,
			ReverseIncremental: req.EnableReverseIncrSync,
			Verify:             req.EnableFullVerify,
		},
	}
	var err error
	if m.Source, err = endpoint("source", req.Source, req.SourceEndpointID); err != nil {
		return nil, err
	}
	if m.Target, err = endpoint("sink", sink, req.SinkEndpointID); err != nil {
		return nil, err
	}
	if req.Source != nil && req.Source.Type != "" {
		m.Labels[labelSourceType] = req.Source.Type
	}
	if sink != nil && sink.Type != "" {
		m.Labels[labelSinkType] = sink.Type
	}
	if req.TransferMapping != nil {
		if m.Options.Filters, err = req.TransferMapping.filters(); err != nil {
			return nil, err
		}
		raw, err := json.Marshal(req.TransferMapping)
		if err != nil {
			return nil, err
		}
		m.Labels[labelTransferMapping] = string(raw)
	}
	return m, nil
}

// endpoint maps an inline data source, or a registered endpoint's id or name
// (resolved by the service), to a ferry endpoint.
func endpoint(field string, in *endpointIn, registered string) (ferry.Endpoint, error) {
	if in != nil && in.EndpointID != "" {
		if registered != "" && registered != in.EndpointID {
			return ferry.Endpoint{}, ferry.FieldError(field+"EndpointId", "differs from %s.endpointId", field)
		}
		registered = in.EndpointID
	}
	if in == nil || (in.Host == "" && registered != "") {
		if registered == "" {
			return ferry.Endpoint{}, ferry.FieldError(field, "is required (an inline %s or %sEndpointId)", field, field)
		}
		return ferry.Endpoint{Name: registered, Kind: ferry.KindMySQL}, nil
	}
	if !endpointTypes[in.Type] {
		return ferry.Endpoint{}, &ferry.Error{Code: ferry.EINVALID, Field: field + ".type", Reason: "UNSUPPORTED_DATASOURCE_TYPE",
			Message: fmt.Sprintf("unsupported data source type %q (supported: MYSQL, MARIADB, OB_MYSQL, TIDB)", in.Type)}
	}
	if strings.TrimSpace(in.Host) == "" {
		return ferry.Endpoint{}, ferry.FieldError(field+".host", "is required")
	}
	if in.Port < 1 || in.Port > 65535 {
		return ferry.Endpoint{}, ferry.FieldError(field+".port", "must be between 1 and 65535")
	}
	return ferry.Endpoint{
		Kind:     ferry.KindMySQL,
		Addrs:    []string{net.JoinHostPort(in.Host, strconv.Itoa(in.Port))},
		Username: in.UserName,
		Password: in.Password,
		Database: in.Database,
		TLS:      in.TLS,
	}, nil
}

// filters maps a transfer mapping to ferry filters: databases without
// tables select whole databases, tables select "db.table"; mapped names
// become renames; the black lists exclude.
func (t *transferMapping) filters() (ferry.Filters, error) {
	var f ferry.Filters
	switch t.Mode {
	case "", "SPECIFIC", "WILDCARD":
	default:
		return f, ferry.FieldError("transferMapping.mode", "unknown mode %q (SPECIFIC or WILDCARD)", t.Mode)
	}
	add := func(field string, dbs []databaseIn, include bool) error {
		for i, db := range dbs {
			fld := fmt.Sprintf("transferMapping.%s[%d]", field, i)
			if strings.TrimSpace(db.Name) == "" {
				return ferry.FieldError(fld+".name", "is required")
			}
			if len(db.Tables) == 0 {
				if include {
					f.IncludeDBs = append(f.IncludeDBs, db.Name)
				} else {
					f.ExcludeDBs = append(f.ExcludeDBs, db.Name)
				}
			}
			mappedDB := db.Name
			if include && db.MappedName != "" && db.MappedName != db.Name {
				mappedDB = db.MappedName
				if f.Renames == nil {
					f.Renames = map[string]string{}
				}
				f.Renames[db.Name] = db.MappedName
			}
			for j, tb := range db.Tables {
				if strings.TrimSpace(tb.Name) == "" {
					return ferry.FieldError(fmt.Sprintf("%s.tables[%d].name", fld, j), "is required")
				}
				name := db.Name + "." + tb.Name
				if !include {
					f.ExcludeTables = append(f.ExcludeTables, name)
					continue
				}
				f.IncludeTables = append(f.IncludeTables, name)
				mappedTable := tb.Name
				if tb.MappedName != "" {
					mappedTable = tb.MappedName
				}
				if mapped := mappedDB + "." + mappedTable; mapped != name {
					if f.Renames == nil {
						f.Renames = map[string]string{}
					}
					f.Renames[name] = mapped
				}
			}
		}
		return nil
	}
	if err := add("databases", t.Databases, true); err != nil {
		return f, err
	}
	if err := add("databasesBlack", t.DatabasesBlack, false); err != nil {
		return f, err
	}
	for i, s := range t.TableAndViewWhiteList {
		if strings.TrimSpace(s) == "" {
			return f, ferry.FieldError(fmt.Sprintf("transferMapping.tableAndViewWhiteList[%d]", i), "must not be empty")
		}
		f.IncludeTables = append(f.IncludeTables, s)
	}
	for i, s := range t.TableAndViewBlackList {
		if strings.TrimSpace(s) == "" {
			return f, ferry.FieldError(fmt.Sprintf("transferMapping.tableAndViewBlackList[%d]", i), "must not be empty")
		}
		f.ExcludeTables = append(f.ExcludeTables, s)
	}
	return f, nil
}

// parseCreate decodes and maps a create body (the fuzzed decoder). It
// returns the job without its project when projectID is "".
func parseCreate(body []byte, projectID string) (*createRequest, *ferry.Migration, error) {
	var req createRequest
	if err := decodeBytes(body, &req); err != nil {
		return nil, nil, err
	}
	m, err := req.toMigration(projectID)
	if err != nil {
		return nil, nil, err
	}
	return &req, m, nil
}
