// Package mongo is ferry's MongoDB engine: a live migration from one
// MongoDB deployment (replica set or sharded cluster, or a server that
// speaks the protocol, such as FerretDB) to another, the data path behind
// the Atlas live-migration dialect.
//
// Steps:
//
//   - precheck (also Atlas's liveMigrations/validate): both sides reachable
//     with their credentials, what the source offers for continuous sync
//     (change streams, an oplog), the target empty where the job writes
//     (or Options.DropTarget, Atlas's dropDestinationData), filters valid.
//   - full (initial sync): the resume point is recorded first (the last
//     oplog entry's ts, or a change-stream resume token); then every
//     included collection is created with its options and copied in
//     parallel, documents moved as raw BSON bytes (types, field order and
//     _id of any type kept), large collections split by _id ranges; the
//     indexes are built after the copy. A killed copy resumes: finished
//     partitions are skipped, the others copied again over what they left
//     (duplicates are ignored; the sync replays everything since the
//     resume point, so the target converges).
//   - incremental (continuous sync): one applier fed by one of two readers,
//     oplog tailing (local.oplog.rs) or change streams (watch on the
//     deployment), chosen by probing or forced with Options.Extra["reader"].
//     Every change is applied idempotently (upsert of the whole document by
//     _id, delete by _id, DDL that tolerates being replayed), in order per
//     document and in parallel across documents; the position (oplog ts or
//     resume token) is saved every second.
//   - cutover: the service cannot stop writes on a remote source; the
//     incremental step, once cutover is asked, drains until no change
//     arrived for a quiet period and the lag is 0, then ends.
//   - verify: per collection, counts and a hash over a digest of every raw
//     document on both sides (read in natural order, no server-side sort),
//     differing _ids listed; rounds let documents changed during the
//     compare converge.
package mongo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/ferrymigrate/ferry"
)

// Engine implements ferry.Engine for MongoDB.
type Engine struct {
	Logger *slog.Logger
	// BatchDocs bounds the documents of one insertMany of the copy (default
	// 1000); BatchBytes its size (default 8 MiB).
	BatchDocs  int
	BatchBytes int
	// SplitDocs: a collection with at least this many documents is copied as
	// several _id ranges (default 200000). Ranges need the source to sample
	// _ids ($sample); ForceSplit scans the _ids instead when it cannot (for
	// tests: on a server without $sample each range rescans the collection).
	SplitDocs  int64
	ForceSplit bool
	// QuietPeriod: at cutover, the sync ends once no change arrived for this
	// long and the lag is 0 (default 2s).
	QuietPeriod time.Duration
	// SaveEvery is the checkpoint interval of the sync (default 1s).
	SaveEvery time.Duration
	// ApplyWorkers is the parallelism of the sync's applier (default 8).
	ApplyWorkers int
}

// New returns the MongoDB engine.
func New(logger *slog.Logger) *Engine {
	if logger == nil {
		logger = slog.Default()
	}
	return &Engine{Logger: logger}
}

var _ ferry.Engine = (*Engine)(nil)

// Kind is mongodb.
func (e *Engine) Kind() ferry.EngineKind { return ferry.KindMongoDB }

func (e *Engine) batchDocs() int {
	if e.BatchDocs > 0 {
		return e.BatchDocs
	}
	return 1000
}

func (e *Engine) batchBytes() int {
	if e.BatchBytes > 0 {
		return e.BatchBytes
	}
	return 8 << 20
}

func (e *Engine) splitDocs() int64 {
	if e.SplitDocs > 0 {
		return e.SplitDocs
	}
	return 200000
}

func (e *Engine) quiet() time.Duration {
	if e.QuietPeriod > 0 {
		return e.QuietPeriod
	}
	return 2 * time.Second
}

// probeEvery is how often the continuous sync asks the source whether it
// has changes not read yet (readiness for cutover needs a yes or no).
func (e *Engine) probeEvery() time.Duration { return 500 * time.Millisecond }

