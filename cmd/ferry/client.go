package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
)

// clientFlags locate the server and the caller's key pair.
type clientFlags struct {
	server     string
	publicKey  string
	privateKey string
	dataDir    string
	project    string
	json       bool
	fs         *flag.FlagSet
}

func (f *clientFlags) register(fs *flag.FlagSet, withProject bool) {
	f.fs = fs
	fs.StringVar(&f.server, "server", defaultServer, "URL of the ferry API (default: credentials.json's server, else "+defaultServer+")")
	fs.StringVar(&f.publicKey, "public-key", "", "API public key (default: <data-dir>/credentials.json)")
	fs.StringVar(&f.privateKey, "private-key", "", "API private key (default: <data-dir>/credentials.json)")
	fs.StringVar(&f.dataDir, "data-dir", defaultDataDir, "where credentials.json is")
	if withProject {
		fs.StringVar(&f.project, "project", "", "project id (default: credentials.json's project)")
	}
	fs.BoolVar(&f.json, "json", false, "print JSON")
}

// client calls the native API.
type client struct {
	base    string
	pub     string
	priv    string
	project string
	http    *http.Client
}

// apiError is a native API error answer.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field"`
	Reason  string `json:"reason"`
	Advice  string `json:"advice"`
}

func (e *apiError) Error() string { return e.Human() }

// Human is the error as the CLI prints it.
func (e *apiError) Human() string {
	var b strings.Builder
	if e.Field != "" {
		b.WriteString(e.Field + ": ")
	}
	b.WriteString(e.Message)
	var extra []string
	if e.Reason != "" {
		extra = append(extra, e.Reason)
	}
	extra = append(extra, fmt.Sprintf("HTTP %d", e.Status))
	b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	if e.Advice != "" {
		b.WriteString("\nadvice: " + e.Advice)
	}
	return b.String()
}

