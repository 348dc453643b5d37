// Package storeutil holds what ferry's SQL stores (package sqlite and package
// postgres) share: how a resource is prepared for its first write, how it is
// encoded into and decoded from its JSON data column, how a claim changes a
// job, and the errors the ferry.Store contract asks for. It knows no driver.
package storeutil

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"time"

	"github.com/ferrymigrate/ferry"
)

// Now returns the current time in UTC.
func Now() time.Time { return time.Now().UTC() }

var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// Nanos returns t as Unix nanoseconds, clamped to the int64 range (the zero
// time and times before 1678 give math.MinInt64, times after 2262
// math.MaxInt64), for indexed columns that order and filter.
func Nanos(t time.Time) int64 {
	switch {
	case t.Before(minNanoTime):
		return math.MinInt64
	case t.After(maxNanoTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// Encode returns v's JSON for a data column.
func Encode(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// Decode fills v (a pointer) from a data column and turns every time in it
// into UTC.
func Decode(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	UTC(v)
	return nil
}

var timeType = reflect.TypeFor[time.Time]()

// UTC sets every time.Time reachable from v (a pointer) through exported
// struct fields, pointers and slices to UTC.
func UTC(v any) { utc(reflect.ValueOf(v)) }

func utc(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			utc(v.Elem())
		}
	case reflect.Struct:
		if v.Type() == timeType {
			if v.CanSet() {
				t := v.Interface().(time.Time)
				if !t.IsZero() {
					v.Set(reflect.ValueOf(t.UTC()))
				}
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				utc(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			utc(v.Index(i))
		}
	}
}

// Page turns a filter's offset and limit into SQL's: a negative offset is
// 0; limit is -1 when there is none (SQLite's LIMIT -1; PostgreSQL callers
// use LIMIT NULL, see Limit).
func Page(offset, limit int) (int64, int64) {
	if offset < 0 {
		offset = 0
	}
	if limit <= 0 {
		return int64(offset), -1
	}
	return int64(offset), int64(limit)
}

// Limit returns limit for a LIMIT parameter, or nil for "no limit".
func Limit(limit int64) any {
	if limit < 0 {
		return nil
	}
	return limit
}

// createdAt fills a zero creation time with now and returns it in UTC.
func createdAt(t *time.Time, now time.Time) {
	if t.IsZero() {
		*t = now
	}
	*t = t.UTC()
}

func newID(id *string) {
	if *id == "" {
		*id = ferry.NewID()
	}
}

// PrepareOrg readies a new organization for its first write: an id and a
// creation time when they are missing.
func PrepareOrg(o *ferry.Organization, now time.Time) error {
	if o == nil {
		return ferry.Errorf(ferry.EINVALID, "organization is required")
	}
	newID(&o.ID)
	createdAt(&o.CreatedAt, now)
	return nil
}

// PrepareProject readies a new project.
func PrepareProject(p *ferry.Project, now time.Time) error {
	if p == nil {
		return ferry.Errorf(ferry.EINVALID, "project is required")
	}
	if p.Name == "" {
		return ferry.FieldError("name", "is required")
	}
	newID(&p.ID)
	createdAt(&p.CreatedAt, now)
	return nil
}

// PrepareAPIKey readies a new API key.
func PrepareAPIKey(k *ferry.APIKey, now time.Time) error {
	if k == nil {
		return ferry.Errorf(ferry.EINVALID, "API key is required")
	}
	if k.PublicKey == "" {
		return ferry.FieldError("publicKey", "is required")
	}
	newID(&k.ID)
	createdAt(&k.CreatedAt, now)
	return nil
}

// PrepareToken readies a new token.
func PrepareToken(t *ferry.Token, now time.Time) error {
	if t == nil {
		return ferry.Errorf(ferry.EINVALID, "token is required")
	}
	if t.Hash == "" {
		return ferry.FieldError("hash", "is required")
	}
	if t.ExpiresAt.IsZero() {
		return ferry.FieldError("expiresAt", "is required")
	}
	t.ExpiresAt = t.ExpiresAt.UTC()
	createdAt(&t.CreatedAt, now)
	return nil
}

// PrepareEndpoint readies a new endpoint.
func PrepareEndpoint(e *ferry.Endpoint, now time.Time) error {
	if e == nil {
		return ferry.Errorf(ferry.EINVALID, "endpoint is required")
	}
	newID(&e.ID)
	createdAt(&e.CreatedAt, now)
	return nil
}

// PrepareMigration readies a new migration: id, creation time, UpdatedAt
// (the creation time when missing) and Version 1.
func PrepareMigration(m *ferry.Migration, now time.Time) error {
	if m == nil {
		return ferry.Errorf(ferry.EINVALID, "migration is required")
	}
	newID(&m.ID)
	createdAt(&m.CreatedAt, now)
	createdAt(&m.UpdatedAt, m.CreatedAt)
	m.Version = 1
	return nil
}

// PreparePipeline readies a new pipeline.
func PreparePipeline(p *ferry.Pipeline, now time.Time) error {
	if p == nil {
		return ferry.Errorf(ferry.EINVALID, "pipeline is required")
	}
	if p.Name == "" {
		return ferry.FieldError("name", "is required")
	}
	newID(&p.ID)
	createdAt(&p.CreatedAt, now)
	createdAt(&p.UpdatedAt, p.CreatedAt)
	p.Version = 1
	return nil
}

// PrepareRun readies a new pipeline run.
func PrepareRun(r *ferry.PipelineRun, now time.Time) error {
	if r == nil {
		return ferry.Errorf(ferry.EINVALID, "run is required")
	}
	newID(&r.ID)
	createdAt(&r.CreatedAt, now)
	createdAt(&r.UpdatedAt, r.CreatedAt)
	r.Version = 1
	return nil
}

// PrepareValidation readies a new validation.
func PrepareValidation(v *ferry.Validation, now time.Time) error {
	if v == nil {
		return ferry.Errorf(ferry.EINVALID, "validation is required")
	}
	newID(&v.ID)
	createdAt(&v.CreatedAt, now)
	return nil
}

// PrepareAgent readies an agent for an upsert: LastSeen is now when missing.
func PrepareAgent(a *ferry.AgentInfo, now time.Time) error {
	if a == nil {
		return ferry.Errorf(ferry.EINVALID, "agent is required")
	}
	if a.ID == "" {
		return ferry.FieldError("id", "is required")
	}
	createdAt(&a.LastSeen, now)
	if !a.StartedAt.IsZero() {
		a.StartedAt = a.StartedAt.UTC()
	}
	return nil
}

// CheckClaim validates a claim's arguments.
func CheckClaim(agentID string, ttl time.Duration) error {
	if agentID == "" {
		return ferry.FieldError("agentId", "is required")
	}
	if ttl <= 0 {
		return ferry.FieldError("ttl", "must be positive")
	}
	return nil
}

// Claim gives a job's lease to agentID until now+ttl and appends agentID to
// hosts unless it is already the last host.
func Claim(lease **ferry.Lease, hosts *[]string, agentID string, now time.Time, ttl time.Duration) {
	*lease = &ferry.Lease{AgentID: agentID, ExpiresAt: now.Add(ttl).UTC()}
	if n := len(*hosts); n == 0 || (*hosts)[n-1] != agentID {
		*hosts = append(*hosts, agentID)
	}
}

// LeaseColumns returns the lease_agent and lease_expires column values of a
// lease: both NULL when there is none.
func LeaseColumns(l *ferry.Lease) (agent, expires any) {
	if l == nil {
		return nil, nil
	}
	return l.AgentID, Nanos(l.ExpiresAt)
}

// MigrationStates are the states ClaimMigration takes.
var MigrationStates = []string{string(ferry.StateRunning), string(ferry.StateCuttingOver)}

// RunStates are the states ClaimRun takes.
var RunStates = []string{ferry.RunPending, ferry.RunInProgress}

// NotFound returns the ENOTFOUND error for a missing resource.
func NotFound(kind, id string) error {
	return ferry.Errorf(ferry.ENOTFOUND, "%s %s not found", kind, id)
}

// NotFoundByName returns the ENOTFOUND error for a missing named resource.
func NotFoundByName(kind, scope, name string) error {
	return ferry.Errorf(ferry.ENOTFOUND, "%s %q not found in %s", kind, name, scope)
}

// Duplicate returns the ECONFLICT error for a unique constraint a write
// broke, keeping the driver error in the chain.
func Duplicate(cause error, format string, args ...any) error {
	e := ferry.Errorf(ferry.ECONFLICT, format, args...)
	e.Reason = "DUPLICATE"
	return &wrapped{err: e, cause: cause}
}

func dupName(kind, id, name, scope string, byName bool, cause error) error {
	if byName {
		return Duplicate(cause, "a %s named %q already exists in %s", kind, name, scope)
	}
	return Duplicate(cause, "%s %s already exists", kind, id)
}

// wrapped is a domain error that also keeps the driver error it came from,
// for errors.Is/As on the driver's types.
type wrapped struct {
	err   *ferry.Error
	cause error
}

func (w *wrapped) Error() string   { return w.err.Error() }
func (w *wrapped) Unwrap() []error { return []error{w.err, w.cause} }