func (e *Engine) saveEvery() time.Duration {
	if e.SaveEvery > 0 {
		return e.SaveEvery
	}
	return time.Second
}

func (e *Engine) applyWorkers() int {
	if e.ApplyWorkers > 0 {
		return e.ApplyWorkers
	}
	return 8
}

// Readers of the continuous sync (Options.Extra["reader"]).
const (
	ReaderAuto         = ""
	ReaderOplog        = "oplog"
	ReaderChangeStream = "changestream"
)

// Check validates a job for this engine without touching the network.
func (e *Engine) Check(m *ferry.Migration) error {
	if err := m.ValidateSource(); err != nil {
		return err
	}
	if m.Modes.Schema {
		return ferry.FieldError("modes.schema", "MongoDB has no separate schema step: the full step creates collections and indexes")
	}
	if m.Modes.ReverseIncremental {
		return &ferry.Error{Code: ferry.EINVALID, Field: "modes.reverseIncremental", Reason: "NOT_BUILT_YET",
			Message: "reverse incremental sync is not built yet for the MongoDB engine"}
	}
	switch r := m.Options.Extra["reader"]; r {
	case ReaderAuto, ReaderOplog, ReaderChangeStream:
	default:
		return ferry.FieldError("options.extra.reader", "unknown reader %q (oplog, changestream, or empty to probe)", r)
	}
	if m.Options.Conflict == ferry.ConflictSkip {
		return ferry.FieldError("options.conflict", "conflict policy skip is not built for MongoDB: use fail (empty target) or dropTarget")
	}
	if len(m.Options.Filters.Renames) > 0 {
		return ferry.FieldError("options.filters.renames", "renaming namespaces is not built yet for MongoDB")
	}
	if _, err := newFilter(m); err != nil {
		return err
	}
	return nil
}

// RunStep runs one step of a job.
func (e *Engine) RunStep(ctx context.Context, m *ferry.Migration, step ferry.StepName, rt ferry.StepRuntime) error {
	switch step {
	case ferry.StepPrecheck:
		return e.precheck(ctx, m, rt)
	case ferry.StepFull:
		return e.full(ctx, m, rt)
	case ferry.StepIncremental:
		return e.incremental(ctx, m, rt)
	case ferry.StepCutover:
		rt.Message("continuous sync drained: no change arrived for the quiet period and the lag was 0; switch the application to the target")
		rt.Progress(ferry.Counters{Done: 1, Total: 1}, 100)
		return nil
	case ferry.StepVerify:
		return e.verify(ctx, m, rt)
	}
	return &ferry.Error{Code: ferry.EINVALID, Message: fmt.Sprintf("the mongodb engine has no step %s", step)}
}

// URI builds the connection string of an endpoint: Options["uri"] as given,
// or mongodb://user:pass@host1,host2/?authSource=<Database>&<other options>.
// Options caCertificatePath (Atlas) and tlsCAFile name a CA file; the
// other options are passed as URI options (replicaSet, authMechanism,
// directConnection, ...).
func URI(ep *ferry.Endpoint) string {
	if u := ep.Options["uri"]; u != "" {
		return u
	}
	var b strings.Builder
	b.WriteString("mongodb://")
	if ep.Username != "" {
		b.WriteString(url.QueryEscape(ep.Username))
		if ep.Password != "" {
			b.WriteString(":" + url.QueryEscape(ep.Password))
		}
		b.WriteString("@")
	}
	b.WriteString(strings.Join(ep.Addrs, ","))
	b.WriteString("/")
	q := url.Values{}
	if ep.Database != "" {
		q.Set("authSource", ep.Database)
	}
	if ep.TLS {
		q.Set("tls", "true")
	}
	if ep.TLSSkipVerify {
		q.Set("tlsInsecure", "true")
	}
	keys := make([]string, 0, len(ep.Options))
	for k := range ep.Options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "uri", "caCertificatePath":
			continue
		}
		q.Set(k, ep.Options[k])
	}
	if p := ep.Options["caCertificatePath"]; p != "" && q.Get("tlsCAFile") == "" {
		if _, err := os.Stat(p); err == nil {
			q.Set("tlsCAFile", p)
		}
	}
	if len(q) > 0 {
		b.WriteString("?" + q.Encode())
	}
	return b.String()
}