// newClient resolves the server, credentials and project.
func (c *cli) newClient(f *clientFlags, needProject bool) (*client, error) {
	cl := &client{base: strings.TrimRight(f.server, "/"), pub: f.publicKey, priv: f.privateKey, project: f.project,
		http: &http.Client{Timeout: 60 * time.Second}}
	path := credentialsPath(f.dataDir)
	var cr *credentials
	if cl.pub == "" || cl.priv == "" || (needProject && cl.project == "") || !isSet(f.fs, "server") {
		var err error
		cr, err = readCredentials(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	if cl.pub == "" && cl.priv == "" && cr != nil {
		cl.pub, cl.priv = cr.PublicKey, cr.PrivateKey
	}
	if cl.pub == "" || cl.priv == "" {
		return nil, fmt.Errorf("no API key: pass --public-key and --private-key (or FERRY_PUBLIC_KEY and FERRY_PRIVATE_KEY), or run where %s exists (`ferry serve` writes it)", path)
	}
	if cr != nil && !isSet(f.fs, "server") && cr.Server != "" {
		cl.base = strings.TrimRight(cr.Server, "/")
	}
	if needProject && cl.project == "" {
		if cr == nil || cr.ProjectID == "" {
			return nil, fmt.Errorf("no project: pass --project ID (or FERRY_PROJECT); see `ferry projects list`")
		}
		cl.project = cr.ProjectID
	}
	if _, err := url.Parse(cl.base); err != nil || !strings.HasPrefix(cl.base, "http") {
		return nil, fmt.Errorf("--server %q: want an http:// or https:// URL", cl.base)
	}
	return cl, nil
}

// do calls the API; it decodes a 2xx answer into out (when non-nil) and
// returns the raw body.
func (cl *client) do(ctx context.Context, method, path string, in, out any) (json.RawMessage, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, cl.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ferry-cli")
	req.SetBasicAuth(cl.pub, cl.priv)
	res, err := cl.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach ferry at %s: %w", cl.base, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode >= 300 {
		var eb struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(raw, &eb) == nil && eb.Error != nil && eb.Error.Message != "" {
			eb.Error.Status = res.StatusCode
			return nil, eb.Error
		}
		return nil, &apiError{Status: res.StatusCode, Message: strings.TrimSpace(http.StatusText(res.StatusCode) + " " + firstLine(string(raw)))}
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return raw, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (cl *client) projectPath(parts ...string) string {
	p := "/api/v1/projects/" + url.PathEscape(cl.project)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// ---- the native API's shapes, as far as the CLI shows them ----

type listOf[T any] struct {
	Items  []T `json:"items"`
	Total  int `json:"total"`
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
}

type project struct {
	ID        string    `json:"id"`
	OrgID     string    `json:"orgId"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
}

type endpoint struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Kind        string            `json:"kind"`
	Addrs       []string          `json:"addrs"`
	Username    string            `json:"username"`
	HasPassword bool              `json:"hasPassword"`
	Database    string            `json:"database"`
	TLS         bool              `json:"tls"`
	Cluster     bool              `json:"cluster"`
	Options     map[string]string `json:"options"`
	CreatedAt   *time.Time        `json:"createdAt"`
}

func (e endpoint) String() string {
	s := e.Kind + " " + strings.Join(e.Addrs, ",")
	if e.Name != "" {
		s = e.Name + " (" + s + ")"
	}
	var notes []string
	if e.Username != "" {
		notes = append(notes, "user "+e.Username)
	}
	if e.HasPassword {
		notes = append(notes, "password set")
	}
	if e.TLS {
		notes = append(notes, "tls")
	}
	if len(notes) > 0 {
		s += " [" + strings.Join(notes, ", ") + "]"
	}
	return s
}

type counters struct {
	Done       int64   `json:"done"`
	Total      int64   `json:"total"`
	Bytes      int64   `json:"bytes"`
	BytesTotal int64   `json:"bytesTotal"`
	Ops        int64   `json:"ops"`
	Errors     int64   `json:"errors"`
	Missing    int64   `json:"missing"`
	Extra      int64   `json:"extra"`
	Different  int64   `json:"different"`
	LagBytes   int64   `json:"lagBytes"`
	RatePerSec float64 `json:"ratePerSec"`
	Unit       string  `json:"unit"`
}

type step struct {
	Name           string     `json:"name"`
	State          string     `json:"state"`
	Progress       float64    `json:"progress"`
	Counters       counters   `json:"counters"`
	CheckpointTime *time.Time `json:"checkpointTime"`
	Message        string     `json:"message"`
	StartedAt      *time.Time `json:"startedAt"`
	FinishedAt     *time.Time `json:"finishedAt"`
}

type migration struct {
	ID              string           `json:"id"`
	ProjectID       string           `json:"projectId"`
	Name            string           `json:"name"`
	Engine          string           `json:"engine"`
	Source          endpoint         `json:"source"`
	Target          endpoint         `json:"target"`
	State           string           `json:"state"`
	CurrentStep     string           `json:"currentStep"`
	Progress        float64          `json:"progress"`
	Steps           []step           `json:"steps"`
	LagSeconds      *int64           `json:"lagSeconds"`
	ReadyForCutover bool             `json:"readyForCutover"`
	Readiness       *ferry.Readiness `json:"readiness"`
	Cutover         *cutoverRecord   `json:"cutover"`
	CutoverDeadline *time.Time       `json:"cutoverDeadline"`
	Error           string           `json:"error"`
	Hosts           []string         `json:"hosts"`
	CreatedAt       time.Time        `json:"createdAt"`
	StartedAt       *time.Time       `json:"startedAt"`
	FinishedAt      *time.Time       `json:"finishedAt"`
}

// ended reports whether the job's data path is over.
func (m *migration) ended() bool {
	switch m.State {
	case "completed", "failed", "expired", "released", "deleted":
		return true
	}
	return false
}

func (m *migration) lag() string {
	if m.LagSeconds == nil {
		return ""
	}
	return fmtDuration(time.Duration(*m.LagSeconds) * time.Second)
}

type retention struct {
	Units string `json:"units"`
	Value int    `json:"value"`
}

type pipeline struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Source struct {
		Type           string `json:"type"`
		ClusterName    string `json:"clusterName"`
		DatabaseName   string `json:"databaseName"`
		CollectionName string `json:"collectionName"`
	} `json:"source"`
	Sink struct {
		Type     string `json:"type"`
		Location string `json:"location"`
	} `json:"sink"`
	BackupFrequencyType    string     `json:"backupFrequencyType"`
	DatasetRetentionPolicy *retention `json:"datasetRetentionPolicy"`
	NextRunAt              *time.Time `json:"nextRunAt"`
	CreatedAt              time.Time  `json:"createdAt"`
}

type pipelineRun struct {
	ID                    string     `json:"id"`
	PipelineName          string     `json:"pipelineName"`
	State                 string     `json:"state"`
	Phase                 string     `json:"phase"`
	DatasetName           string     `json:"datasetName"`
	ScheduledDeletionDate *time.Time `json:"scheduledDeletionDate"`
	Stats                 struct {
		BytesExported int64 `json:"bytesExported"`
		NumDocs       int64 `json:"numDocs"`
	} `json:"stats"`
	Error     string    `json:"error"`
	CreatedAt time.Time `json:"createdAt"`
}
