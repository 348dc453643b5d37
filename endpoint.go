package ferry

import (
	"log/slog"
	"strings"
	"time"
)

// EngineKind names a kind of data store, and the engine that moves it.
type EngineKind string

const (
	KindRedis   EngineKind = "redis"
	KindMySQL   EngineKind = "mysql"
	KindMongoDB EngineKind = "mongodb"
)

// Kinds lists every endpoint kind ferry knows of (built or not).
var Kinds = []EngineKind{KindRedis, KindMySQL, KindMongoDB}

// Valid reports whether k is a known kind.
func (k EngineKind) Valid() bool {
	for _, x := range Kinds {
		if k == x {
			return true
		}
	}
	return false
}

// Endpoint is one data store a job reads from or writes to. It may be
// registered by name in a project (a "cluster" in Atlas terms) or given
// inline in a job. Password is a secret: it is stored, never returned by an
// API and never logged (see LogValue and Redacted).
type Endpoint struct {
	ID        string     `json:"id,omitempty"`
	ProjectID string     `json:"projectId,omitempty"`
	Name      string     `json:"name,omitempty"`
	Kind      EngineKind `json:"kind"`
	// Addrs are host:port pairs (several for a cluster or replica set).
	Addrs    []string `json:"addrs"`
	Username string   `json:"username,omitempty"`
	Password string   `json:"password,omitempty"`
	// Database: the Redis db, MySQL schema or MongoDB auth database, if any.
	Database string `json:"database,omitempty"`
	TLS      bool   `json:"tls,omitempty"`
	// TLSSkipVerify accepts any server certificate.
	TLSSkipVerify bool   `json:"tlsSkipVerify,omitempty"`
	CACertPEM     string `json:"caCertPem,omitempty"`
	// Cluster marks a Redis Cluster, MongoDB sharded cluster, etc.
	Cluster bool `json:"cluster,omitempty"`
	// Options are engine-specific connection settings.
	Options   map[string]string `json:"options,omitempty"`
	CreatedAt time.Time         `json:"createdAt,omitzero"`
}

// Validate checks the endpoint's static shape. field prefixes field names.
func (e *Endpoint) Validate(field string) error {
	if e == nil {
		return FieldError(field, "is required")
	}
	if !e.Kind.Valid() {
		return FieldError(field+".kind", "unknown kind %q (one of redis, mysql, mongodb)", e.Kind)
	}
	if e.Name != "" {
		if err := ValidateName(field+".name", e.Name); err != nil {
			return err
		}
	}
	if len(e.Addrs) == 0 {
		return FieldError(field+".addrs", "at least one host:port is required")
	}
	for _, a := range e.Addrs {
		if a == "" || strings.ContainsAny(a, " /") {
			return FieldError(field+".addrs", "bad address %q (want host:port)", a)
		}
	}
	return nil
}

// HasPassword reports whether a password is set, without revealing it.
func (e *Endpoint) HasPassword() bool { return e != nil && e.Password != "" }

// Redacted returns a copy without secrets, for APIs.
func (e Endpoint) Redacted() Endpoint {
	e.Password = ""
	e.Options = RedactOptions(e.Options)
	return e
}

func isSecretOption(k string) bool {
	k = strings.ToLower(k)
	return strings.Contains(k, "password") || strings.Contains(k, "secret") || strings.Contains(k, "key") || strings.Contains(k, "token") || strings.Contains(k, "credential")
}

// LogValue keeps secrets out of structured logs.
func (e Endpoint) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kind", string(e.Kind)),
		slog.Any("addrs", e.Addrs),
		slog.String("username", e.Username),
		slog.Bool("tls", e.TLS),
	)
}