// connect opens a client on an endpoint and pings its primary.
func connect(ctx context.Context, ep *ferry.Endpoint, side string) (*mongo.Client, error) {
	// Defaults first: what the URI says (serverSelectionTimeoutMS, ...) wins.
	opts := options.Client().SetConnectTimeout(10 * time.Second).SetServerSelectionTimeout(15 * time.Second).
		SetAppName("ferry").SetMaxPoolSize(64).ApplyURI(URI(ep))
	if ep.CACertPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ep.CACertPEM)) {
			return nil, ferry.FieldError(side+".caCertPem", "no certificate in the PEM")
		}
		opts.SetTLSConfig(&tls.Config{RootCAs: pool, InsecureSkipVerify: ep.TLSSkipVerify})
	}
	c, err := mongo.Connect(opts)
	if err != nil {
		return nil, unreachable(side, ep, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.Ping(pctx, readpref.Primary()); err != nil {
		_ = c.Disconnect(context.Background())
		return nil, unreachable(side, ep, err)
	}
	return c, nil
}

func unreachable(side string, ep *ferry.Endpoint, err error) error {
	reason := strings.ToUpper(side) + "_UNREACHABLE"
	advice := "check the address, user and password and that ferry's host may connect"
	if isAuthError(err) {
		reason = strings.ToUpper(side) + "_AUTH_FAILED"
		advice = "check the user, the password and its authentication database"
	}
	return &ferry.Error{Code: ferry.EINVALID, Field: side, Reason: reason,
		Message: fmt.Sprintf("cannot connect to the %s %s: %v", side, strings.Join(ep.Addrs, ","), err), Advice: advice}
}

func isAuthError(err error) bool {
	var ce mongo.CommandError
	if ok := asCommandError(err, &ce); ok && (ce.Code == 18 || ce.Code == 13) {
		return true
	}
	s := strings.ToLower(err.Error())
	return strings.Contains(s, "authentication failed") || strings.Contains(s, "auth error")
}

func disconnect(c *mongo.Client) {
	if c != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	}
}

// server describes one side.
type server struct {
	Version    string
	FerretDB   bool
	SetName    string
	Msg        string // "isdbgrid" for mongos
	Primary    bool
	WireMax    int32
	HasOplog   bool
	HasStreams bool
}

func (s server) String() string {
	kind := "standalone"
	switch {
	case s.Msg == "isdbgrid":
		kind = "sharded cluster (mongos)"
	case s.SetName != "":
		kind = "replica set " + s.SetName
	}
	name := "MongoDB " + s.Version
	if s.FerretDB {
		name = "FerretDB (MongoDB " + s.Version + " compatible)"
	}
	return name + ", " + kind
}

// describe asks a server what it is.
func describe(ctx context.Context, c *mongo.Client) (server, error) {
	var s server
	var bi bson.Raw
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "buildInfo", Value: 1}}).Decode(&bi); err != nil {
		return s, fmt.Errorf("buildInfo: %w", err)
	}
	if v, ok := bi.Lookup("version").StringValueOK(); ok {
		s.Version = v
	}
	if _, err := bi.LookupErr("ferretdbVersion"); err == nil {
		s.FerretDB = true
	}
	var hello bson.Raw
	if err := c.Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Decode(&hello); err != nil {
		return s, fmt.Errorf("hello: %w", err)
	}
	s.SetName, _ = hello.Lookup("setName").StringValueOK()
	s.Msg, _ = hello.Lookup("msg").StringValueOK()
	s.Primary, _ = hello.Lookup("isWritablePrimary").BooleanOK()
	if v, ok := hello.Lookup("maxWireVersion").AsInt64OK(); ok {
		s.WireMax = int32(v)
	}
	return s, nil
}

// probeReaders fills in what the source offers for continuous sync.
func probeReaders(ctx context.Context, c *mongo.Client, s *server) {
	if !s.FerretDB && (s.SetName != "" || s.Msg == "isdbgrid") {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cs, err := c.Watch(pctx, mongo.Pipeline{}, options.ChangeStream().SetMaxAwaitTime(10*time.Millisecond))
		if err == nil {
			s.HasStreams = true
			_ = cs.Close(pctx)
		}
		cancel()
	}
	if s.Msg != "isdbgrid" {
		n, err := c.Database("local").ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
		s.HasOplog = err == nil && len(n) == 1
	}
}

// pickReader chooses the continuous-sync reader: the job's choice, or
// change streams where the source has them (MongoDB 4.4+ replica sets and
// sharded clusters), else the oplog.
func pickReader(m *ferry.Migration, s server) (string, error) {
	want := m.Options.Extra["reader"]
	switch {
	case want == ReaderChangeStream && !s.HasStreams:
		return "", &ferry.Error{Code: ferry.EINVALID, Field: "options.extra.reader", Reason: "NO_CHANGE_STREAMS",
			Message: "the job asks for change streams but the source (" + s.String() + ") has none", Advice: "use a replica set or sharded cluster of MongoDB 4.4+, or the oplog reader"}
	case want == ReaderOplog && !s.HasOplog:
		return "", &ferry.Error{Code: ferry.EINVALID, Field: "options.extra.reader", Reason: "NO_OPLOG",
			Message: "the job asks for oplog tailing but the source (" + s.String() + ") has no local.oplog.rs (or ferry may not read it)", Advice: "run the source as a replica set (FerretDB: create local.oplog.rs as a capped collection)"}
	case want != "":
		return want, nil
	case s.HasStreams:
		return ReaderChangeStream, nil
	case s.HasOplog:
		return ReaderOplog, nil
	}
	return "", &ferry.Error{Code: ferry.EINVALID, Field: "source", Reason: "NO_CHANGE_CAPTURE",
		Message: "the source (" + s.String() + ") offers neither change streams nor an oplog: continuous sync is impossible",
		Advice:  "run the source as a replica set (FerretDB: create local.oplog.rs as a capped collection), or migrate without incremental sync"}
}

// fullCheckpoint is the full step's checkpoint; its resume point is where
// the incremental step starts.
type fullCheckpoint struct {
	Reader string         `json:"reader"`
	TS     bson.Timestamp `json:"ts"`
	Token  []byte         `json:"token,omitempty"` // change-stream resume token (raw BSON)
	// Partitions is the copy plan; Done marks the finished ones.
	Partitions []partition `json:"partitions,omitempty"`
	Planned    bool        `json:"planned,omitempty"`
	Indexes    bool        `json:"indexes,omitempty"`
	Copies     int         `json:"copies,omitempty"` // how many times the copy started (resumes + 1)
	Docs       int64       `json:"docs,omitempty"`
	Bytes      int64       `json:"bytes,omitempty"`
	Finished   bool        `json:"finished,omitempty"`
}

// incrCheckpoint is the incremental step's checkpoint.
type incrCheckpoint struct {
	Reader  string         `json:"reader"`
	TS      bson.Timestamp `json:"ts"`
	Token   []byte         `json:"token,omitempty"`
	Ops     int64          `json:"ops"`
	Resumes int            `json:"resumes,omitempty"`
	Wall    time.Time      `json:"wall,omitzero"`
	// Recent are the ts of the last applied entries (FerretDB oplog: its
	// ts order is not the delivery order, see oplogReader).
	Recent []bson.Timestamp `json:"recent,omitempty"`
}

func decodeJSON[T any](raw json.RawMessage) (*T, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("bad mongodb checkpoint: %w", err)
	}
	return &v, nil
}

func tsLess(a, b bson.Timestamp) bool { return a.T < b.T || (a.T == b.T && a.I < b.I) }

func tsIsZero(t bson.Timestamp) bool { return t.T == 0 && t.I == 0 }
