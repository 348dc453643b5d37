// Package storetest is the conformance suite every ferry.Store passes. An
// adapter's tests call Run with a function that opens a fresh, empty store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) ferry.Store {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "ferry.db"))
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { db.Close() })
//			return db
//		})
//	}
//
// Besides the contract written on ferry.Store, the suite pins what ferry's
// stores also promise:
//
//   - Create methods fill a missing ID and CreatedAt on the value passed in;
//     migrations, pipelines and runs start at Version 1.
//   - Every time comes back in UTC, to the nanosecond.
//   - Lists never return nil slices; a zero Limit means no limit.
//   - Endpoint names are unique per project only when not empty.
//   - A lease is valid up to and including its ExpiresAt: a claim at now
//     takes it only when ExpiresAt is before now.
//   - DeleteProject deletes what the project holds (endpoints, migrations,
//     pipelines, runs, validations, project API keys and their tokens);
//     DeleteAPIKey deletes the key's tokens; DeletePipeline its runs.
//   - ListAPIKeys, ListEndpoints and ListPipelines list everything for an
//     empty id; ListAgents orders by id.
//
// The suite is deterministic: claims get explicit times.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ferrymigrate/ferry"
)

// Run runs the conformance suite. open returns a fresh, empty store for one
// subtest; it should close it with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) ferry.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s ferry.Store)
	}{
		{"Orgs", testOrgs},
		{"Projects", testProjects},
		{"ProjectPaging", testProjectPaging},
		{"DeleteProjectCascades", testDeleteProjectCascades},
		{"APIKeys", testAPIKeys},
		{"Tokens", testTokens},
		{"Endpoints", testEndpoints},
		{"UpdateProjectAndEndpoint", testUpdateProjectAndEndpoint},
		{"Migrations", testMigrations},
		{"ListMigrations", testListMigrations},
		{"UpdateMigration", testUpdateMigration},
		{"UpdateMigrationConcurrent", testUpdateMigrationConcurrent},
		{"ClaimMigration", testClaimMigration},
		{"ClaimMigrationConcurrent", testClaimMigrationConcurrent},
		{"Pipelines", testPipelines},
		{"Runs", testRuns},
		{"ListRuns", testListRuns},
		{"ClaimRun", testClaimRun},
		{"ClaimRunConcurrent", testClaimRunConcurrent},
		{"Validations", testValidations},
		{"Agents", testAgents},
		{"Times", testTimes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			if s == nil {
				t.Fatal("open returned a nil store")
			}
			tc.fn(t, s)
		})
	}
}

// t0 is the suite's fixed clock.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 123456789, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func ptr[T any](v T) *T { return &v }

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := ferry.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func ids[T any](xs []*T, id func(*T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

func migIDs(ms []*ferry.Migration) []string {
	return ids(ms, func(m *ferry.Migration) string { return m.ID })
}

func runIDs(rs []*ferry.PipelineRun) []string {
	return ids(rs, func(r *ferry.PipelineRun) string { return r.ID })
}

func notNil[T any](t *testing.T, what string, xs []T) {
	t.Helper()
	if xs == nil {
		t.Fatalf("%s returned a nil slice, want an empty one", what)
	}
}

func newOrg(t *testing.T, s ferry.Store, name string) *ferry.Organization {
	t.Helper()
	o := &ferry.Organization{Name: name}
	must(t, s.CreateOrg(t.Context(), o))
	return o
}

func newProject(t *testing.T, s ferry.Store, orgID, name string) *ferry.Project {
	t.Helper()
	p := &ferry.Project{OrgID: orgID, Name: name}
	must(t, s.CreateProject(t.Context(), p))
	return p
}

// fullMigration returns a job with every field set.
func fullMigration(projectID string, created time.Time) *ferry.Migration {
	lag := int64(3)
	return &ferry.Migration{
		ID:          ferry.NewID(),
		ProjectID:   projectID,
		Name:        "orders to new cluster",
		Description: "moves orders",
		Engine:      ferry.KindMySQL,
		Source: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"10.0.0.1:3306", "10.0.0.2:3306"},
			Username: "src", Password: "s3cret-src", Database: "shop", TLS: true, CACertPEM: "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n",
			Options: map[string]string{"charset": "utf8mb4", "password2": "hidden"}},
		Target: ferry.Endpoint{Kind: ferry.KindMySQL, Addrs: []string{"10.0.1.1:3306"}, Username: "dst", Password: "s3cret-dst",
			TLSSkipVerify: true, Cluster: true},
		Modes: ferry.Modes{Schema: true, Full: true, Incremental: true, ReverseIncremental: true, Verify: true},
		Options: ferry.Options{BandwidthLimitMB: 50, ResumeMode: ferry.ResumeAuto, Conflict: ferry.ConflictReplace,
			DropTarget: true, Parallelism: 8, CutoverLagSeconds: 7, Extra: map[string]string{"mode": "psync"},
			Filters: ferry.Filters{IncludeDBs: []string{"shop"}, ExcludeTables: []string{"shop.tmp_*"},
				Renames: map[string]string{"shop": "shop2"}}},
		Importance: "HIGH",
		Dialect:    "oms",
		Labels:     map[string]string{"omsLabel": "x"},
		State:      ferry.StateRunning,
		Steps: []ferry.Step{
			{Name: ferry.StepPrecheck, State: ferry.StepDone, Progress: 100, StartedAt: ptr(created.Add(time.Second)), FinishedAt: ptr(created.Add(2 * time.Second))},
			{Name: ferry.StepFull, State: ferry.StepRunning, Progress: 42.5,
				Counters:       ferry.Counters{Done: 425, Total: 1000, Bytes: 1 << 40, RatePerSec: 1234.5678901234, Unit: "rows"},
				Checkpoint:     json.RawMessage(`{"z":1,"a":[1,2,3],"pos":18446744073709551615,"s":"\u00e9"}`),
				CheckpointTime: ptr(created.Add(3 * time.Second)), Message: "copying"},
		},
		CurrentStep:     ferry.StepFull,
		LagSeconds:      &lag,
		ReadyForCutover: true,
		CutoverDeadline: ptr(created.Add(ferry.CutoverWindow)),
		Cutover: &ferry.CutoverInfo{RequestedAt: ptr(created.Add(4 * time.Second)), SourceWriteBlock: ferry.WriteBlockReadOnly,
			SourceBlockedAt: ptr(created.Add(5 * time.Second)), SourcePosition: "binlog.000001:4 (gtid 0-1-7)", DrainedPosition: "binlog.000001:4",
			DrainedAt: ptr(created.Add(6 * time.Second)), Notes: []string{"read-only until release-source"},
			Verification: &ferry.CutoverVerification{State: ferry.StepDone, Checked: 1000, Unit: "rows", Message: "equal", At: ptr(created.Add(7 * time.Second))}},
		Error:     "",
		Hosts:     []string{"agent-a"},
		Attempts:  2,
		CreatedAt: created,
		UpdatedAt: created,
		StartedAt: ptr(created.Add(time.Second)),
	}
}

func newMigration(t *testing.T, s ferry.Store, projectID string, state ferry.State, created time.Time) *ferry.Migration {
	t.Helper()
	m := &ferry.Migration{ProjectID: projectID, Name: "job", Engine: ferry.KindRedis, State: state,
		Source:    ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:6379"}},
		Target:    ferry.Endpoint{Kind: ferry.KindRedis, Addrs: []string{"127.0.0.1:6380"}},
		Modes:     ferry.Modes{Full: true},
		CreatedAt: created}
	must(t, s.CreateMigration(t.Context(), m))
	return m
}

func newRun(t *testing.T, s ferry.Store, projectID, pipelineID, state string, created time.Time) *ferry.PipelineRun {
	t.Helper()
	r := &ferry.PipelineRun{ProjectID: projectID, PipelineID: pipelineID, PipelineName: "p", State: state,
		Phase: ferry.PhaseSnapshot, CreatedAt: created}
	must(t, s.CreateRun(t.Context(), r))
	return r
}

func testOrgs(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	orgs, err := s.ListOrgs(ctx)
	must(t, err)
	notNil(t, "ListOrgs", orgs)
	if len(orgs) != 0 {
		t.Fatalf("fresh store has %d orgs", len(orgs))
	}

	o := &ferry.Organization{Name: "acme"}
	must(t, s.CreateOrg(ctx, o))
	if !ferry.ValidID(o.ID) {
		t.Fatalf("CreateOrg set ID %q, want a 24-hex id", o.ID)
	}
	if o.CreatedAt.IsZero() {
		t.Fatal("CreateOrg did not set CreatedAt")
	}
	got, err := s.GetOrg(ctx, o.ID)
	must(t, err)
	diff(t, "GetOrg", o, got)

	o2 := &ferry.Organization{ID: ferry.NewID(), Name: "acme", CreatedAt: o.CreatedAt.Add(time.Second)}
	must(t, s.CreateOrg(ctx, o2)) // org names need not be unique
	wantCode(t, s.CreateOrg(ctx, &ferry.Organization{ID: o.ID, Name: "other"}), ferry.ECONFLICT)

	_, err = s.GetOrg(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)

	orgs, err = s.ListOrgs(ctx)
	must(t, err)
	diff(t, "ListOrgs", []*ferry.Organization{o, o2}, orgs)
}

func testProjects(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	o1, o2 := newOrg(t, s, "one"), newOrg(t, s, "two")

	p := &ferry.Project{OrgID: o1.ID, Name: "prod"}
	must(t, s.CreateProject(ctx, p))
	if !ferry.ValidID(p.ID) || p.CreatedAt.IsZero() {
		t.Fatalf("CreateProject did not fill ID and CreatedAt: %+v", p)
	}
	got, err := s.GetProject(ctx, p.ID)
	must(t, err)
	diff(t, "GetProject", p, got)
	got, err = s.GetProjectByName(ctx, o1.ID, "prod")
	must(t, err)
	diff(t, "GetProjectByName", p, got)

	// Names are unique per organization, not across them.
	wantCode(t, s.CreateProject(ctx, &ferry.Project{OrgID: o1.ID, Name: "prod"}), ferry.ECONFLICT)
	p2 := &ferry.Project{OrgID: o2.ID, Name: "prod"}
	must(t, s.CreateProject(ctx, p2))
	wantCode(t, s.CreateProject(ctx, &ferry.Project{ID: p.ID, OrgID: o2.ID, Name: "other"}), ferry.ECONFLICT)
	wantCode(t, s.CreateProject(ctx, &ferry.Project{OrgID: o1.ID}), ferry.EINVALID)

	for _, tc := range []struct{ org, name string }{{o2.ID, "nope"}, {ferry.NewID(), "prod"}, {"", "prod"}} {
		_, err = s.GetProjectByName(ctx, tc.org, tc.name)
		wantCode(t, err, ferry.ENOTFOUND)
	}
	_, err = s.GetProject(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)

	ps, total, err := s.ListProjects(ctx, ferry.ProjectFilter{OrgID: o2.ID})
	must(t, err)
	diff(t, "ListProjects(org)", []*ferry.Project{p2}, ps)
	if total != 1 {
		t.Fatalf("total = %d, want 1", total)
	}

	must(t, s.DeleteProject(ctx, p.ID))
	_, err = s.GetProject(ctx, p.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.DeleteProject(ctx, p.ID), ferry.ENOTFOUND)
	// The name is free again.
	must(t, s.CreateProject(ctx, &ferry.Project{OrgID: o1.ID, Name: "prod"}))
}

func testProjectPaging(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	o, other := newOrg(t, s, "o"), newOrg(t, s, "other")
	var all []*ferry.Project
	for i := range 7 {
		p := &ferry.Project{OrgID: o.ID, Name: fmt.Sprintf("p%d", i), CreatedAt: at(time.Duration(i) * time.Minute)}
		must(t, s.CreateProject(ctx, p))
		all = append(all, p)
	}
	x := &ferry.Project{OrgID: other.ID, Name: "x", CreatedAt: at(-time.Hour)}
	must(t, s.CreateProject(ctx, x))

	for _, tc := range []struct {
		name  string
		f     ferry.ProjectFilter
		want  []*ferry.Project
		total int
	}{
		{"all", ferry.ProjectFilter{}, append([]*ferry.Project{x}, all...), 8},
		{"org", ferry.ProjectFilter{OrgID: o.ID}, all, 7},
		{"first page", ferry.ProjectFilter{OrgID: o.ID, Limit: 3}, all[:3], 7},
		{"second page", ferry.ProjectFilter{OrgID: o.ID, Offset: 3, Limit: 3}, all[3:6], 7},
		{"last page", ferry.ProjectFilter{OrgID: o.ID, Offset: 6, Limit: 3}, all[6:], 7},
		{"past the end", ferry.ProjectFilter{OrgID: o.ID, Offset: 10, Limit: 3}, []*ferry.Project{}, 7},
		{"offset only", ferry.ProjectFilter{OrgID: o.ID, Offset: 5}, all[5:], 7},
		{"ids", ferry.ProjectFilter{IDs: []string{all[4].ID, x.ID, all[1].ID}}, []*ferry.Project{x, all[1], all[4]}, 3},
		{"ids and org", ferry.ProjectFilter{OrgID: o.ID, IDs: []string{all[4].ID, x.ID}}, []*ferry.Project{all[4]}, 1},
		{"empty ids", ferry.ProjectFilter{IDs: []string{}}, []*ferry.Project{}, 0},
		{"unknown org", ferry.ProjectFilter{OrgID: ferry.NewID()}, []*ferry.Project{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := s.ListProjects(ctx, tc.f)
			must(t, err)
			notNil(t, "ListProjects", got)
			diff(t, "ListProjects", tc.want, got)
			if total != tc.total {
				t.Fatalf("total = %d, want %d", total, tc.total)
			}
		})
	}
}

func testDeleteProjectCascades(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	o := newOrg(t, s, "o")
	gone, kept := newProject(t, s, o.ID, "gone"), newProject(t, s, o.ID, "kept")

	type held struct {
		key   *ferry.APIKey
		token *ferry.Token
		ep    *ferry.Endpoint
		mig   *ferry.Migration
		pipe  *ferry.Pipeline
		run   *ferry.PipelineRun
		val   *ferry.Validation
	}
	fill := func(p *ferry.Project) held {
		var h held
		h.key = &ferry.APIKey{OrgID: o.ID, ProjectID: p.ID, PublicKey: "pk" + p.Name, Role: ferry.RoleGroupOwner}
		must(t, s.CreateAPIKey(ctx, h.key))
		h.token = &ferry.Token{Hash: ferry.HashSecret("tok" + p.Name), KeyID: h.key.ID, ExpiresAt: at(time.Hour)}
		must(t, s.CreateToken(ctx, h.token))
		h.ep = &ferry.Endpoint{ProjectID: p.ID, Name: "c", Kind: ferry.KindRedis, Addrs: []string{"h:1"}}
		must(t, s.CreateEndpoint(ctx, h.ep))
		h.mig = newMigration(t, s, p.ID, ferry.StateCompleted, at(0))
		h.pipe = &ferry.Pipeline{ProjectID: p.ID, Name: "pl", State: ferry.PipelinePaused}
		must(t, s.CreatePipeline(ctx, h.pipe))
		h.run = newRun(t, s, p.ID, h.pipe.ID, ferry.RunDone, at(0))
		h.val = &ferry.Validation{ProjectID: p.ID, Status: "SUCCESS"}
		must(t, s.CreateValidation(ctx, h.val))
		return h
	}
	orgKey := &ferry.APIKey{OrgID: o.ID, PublicKey: "orgkey", Role: ferry.RoleOrgOwner}
	must(t, s.CreateAPIKey(ctx, orgKey))
	g, k := fill(gone), fill(kept)

	must(t, s.DeleteProject(ctx, gone.ID))

	check := func(h held, code string) {
		t.Helper()
		_, err := s.GetAPIKey(ctx, h.key.ID)
		wantCode(t, err, code)
		_, err = s.GetToken(ctx, h.token.Hash)
		wantCode(t, err, code)
		_, err = s.GetEndpoint(ctx, h.ep.ID)
		wantCode(t, err, code)
		_, err = s.GetMigration(ctx, h.mig.ID)
		wantCode(t, err, code)
		_, err = s.GetPipeline(ctx, h.pipe.ID)
		wantCode(t, err, code)
		_, err = s.GetRun(ctx, h.run.ID)
		wantCode(t, err, code)
		_, err = s.GetValidation(ctx, h.val.ID)
		wantCode(t, err, code)
	}
	check(g, ferry.ENOTFOUND)
	check(k, "")
	_, err := s.GetAPIKey(ctx, orgKey.ID)
	must(t, err)
}

func testAPIKeys(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	o1, o2 := newOrg(t, s, "one"), newOrg(t, s, "two")
	p := newProject(t, s, o1.ID, "p")

	k := &ferry.APIKey{OrgID: o1.ID, PublicKey: "abcdefgh", Role: ferry.RoleOrgOwner, Description: "ci"}
	k.SetSecret("the-private-key")
	must(t, s.CreateAPIKey(ctx, k))
	if !ferry.ValidID(k.ID) || k.CreatedAt.IsZero() {
		t.Fatalf("CreateAPIKey did not fill ID and CreatedAt: %+v", k)
	}
	for name, get := range map[string]func() (*ferry.APIKey, error){
		"GetAPIKey":         func() (*ferry.APIKey, error) { return s.GetAPIKey(ctx, k.ID) },
		"GetAPIKeyByPublic": func() (*ferry.APIKey, error) { return s.GetAPIKeyByPublic(ctx, "abcdefgh") },
	} {
		got, err := get()
		must(t, err)
		diff(t, name, k, got) // SecretHash, DigestHA1 and SigningState included
		if got.SecretHash == "" || got.DigestHA1 == "" || !got.CanSign() || !got.CheckSecret("the-private-key") || got.CheckSecret("wrong") {
			t.Fatalf("%s: secret hashes did not round-trip: %+v", name, got)
		}
	}

	// Public keys are unique across organizations.
	wantCode(t, s.CreateAPIKey(ctx, &ferry.APIKey{OrgID: o2.ID, PublicKey: "abcdefgh", Role: ferry.RoleOrgOwner}), ferry.ECONFLICT)
	wantCode(t, s.CreateAPIKey(ctx, &ferry.APIKey{ID: k.ID, OrgID: o1.ID, PublicKey: "other", Role: ferry.RoleOrgOwner}), ferry.ECONFLICT)
	wantCode(t, s.CreateAPIKey(ctx, &ferry.APIKey{OrgID: o1.ID, Role: ferry.RoleOrgOwner}), ferry.EINVALID)

	k2 := &ferry.APIKey{OrgID: o1.ID, ProjectID: p.ID, PublicKey: "k2", Role: ferry.RoleGroupReadOnly, CreatedAt: k.CreatedAt.Add(time.Second)}
	k2.SetSecret("x")
	must(t, s.CreateAPIKey(ctx, k2))
	k3 := &ferry.APIKey{OrgID: o2.ID, PublicKey: "k3", Role: ferry.RoleOrgMember, CreatedAt: k.CreatedAt.Add(2 * time.Second)}
	must(t, s.CreateAPIKey(ctx, k3))

	keys, err := s.ListAPIKeys(ctx, o1.ID)
	must(t, err)
	diff(t, "ListAPIKeys(o1)", []*ferry.APIKey{k, k2}, keys)
	keys, err = s.ListAPIKeys(ctx, ferry.NewID())
	must(t, err)
	notNil(t, "ListAPIKeys", keys)
	if len(keys) != 0 {
		t.Fatalf("ListAPIKeys(unknown org) = %d keys", len(keys))
	}

	_, err = s.GetAPIKey(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetAPIKeyByPublic(ctx, "nope")
	wantCode(t, err, ferry.ENOTFOUND)

	// Deleting a key deletes its tokens.
	tok := &ferry.Token{Hash: ferry.HashSecret("t"), KeyID: k.ID, ExpiresAt: at(time.Hour)}
	must(t, s.CreateToken(ctx, tok))
	must(t, s.DeleteAPIKey(ctx, k.ID))
	_, err = s.GetAPIKey(ctx, k.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetToken(ctx, tok.Hash)
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.DeleteAPIKey(ctx, k.ID), ferry.ENOTFOUND)
	// The public key is free again.
	must(t, s.CreateAPIKey(ctx, &ferry.APIKey{OrgID: o2.ID, PublicKey: "abcdefgh", Role: ferry.RoleOrgOwner}))
}

func testTokens(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	mk := func(secret string, expires time.Time) *ferry.Token {
		tok := &ferry.Token{Hash: ferry.HashSecret(secret), KeyID: "key1", ExpiresAt: expires, CreatedAt: at(-time.Hour)}
		must(t, s.CreateToken(ctx, tok))
		return tok
	}
	past, boundary, future := mk("past", at(-time.Nanosecond)), mk("boundary", at(0)), mk("future", at(time.Hour))
	got, err := s.GetToken(ctx, future.Hash)
	must(t, err)
	diff(t, "GetToken", future, got) // Hash included
	if got.Hash != ferry.HashSecret("future") {
		t.Fatalf("GetToken Hash = %q", got.Hash)
	}
	noCreated := &ferry.Token{Hash: ferry.HashSecret("nc"), KeyID: "key1", ExpiresAt: at(time.Hour)}
	must(t, s.CreateToken(ctx, noCreated))
	if noCreated.CreatedAt.IsZero() {
		t.Fatal("CreateToken did not set CreatedAt")
	}

	wantCode(t, s.CreateToken(ctx, &ferry.Token{Hash: future.Hash, KeyID: "key2", ExpiresAt: at(time.Hour)}), ferry.ECONFLICT)
	wantCode(t, s.CreateToken(ctx, &ferry.Token{KeyID: "key2", ExpiresAt: at(time.Hour)}), ferry.EINVALID)
	wantCode(t, s.CreateToken(ctx, &ferry.Token{Hash: "h", KeyID: "key2"}), ferry.EINVALID)
	_, err = s.GetToken(ctx, ferry.HashSecret("nope"))
	wantCode(t, err, ferry.ENOTFOUND)

	// An expired token is still returned; DeleteExpiredTokens removes the
	// ones that expired before now.
	_, err = s.GetToken(ctx, past.Hash)
	must(t, err)
	must(t, s.DeleteExpiredTokens(ctx, at(0)))
	_, err = s.GetToken(ctx, past.Hash)
	wantCode(t, err, ferry.ENOTFOUND)
	for _, tok := range []*ferry.Token{boundary, future, noCreated} {
		_, err = s.GetToken(ctx, tok.Hash)
		must(t, err)
	}
	must(t, s.DeleteExpiredTokens(ctx, at(time.Minute)))
	_, err = s.GetToken(ctx, boundary.Hash)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetToken(ctx, future.Hash)
	must(t, err)

	// Revocation deletes one token; an unknown one is not an error.
	must(t, s.DeleteToken(ctx, future.Hash))
	_, err = s.GetToken(ctx, future.Hash)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetToken(ctx, noCreated.Hash)
	must(t, err)
	must(t, s.DeleteToken(ctx, ferry.HashSecret("never issued")))

	// TrimTokens keeps a key's newest tokens; other keys' are untouched.
	// The scope project is kept.
	var trim []*ferry.Token
	for i := range 5 {
		tok := &ferry.Token{Hash: ferry.HashSecret(fmt.Sprint("trim", i)), KeyID: "trimkey", ProjectID: "p1", ExpiresAt: at(time.Hour), CreatedAt: at(time.Duration(i-10) * time.Minute)}
		must(t, s.CreateToken(ctx, tok))
		trim = append(trim, tok)
	}
	got, err = s.GetToken(ctx, trim[0].Hash)
	must(t, err)
	diff(t, "GetToken of a scoped token", trim[0], got)
	must(t, s.TrimTokens(ctx, "trimkey", 2))
	for i, tok := range trim {
		_, err := s.GetToken(ctx, tok.Hash)
		if i < 3 {
			wantCode(t, err, ferry.ENOTFOUND)
		} else {
			must(t, err)
		}
	}
	_, err = s.GetToken(ctx, noCreated.Hash)
	must(t, err)
	must(t, s.TrimTokens(ctx, "no such key", 1))
}

func testEndpoints(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	p1, p2 := ferry.NewID(), ferry.NewID()
	e := &ferry.Endpoint{ProjectID: p1, Name: "Cluster0", Kind: ferry.KindMongoDB, Addrs: []string{"a:27017", "b:27017"},
		Username: "admin", Password: "pa$$word", Database: "admin", TLS: true, TLSSkipVerify: true, CACertPEM: "pem", Cluster: true,
		Options: map[string]string{"replicaSet": "rs0", "secretToken": "zzz"}}
	must(t, s.CreateEndpoint(ctx, e))
	if !ferry.ValidID(e.ID) || e.CreatedAt.IsZero() {
		t.Fatalf("CreateEndpoint did not fill ID and CreatedAt: %+v", e)
	}
	got, err := s.GetEndpoint(ctx, e.ID)
	must(t, err)
	diff(t, "GetEndpoint", e, got)
	if got.Password != "pa$$word" || got.Options["secretToken"] != "zzz" {
		t.Fatal("the store must keep endpoint secrets")
	}
	got, err = s.GetEndpointByName(ctx, p1, "Cluster0")
	must(t, err)
	diff(t, "GetEndpointByName", e, got)

	wantCode(t, s.CreateEndpoint(ctx, &ferry.Endpoint{ProjectID: p1, Name: "Cluster0", Kind: ferry.KindRedis, Addrs: []string{"x:1"}}), ferry.ECONFLICT)
	wantCode(t, s.CreateEndpoint(ctx, &ferry.Endpoint{ID: e.ID, ProjectID: p2, Name: "other", Kind: ferry.KindRedis, Addrs: []string{"x:1"}}), ferry.ECONFLICT)
	e2 := &ferry.Endpoint{ProjectID: p2, Name: "Cluster0", Kind: ferry.KindRedis, Addrs: []string{"x:1"}, CreatedAt: e.CreatedAt.Add(time.Second)}
	must(t, s.CreateEndpoint(ctx, e2))
	// Unnamed endpoints do not collide.
	u1 := &ferry.Endpoint{ProjectID: p1, Kind: ferry.KindRedis, Addrs: []string{"u:1"}, CreatedAt: e.CreatedAt.Add(2 * time.Second)}
	u2 := &ferry.Endpoint{ProjectID: p1, Kind: ferry.KindRedis, Addrs: []string{"u:2"}, CreatedAt: e.CreatedAt.Add(3 * time.Second)}
	must(t, s.CreateEndpoint(ctx, u1))
	must(t, s.CreateEndpoint(ctx, u2))

	_, err = s.GetEndpoint(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetEndpointByName(ctx, p2, "nope")
	wantCode(t, err, ferry.ENOTFOUND)

	eps, err := s.ListEndpoints(ctx, p1)
	must(t, err)
	diff(t, "ListEndpoints(p1)", []*ferry.Endpoint{e, u1, u2}, eps)
	eps, err = s.ListEndpoints(ctx, "")
	must(t, err)
	diff(t, "ListEndpoints(all)", []*ferry.Endpoint{e, e2, u1, u2}, eps)
	eps, err = s.ListEndpoints(ctx, ferry.NewID())
	must(t, err)
	notNil(t, "ListEndpoints", eps)

	must(t, s.DeleteEndpoint(ctx, e.ID))
	_, err = s.GetEndpoint(ctx, e.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.DeleteEndpoint(ctx, e.ID), ferry.ENOTFOUND)
	must(t, s.CreateEndpoint(ctx, &ferry.Endpoint{ProjectID: p1, Name: "Cluster0", Kind: ferry.KindRedis, Addrs: []string{"x:1"}}))
}

func testMigrations(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	m := fullMigration(ferry.NewID(), at(0))
	m.Version = 17 // the store sets it
	must(t, s.CreateMigration(ctx, m))
	if m.Version != 1 {
		t.Fatalf("CreateMigration set Version %d, want 1", m.Version)
	}
	got, err := s.GetMigration(ctx, m.ID)
	must(t, err)
	diff(t, "GetMigration", m, got)
	if string(got.Steps[1].Checkpoint) != string(m.Steps[1].Checkpoint) {
		t.Fatalf("checkpoint bytes changed: %s", got.Steps[1].Checkpoint)
	}
	if got.Source.Password != "s3cret-src" || got.Target.Password != "s3cret-dst" {
		t.Fatal("the store must keep endpoint passwords of jobs")
	}

	dup := fullMigration(ferry.NewID(), at(0))
	dup.ID = m.ID
	wantCode(t, s.CreateMigration(ctx, dup), ferry.ECONFLICT)
	// Names need not be unique.
	twin := fullMigration(m.ProjectID, at(time.Second))
	must(t, s.CreateMigration(ctx, twin))

	// Missing ID, CreatedAt and UpdatedAt are filled.
	bare := &ferry.Migration{ProjectID: m.ProjectID, Engine: ferry.KindRedis, State: ferry.StateCreated}
	must(t, s.CreateMigration(ctx, bare))
	if !ferry.ValidID(bare.ID) || bare.CreatedAt.IsZero() || bare.UpdatedAt.IsZero() || bare.Version != 1 {
		t.Fatalf("CreateMigration did not fill ID, CreatedAt, UpdatedAt, Version: %+v", bare)
	}

	_, err = s.GetMigration(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)
	must(t, s.DeleteMigration(ctx, m.ID))
	_, err = s.GetMigration(ctx, m.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	wantCode(t, s.DeleteMigration(ctx, m.ID), ferry.ENOTFOUND)
	_, err = s.UpdateMigration(ctx, m.ID, func(*ferry.Migration) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)
}

func testListMigrations(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	pa, pb := ferry.NewID(), ferry.NewID()
	type spec struct {
		project string
		engine  ferry.EngineKind
		state   ferry.State
		dialect string
	}
	specs := []spec{
		{pa, ferry.KindRedis, ferry.StateRunning, "dcs"},
		{pb, ferry.KindMySQL, ferry.StateCreated, "oms"},
		{pa, ferry.KindMySQL, ferry.StatePaused, "oms"},
		{pa, ferry.KindRedis, ferry.StateCompleted, "native"},
		{pb, ferry.KindMongoDB, ferry.StateRunning, "atlas"},
		{pa, ferry.KindMySQL, ferry.StateRunning, "oms"},
		{pa, ferry.KindRedis, ferry.StateFailed, "dcs"},
	}
	// Created out of order: the list orders by CreatedAt, not by insertion.
	order := []int{3, 0, 6, 1, 5, 2, 4}
	ms := make([]*ferry.Migration, len(specs))
	for _, i := range order {
		sp := specs[i]
		m := &ferry.Migration{ProjectID: sp.project, Engine: sp.engine, State: sp.state, Dialect: sp.dialect,
			Name: fmt.Sprintf("m%d", i), CreatedAt: at(time.Duration(i) * time.Second)}
		must(t, s.CreateMigration(ctx, m))
		ms[i] = m
	}
	pick := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, ms[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		f     ferry.MigrationFilter
		want  []string
		total int
	}{
		{"all", ferry.MigrationFilter{}, pick(0, 1, 2, 3, 4, 5, 6), 7},
		{"project", ferry.MigrationFilter{ProjectID: pa}, pick(0, 2, 3, 5, 6), 5},
		{"engine", ferry.MigrationFilter{Engine: ferry.KindMySQL}, pick(1, 2, 5), 3},
		{"one state", ferry.MigrationFilter{States: []ferry.State{ferry.StateRunning}}, pick(0, 4, 5), 3},
		{"states", ferry.MigrationFilter{States: []ferry.State{ferry.StatePaused, ferry.StateFailed, ferry.StateCreated}}, pick(1, 2, 6), 3},
		{"dialect", ferry.MigrationFilter{Dialect: "oms"}, pick(1, 2, 5), 3},
		{"combined", ferry.MigrationFilter{ProjectID: pa, Engine: ferry.KindMySQL, States: []ferry.State{ferry.StateRunning, ferry.StatePaused}, Dialect: "oms"}, pick(2, 5), 2},
		{"limit", ferry.MigrationFilter{Limit: 2}, pick(0, 1), 7},
		{"offset and limit", ferry.MigrationFilter{Offset: 2, Limit: 3}, pick(2, 3, 4), 7},
		{"offset only", ferry.MigrationFilter{Offset: 5}, pick(5, 6), 7},
		{"filtered page", ferry.MigrationFilter{ProjectID: pa, Offset: 1, Limit: 2}, pick(2, 3), 5},
		{"past the end", ferry.MigrationFilter{ProjectID: pa, Offset: 9, Limit: 2}, pick(), 5},
		{"no match", ferry.MigrationFilter{ProjectID: pb, Dialect: "dcs"}, pick(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := s.ListMigrations(ctx, tc.f)
			must(t, err)
			notNil(t, "ListMigrations", got)
			diff(t, "ListMigrations ids", tc.want, migIDs(got))
			if total != tc.total {
				t.Fatalf("total = %d, want %d", total, tc.total)
			}
		})
	}
	// Listed jobs are complete.
	got, _, err := s.ListMigrations(ctx, ferry.MigrationFilter{Limit: 1})
	must(t, err)
	diff(t, "listed job", ms[0], got[0])
}

func testUpdateMigration(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	m := fullMigration(ferry.NewID(), at(0))
	must(t, s.CreateMigration(ctx, m))
	before := time.Now().Add(-time.Second)

	got, err := s.UpdateMigration(ctx, m.ID, func(x *ferry.Migration) error {
		diff(t, "fn's copy", m, x)
		x.State = ferry.StatePaused
		x.Lease = nil
		x.Steps[1].Progress = 50
		x.Steps[1].Checkpoint = json.RawMessage(`{"pos":2}`)
		x.Hosts = append(x.Hosts, "agent-b")
		x.ID = "not-mine"            // ignored: the id cannot change
		x.Version = 100              // ignored: the store counts
		x.CreatedAt = at(time.Hour)  // ignored: creation time cannot change
		x.UpdatedAt = at(-time.Hour) // replaced by the store's clock
		return nil
	})
	must(t, err)
	if got.Version != 2 || got.ID != m.ID || !got.CreatedAt.Equal(m.CreatedAt) {
		t.Fatalf("update: version %d id %s createdAt %v", got.Version, got.ID, got.CreatedAt)
	}
	if got.UpdatedAt.Before(before) || got.UpdatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("UpdatedAt = %v, want about now", got.UpdatedAt)
	}
	fresh, err := s.GetMigration(ctx, m.ID)
	must(t, err)
	diff(t, "stored update", got, fresh)
	if fresh.State != ferry.StatePaused || fresh.Steps[1].Progress != 50 || string(fresh.Steps[1].Checkpoint) != `{"pos":2}` {
		t.Fatalf("update not stored: %+v", fresh)
	}
	// The state column follows the data.
	list, _, err := s.ListMigrations(ctx, ferry.MigrationFilter{States: []ferry.State{ferry.StatePaused}})
	must(t, err)
	diff(t, "paused jobs", []string{m.ID}, migIDs(list))

	// An error from fn writes nothing and comes back as it is.
	boom := errors.New("boom")
	_, err = s.UpdateMigration(ctx, m.ID, func(x *ferry.Migration) error {
		x.State = ferry.StateFailed
		x.Attempts = 99
		return boom
	})
	if err != boom && !errors.Is(err, boom) {
		t.Fatalf("UpdateMigration returned %v, want fn's error", err)
	}
	domain := ferry.Errorf(ferry.ECONFLICT, "no")
	_, err = s.UpdateMigration(ctx, m.ID, func(x *ferry.Migration) error { return domain })
	wantCode(t, err, ferry.ECONFLICT)
	after, err := s.GetMigration(ctx, m.ID)
	must(t, err)
	diff(t, "after failed updates", fresh, after)
}

func testUpdateMigrationConcurrent(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	m := newMigration(t, s, ferry.NewID(), ferry.StateRunning, at(0))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateMigration(ctx, m.ID, func(x *ferry.Migration) error {
				x.Attempts++
				x.Hosts = append(x.Hosts, fmt.Sprintf("h%02d", i))
				return nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	got, err := s.GetMigration(ctx, m.ID)
	must(t, err)
	if got.Attempts != n || got.Version != n+1 || len(got.Hosts) != n {
		t.Fatalf("after %d concurrent updates: attempts %d, version %d, %d hosts; want %d, %d, %d",
			n, got.Attempts, got.Version, len(got.Hosts), n, n+1, n)
	}
}

func testClaimMigration(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	p := ferry.NewID()
	ttl := time.Minute

	none, err := s.ClaimMigration(ctx, "a1", at(0), ttl)
	must(t, err)
	if none != nil {
		t.Fatalf("claimed %s from an empty store", none.ID)
	}
	_, err = s.ClaimMigration(ctx, "", at(0), ttl)
	wantCode(t, err, ferry.EINVALID)
	_, err = s.ClaimMigration(ctx, "a1", at(0), 0)
	wantCode(t, err, ferry.EINVALID)

	// Only active states are claimed, oldest first.
	for i, st := range []ferry.State{ferry.StateCreated, ferry.StatePaused, ferry.StateCompleted, ferry.StateFailed,
		ferry.StateExpired, ferry.StateReleasing, ferry.StateReleased, ferry.StateDeleted} {
		newMigration(t, s, p, st, at(time.Duration(-10-i)*time.Hour))
	}
	cut := newMigration(t, s, p, ferry.StateCuttingOver, at(2*time.Second))
	run := newMigration(t, s, p, ferry.StateRunning, at(time.Second))

	c1, err := s.ClaimMigration(ctx, "a1", at(0), ttl)
	must(t, err)
	if c1 == nil || c1.ID != run.ID {
		t.Fatalf("first claim = %v, want the oldest active job %s", c1, run.ID)
	}
	if c1.Lease == nil || c1.Lease.AgentID != "a1" || !c1.Lease.ExpiresAt.Equal(at(ttl)) {
		t.Fatalf("lease = %+v, want a1 until %v", c1.Lease, at(ttl))
	}
	diff(t, "hosts", []string{"a1"}, c1.Hosts)
	if c1.Version != 2 {
		t.Fatalf("claim version = %d, want 2", c1.Version)
	}
	stored, err := s.GetMigration(ctx, run.ID)
	must(t, err)
	diff(t, "stored claim", c1, stored)

	c2, err := s.ClaimMigration(ctx, "a2", at(0), ttl)
	must(t, err)
	if c2 == nil || c2.ID != cut.ID {
		t.Fatalf("second claim = %v, want the cutting-over job %s", c2, cut.ID)
	}
	// Both leases are valid: nothing to claim, up to and including ExpiresAt.
	for _, now := range []time.Time{at(0), at(ttl / 2), at(ttl)} {
		c, err := s.ClaimMigration(ctx, "a3", now, ttl)
		must(t, err)
		if c != nil {
			t.Fatalf("claimed %s at %v while its lease is valid", c.ID, now)
		}
	}

	// Once a1's lease has expired, a3 takes the job and becomes its newest host.
	c3, err := s.ClaimMigration(ctx, "a3", at(ttl+time.Nanosecond), ttl)
	must(t, err)
	if c3 == nil || c3.ID != run.ID {
		t.Fatalf("claim after expiry = %v, want %s", c3, run.ID)
	}
	diff(t, "hosts", []string{"a1", "a3"}, c3.Hosts)
	if !c3.Lease.ExpiresAt.Equal(at(2*ttl + time.Nanosecond)) {
		t.Fatalf("lease expires %v", c3.Lease.ExpiresAt)
	}

	// The same agent reclaiming its expired job is not appended twice.
	c4, err := s.ClaimMigration(ctx, "a3", at(10*ttl), ttl)
	must(t, err)
	if c4 == nil || c4.ID != run.ID {
		t.Fatalf("reclaim = %v, want %s", c4, run.ID)
	}
	diff(t, "hosts", []string{"a1", "a3"}, c4.Hosts)

	// A lease renewed through UpdateMigration holds.
	_, err = s.UpdateMigration(ctx, cut.ID, func(m *ferry.Migration) error {
		m.Lease.ExpiresAt = at(100 * ttl)
		return nil
	})
	must(t, err)
	c5, err := s.ClaimMigration(ctx, "a4", at(11*ttl), ttl)
	must(t, err)
	if c5 != nil {
		t.Fatalf("claimed %s at 11 ttl, want nothing (one lease renewed, one valid)", c5.ID)
	}
	// A job paused and resumed at once keeps the lease of the agent that
	// runs it: nobody else claims it beside that agent.
	_, err = s.UpdateMigration(ctx, cut.ID, func(m *ferry.Migration) error {
		if err := m.Transition(ferry.StatePaused, at(11*ttl)); err != nil {
			return err
		}
		return m.Transition(ferry.StateRunning, at(11*ttl))
	})
	must(t, err)
	c6, err := s.ClaimMigration(ctx, "a4", at(11*ttl), ttl)
	must(t, err)
	if c6 != nil {
		t.Fatalf("claimed %s while its agent still holds the lease", c6.ID)
	}
	// Once that agent gives the lease back, the job is claimable at once.
	_, err = s.UpdateMigration(ctx, cut.ID, func(m *ferry.Migration) error {
		m.Lease = nil
		return nil
	})
	must(t, err)
	c6, err = s.ClaimMigration(ctx, "a4", at(11*ttl), ttl)
	must(t, err)
	if c6 == nil || c6.ID != cut.ID {
		t.Fatalf("claim of the released job = %v, want %s", c6, cut.ID)
	}
	diff(t, "hosts", []string{"a2", "a4"}, c6.Hosts)
}

func testClaimMigrationConcurrent(t *testing.T, s ferry.Store) {
	const jobs, agents = 12, 6
	for i := range jobs {
		newMigration(t, s, ferry.NewID(), ferry.StateRunning, at(time.Duration(i)*time.Second))
	}
	got := claimAll(t, agents, jobs, func(ctx context.Context, agent string) (string, error) {
		m, err := s.ClaimMigration(ctx, agent, at(0), time.Hour)
		if m == nil || err != nil {
			return "", err
		}
		return m.ID, nil
	})
	if len(got) != jobs {
		t.Fatalf("claimed %d distinct jobs, want %d", len(got), jobs)
	}
}

// claimAll runs agents goroutines that claim until there is nothing left
// (or, for a broken store, until each made jobs+1 claims) and fails the test
// if two of them got the same job; it returns the claimed ids.
func claimAll(t *testing.T, agents, jobs int, claim func(ctx context.Context, agent string) (string, error)) map[string]string {
	t.Helper()
	ctx := t.Context()
	var (
		mu  sync.Mutex
		got = map[string]string{}
		dup []string
		wg  sync.WaitGroup
	)
	errs := make(chan error, agents)
	for a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := fmt.Sprintf("agent-%d", a)
			for range jobs + 1 {
				id, err := claim(ctx, agent)
				if err != nil {
					errs <- err
					return
				}
				if id == "" {
					return
				}
				mu.Lock()
				if prev, ok := got[id]; ok {
					dup = append(dup, fmt.Sprintf("%s claimed by %s and %s", id, prev, agent))
				}
				got[id] = agent
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(dup) > 0 {
		sort.Strings(dup)
		t.Fatalf("jobs claimed twice while leased: %v", dup)
	}
	return got
}

func testPipelines(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	pa, pb := ferry.NewID(), ferry.NewID()
	p := &ferry.Pipeline{ProjectID: pa, Name: "sample_pipeline", State: ferry.PipelineActive,
		Source:                 ferry.PipelineSource{Type: ferry.SourcePeriodic, ClusterName: "Cluster0", DatabaseName: "db", CollectionName: "c", GroupID: pa, PolicyItemID: "pi"},
		Sink:                   ferry.PipelineSink{Type: "DLS", MetadataProvider: "AWS", MetadataRegion: "US_EAST_1", PartitionFields: []ferry.PartitionField{{FieldName: "year", Order: 0}}, Location: "/data"},
		Transformations:        []ferry.Transformation{{Field: "ssn", Type: "EXCLUDE"}},
		BackupFrequencyType:    "DAILY",
		DatasetRetentionPolicy: &ferry.RetentionPolicy{Units: "DAYS", Value: 7, LastModifiedDate: at(0)},
		NextRunAt:              ptr(at(24 * time.Hour)),
		CreatedAt:              at(0),
		Version:                5,
	}
	must(t, s.CreatePipeline(ctx, p))
	if !ferry.ValidID(p.ID) || p.Version != 1 || p.UpdatedAt.IsZero() {
		t.Fatalf("CreatePipeline did not fill ID, Version, UpdatedAt: %+v", p)
	}
	got, err := s.GetPipeline(ctx, p.ID)
	must(t, err)
	diff(t, "GetPipeline", p, got)
	got, err = s.GetPipelineByName(ctx, pa, "sample_pipeline")
	must(t, err)
	diff(t, "GetPipelineByName", p, got)

	wantCode(t, s.CreatePipeline(ctx, &ferry.Pipeline{ProjectID: pa, Name: "sample_pipeline"}), ferry.ECONFLICT)
	wantCode(t, s.CreatePipeline(ctx, &ferry.Pipeline{ID: p.ID, ProjectID: pb, Name: "x"}), ferry.ECONFLICT)
	wantCode(t, s.CreatePipeline(ctx, &ferry.Pipeline{ProjectID: pa}), ferry.EINVALID)
	p2 := &ferry.Pipeline{ProjectID: pb, Name: "sample_pipeline", State: ferry.PipelinePaused, CreatedAt: at(time.Second)}
	must(t, s.CreatePipeline(ctx, p2))
	p3 := &ferry.Pipeline{ProjectID: pa, Name: "second", State: ferry.PipelinePaused, CreatedAt: at(2 * time.Second)}
	must(t, s.CreatePipeline(ctx, p3))

	_, err = s.GetPipeline(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetPipelineByName(ctx, pb, "second")
	wantCode(t, err, ferry.ENOTFOUND)

	ps, err := s.ListPipelines(ctx, pa)
	must(t, err)
	diff(t, "ListPipelines(pa)", []*ferry.Pipeline{p, p3}, ps)
	ps, err = s.ListPipelines(ctx, "")
	must(t, err)
	diff(t, "ListPipelines(all)", []*ferry.Pipeline{p, p2, p3}, ps)
	ps, err = s.ListPipelines(ctx, ferry.NewID())
	must(t, err)
	notNil(t, "ListPipelines", ps)

	// Update: version, fn errors, renames and their uniqueness.
	up, err := s.UpdatePipeline(ctx, p.ID, func(x *ferry.Pipeline) error {
		x.State = ferry.PipelinePaused
		x.NextRunAt = nil
		return nil
	})
	must(t, err)
	if up.Version != 2 || up.State != ferry.PipelinePaused || up.NextRunAt != nil {
		t.Fatalf("UpdatePipeline = %+v", up)
	}
	got, err = s.GetPipeline(ctx, p.ID)
	must(t, err)
	diff(t, "updated pipeline", up, got)
	_, err = s.UpdatePipeline(ctx, p3.ID, func(x *ferry.Pipeline) error { x.Name = "sample_pipeline"; return nil })
	wantCode(t, err, ferry.ECONFLICT)
	boom := errors.New("boom")
	_, err = s.UpdatePipeline(ctx, p3.ID, func(x *ferry.Pipeline) error { x.State = ferry.PipelineActive; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("UpdatePipeline returned %v, want fn's error", err)
	}
	got, err = s.GetPipeline(ctx, p3.ID)
	must(t, err)
	diff(t, "pipeline after failed updates", p3, got)
	renamed, err := s.UpdatePipeline(ctx, p3.ID, func(x *ferry.Pipeline) error { x.Name = "third"; return nil })
	must(t, err)
	got, err = s.GetPipelineByName(ctx, pa, "third")
	must(t, err)
	diff(t, "renamed pipeline", renamed, got)
	_, err = s.UpdatePipeline(ctx, ferry.NewID(), func(*ferry.Pipeline) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)

	// Deleting a pipeline deletes its runs.
	r := newRun(t, s, pa, p.ID, ferry.RunDone, at(0))
	other := newRun(t, s, pa, p3.ID, ferry.RunDone, at(0))
	must(t, s.DeletePipeline(ctx, p.ID))
	_, err = s.GetPipeline(ctx, p.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetRun(ctx, r.ID)
	wantCode(t, err, ferry.ENOTFOUND)
	_, err = s.GetRun(ctx, other.ID)
	must(t, err)
	wantCode(t, s.DeletePipeline(ctx, p.ID), ferry.ENOTFOUND)
	must(t, s.CreatePipeline(ctx, &ferry.Pipeline{ProjectID: pa, Name: "sample_pipeline"}))
}

func testRuns(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	r := &ferry.PipelineRun{ProjectID: ferry.NewID(), PipelineID: ferry.NewID(), PipelineName: "sample_pipeline",
		State: ferry.RunInProgress, Phase: ferry.PhaseExport, BackupFrequencyType: "DAILY", SnapshotID: "snap1",
		DatasetName: "ds", DatasetRetentionPolicy: &ferry.RetentionPolicy{Units: "WEEKS", Value: 2, LastModifiedDate: at(0)},
		ScheduledDeletionDate: ptr(at(14 * 24 * time.Hour)), Stats: ferry.RunStats{BytesExported: 1 << 33, NumDocs: 1000},
		Checkpoint: []byte{0, 1, 2, 0xff, 'x'}, Error: "", Hosts: []string{"a"}, Lease: &ferry.Lease{AgentID: "a", ExpiresAt: at(time.Minute)},
		CreatedAt: at(0)}
	must(t, s.CreateRun(ctx, r))
	if !ferry.ValidID(r.ID) || r.Version != 1 || r.UpdatedAt.IsZero() {
		t.Fatalf("CreateRun did not fill ID, Version, UpdatedAt: %+v", r)
	}
	got, err := s.GetRun(ctx, r.ID)
	must(t, err)
	diff(t, "GetRun", r, got)
	wantCode(t, s.CreateRun(ctx, &ferry.PipelineRun{ID: r.ID, State: ferry.RunPending}), ferry.ECONFLICT)
	_, err = s.GetRun(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)

	up, err := s.UpdateRun(ctx, r.ID, func(x *ferry.PipelineRun) error {
		x.State, x.Phase, x.Lease = ferry.RunDone, ferry.PhaseIngestion, nil
		x.Stats.NumDocs = 2000
		return nil
	})
	must(t, err)
	if up.Version != 2 || up.State != ferry.RunDone || up.Stats.NumDocs != 2000 {
		t.Fatalf("UpdateRun = %+v", up)
	}
	got, err = s.GetRun(ctx, r.ID)
	must(t, err)
	diff(t, "updated run", up, got)
	boom := errors.New("boom")
	_, err = s.UpdateRun(ctx, r.ID, func(x *ferry.PipelineRun) error { x.State = ferry.RunFailed; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateRun returned %v, want fn's error", err)
	}
	got, err = s.GetRun(ctx, r.ID)
	must(t, err)
	diff(t, "run after failed update", up, got)
	_, err = s.UpdateRun(ctx, ferry.NewID(), func(*ferry.PipelineRun) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)
}

func testListRuns(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	pa, pb := ferry.NewID(), ferry.NewID()
	pl1, pl2, pl3 := ferry.NewID(), ferry.NewID(), ferry.NewID()
	type spec struct{ project, pipeline, state string }
	specs := []spec{
		{pa, pl1, ferry.RunDone},
		{pa, pl1, ferry.RunFailed},
		{pa, pl2, ferry.RunPending},
		{pb, pl3, ferry.RunDone},
		{pa, pl1, ferry.RunInProgress},
		{pa, pl2, ferry.RunDone},
	}
	rs := make([]*ferry.PipelineRun, len(specs))
	for _, i := range []int{4, 1, 5, 0, 3, 2} {
		rs[i] = newRun(t, s, specs[i].project, specs[i].pipeline, specs[i].state, at(time.Duration(i)*time.Minute))
	}
	pick := func(is ...int) []string {
		out := []string{}
		for _, i := range is {
			out = append(out, rs[i].ID)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		f     ferry.RunFilter
		want  []string
		total int
	}{
		{"all newest first", ferry.RunFilter{}, pick(5, 4, 3, 2, 1, 0), 6},
		{"project", ferry.RunFilter{ProjectID: pa}, pick(5, 4, 2, 1, 0), 5},
		{"pipeline", ferry.RunFilter{PipelineID: pl1}, pick(4, 1, 0), 3},
		{"states", ferry.RunFilter{States: []string{ferry.RunDone, ferry.RunFailed}}, pick(5, 3, 1, 0), 4},
		{"created before", ferry.RunFilter{CreatedBefore: ptr(at(3 * time.Minute))}, pick(2, 1, 0), 3},
		{"created before is strict", ferry.RunFilter{CreatedBefore: ptr(at(3*time.Minute + time.Nanosecond))}, pick(3, 2, 1, 0), 4},
		{"combined", ferry.RunFilter{ProjectID: pa, PipelineID: pl1, States: []string{ferry.RunDone, ferry.RunInProgress}, CreatedBefore: ptr(at(time.Hour))}, pick(4, 0), 2},
		{"page", ferry.RunFilter{Offset: 1, Limit: 2}, pick(4, 3), 6},
		{"filtered page", ferry.RunFilter{ProjectID: pa, Offset: 3, Limit: 5}, pick(1, 0), 5},
		{"past the end", ferry.RunFilter{Offset: 6, Limit: 5}, pick(), 6},
		{"no match", ferry.RunFilter{PipelineID: pl3, States: []string{ferry.RunPending}}, pick(), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, total, err := s.ListRuns(ctx, tc.f)
			must(t, err)
			notNil(t, "ListRuns", got)
			diff(t, "ListRuns ids", tc.want, runIDs(got))
			if total != tc.total {
				t.Fatalf("total = %d, want %d", total, tc.total)
			}
		})
	}
}

func testClaimRun(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	ttl := 30 * time.Second
	p, pl := ferry.NewID(), ferry.NewID()
	_, err := s.ClaimRun(ctx, "", at(0), ttl)
	wantCode(t, err, ferry.EINVALID)
	_, err = s.ClaimRun(ctx, "a1", at(0), -time.Second)
	wantCode(t, err, ferry.EINVALID)
	for i, st := range []string{ferry.RunDone, ferry.RunFailed, ferry.RunDatasetDeleted} {
		newRun(t, s, p, pl, st, at(time.Duration(-i-1)*time.Hour))
	}
	inProgress := newRun(t, s, p, pl, ferry.RunInProgress, at(2*time.Second))
	pending := newRun(t, s, p, pl, ferry.RunPending, at(time.Second))

	c1, err := s.ClaimRun(ctx, "a1", at(0), ttl)
	must(t, err)
	if c1 == nil || c1.ID != pending.ID {
		t.Fatalf("first claim = %v, want the oldest %s", c1, pending.ID)
	}
	if c1.Lease == nil || c1.Lease.AgentID != "a1" || !c1.Lease.ExpiresAt.Equal(at(ttl)) || c1.Version != 2 {
		t.Fatalf("claimed run: lease %+v version %d", c1.Lease, c1.Version)
	}
	diff(t, "hosts", []string{"a1"}, c1.Hosts)
	stored, err := s.GetRun(ctx, pending.ID)
	must(t, err)
	diff(t, "stored claim", c1, stored)

	c2, err := s.ClaimRun(ctx, "a2", at(0), ttl)
	must(t, err)
	if c2 == nil || c2.ID != inProgress.ID {
		t.Fatalf("second claim = %v, want %s", c2, inProgress.ID)
	}
	none, err := s.ClaimRun(ctx, "a3", at(ttl), ttl)
	must(t, err)
	if none != nil {
		t.Fatalf("claimed %s while its lease is valid", none.ID)
	}
	c3, err := s.ClaimRun(ctx, "a3", at(ttl+time.Millisecond), ttl)
	must(t, err)
	if c3 == nil || c3.ID != pending.ID {
		t.Fatalf("claim after expiry = %v, want %s", c3, pending.ID)
	}
	diff(t, "hosts", []string{"a1", "a3"}, c3.Hosts)
	// A run that is done is not claimed even with an expired lease.
	_, err = s.UpdateRun(ctx, inProgress.ID, func(r *ferry.PipelineRun) error { r.State = ferry.RunDone; return nil })
	must(t, err)
	c4, err := s.ClaimRun(ctx, "a3", at(time.Hour), ttl)
	must(t, err)
	if c4 == nil || c4.ID != pending.ID {
		t.Fatalf("claim at 1h = %v, want %s", c4, pending.ID)
	}
	diff(t, "hosts", []string{"a1", "a3"}, c4.Hosts)
	c5, err := s.ClaimRun(ctx, "a4", at(time.Hour), ttl)
	must(t, err)
	if c5 != nil {
		t.Fatalf("claimed %s, want nothing", c5.ID)
	}
}

func testClaimRunConcurrent(t *testing.T, s ferry.Store) {
	const runs, agents = 12, 6
	for i := range runs {
		st := ferry.RunPending
		if i%3 == 0 {
			st = ferry.RunInProgress
		}
		newRun(t, s, ferry.NewID(), ferry.NewID(), st, at(time.Duration(i)*time.Second))
	}
	got := claimAll(t, agents, runs, func(ctx context.Context, agent string) (string, error) {
		r, err := s.ClaimRun(ctx, agent, at(0), time.Hour)
		if r == nil || err != nil {
			return "", err
		}
		return r.ID, nil
	})
	if len(got) != runs {
		t.Fatalf("claimed %d distinct runs, want %d", len(got), runs)
	}
}

func testValidations(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	v := &ferry.Validation{ProjectID: ferry.NewID(), SourceGroupID: ferry.NewID(), Status: "PENDING"}
	must(t, s.CreateValidation(ctx, v))
	if !ferry.ValidID(v.ID) || v.CreatedAt.IsZero() {
		t.Fatalf("CreateValidation did not fill ID and CreatedAt: %+v", v)
	}
	got, err := s.GetValidation(ctx, v.ID)
	must(t, err)
	diff(t, "GetValidation", v, got)
	wantCode(t, s.CreateValidation(ctx, &ferry.Validation{ID: v.ID, Status: "PENDING"}), ferry.ECONFLICT)
	_, err = s.GetValidation(ctx, ferry.NewID())
	wantCode(t, err, ferry.ENOTFOUND)

	up, err := s.UpdateValidation(ctx, v.ID, func(x *ferry.Validation) error {
		x.Status = "FAILED"
		x.Errors = []string{"source unreachable", "target not empty"}
		x.ID = "other"
		return nil
	})
	must(t, err)
	if up.ID != v.ID || up.Status != "FAILED" || len(up.Errors) != 2 {
		t.Fatalf("UpdateValidation = %+v", up)
	}
	got, err = s.GetValidation(ctx, v.ID)
	must(t, err)
	diff(t, "updated validation", up, got)
	boom := errors.New("boom")
	_, err = s.UpdateValidation(ctx, v.ID, func(x *ferry.Validation) error { x.Status = "SUCCESS"; return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateValidation returned %v, want fn's error", err)
	}
	got, err = s.GetValidation(ctx, v.ID)
	must(t, err)
	diff(t, "validation after failed update", up, got)
	_, err = s.UpdateValidation(ctx, ferry.NewID(), func(*ferry.Validation) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)
}

func testAgents(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	as, err := s.ListAgents(ctx)
	must(t, err)
	notNil(t, "ListAgents", as)
	if len(as) != 0 {
		t.Fatalf("fresh store has %d agents", len(as))
	}
	wantCode(t, s.UpsertAgent(ctx, &ferry.AgentInfo{Hostname: "h"}), ferry.EINVALID)

	b := &ferry.AgentInfo{ID: "b-agent", Hostname: "host-b", Version: "1", StartedAt: at(0), LastSeen: at(time.Second)}
	a := &ferry.AgentInfo{ID: "a-agent", Hostname: "host-a", Version: "1", StartedAt: at(0), LastSeen: at(time.Second)}
	must(t, s.UpsertAgent(ctx, b))
	must(t, s.UpsertAgent(ctx, a))
	as, err = s.ListAgents(ctx)
	must(t, err)
	diff(t, "ListAgents", []*ferry.AgentInfo{a, b}, as)

	// A second announcement replaces the first.
	b2 := &ferry.AgentInfo{ID: "b-agent", Hostname: "host-b2", Version: "2", StartedAt: at(time.Minute), LastSeen: at(2 * time.Minute)}
	must(t, s.UpsertAgent(ctx, b2))
	as, err = s.ListAgents(ctx)
	must(t, err)
	diff(t, "ListAgents after upsert", []*ferry.AgentInfo{a, b2}, as)

	c := &ferry.AgentInfo{ID: "c-agent"}
	must(t, s.UpsertAgent(ctx, c))
	if c.LastSeen.IsZero() {
		t.Fatal("UpsertAgent did not set LastSeen")
	}
}

func testTimes(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	local := time.Date(2031, 7, 8, 9, 10, 11, 987654321, zone)

	o := &ferry.Organization{Name: "tz", CreatedAt: local}
	must(t, s.CreateOrg(ctx, o))
	got, err := s.GetOrg(ctx, o.ID)
	must(t, err)
	checkUTC(t, "org CreatedAt", got.CreatedAt, local)

	m := fullMigration(ferry.NewID(), local)
	m.CutoverDeadline = ptr(local.Add(time.Hour))
	m.Lease = &ferry.Lease{AgentID: "a", ExpiresAt: local.Add(time.Minute)}
	must(t, s.CreateMigration(ctx, m))
	gm, err := s.GetMigration(ctx, m.ID)
	must(t, err)
	checkUTC(t, "migration CreatedAt", gm.CreatedAt, local)
	checkUTC(t, "migration CutoverDeadline", *gm.CutoverDeadline, local.Add(time.Hour))
	checkUTC(t, "migration Lease.ExpiresAt", gm.Lease.ExpiresAt, local.Add(time.Minute))
	checkUTC(t, "step StartedAt", *gm.Steps[0].StartedAt, local.Add(time.Second))
	checkUTC(t, "step CheckpointTime", *gm.Steps[1].CheckpointTime, local.Add(3*time.Second))
	if gm.UpdatedAt.Location() != time.UTC {
		t.Fatalf("UpdatedAt in %v", gm.UpdatedAt.Location())
	}
	up, err := s.UpdateMigration(ctx, m.ID, func(x *ferry.Migration) error {
		x.FinishedAt = ptr(local.Add(2 * time.Hour))
		return nil
	})
	must(t, err)
	checkUTC(t, "returned FinishedAt", *up.FinishedAt, local.Add(2*time.Hour))
	if up.UpdatedAt.Location() != time.UTC {
		t.Fatalf("UpdatedAt in %v", up.UpdatedAt.Location())
	}

	tok := &ferry.Token{Hash: "h", KeyID: "k", ExpiresAt: local, CreatedAt: local.Add(-time.Hour)}
	must(t, s.CreateToken(ctx, tok))
	gt, err := s.GetToken(ctx, "h")
	must(t, err)
	checkUTC(t, "token ExpiresAt", gt.ExpiresAt, local)
	checkUTC(t, "token CreatedAt", gt.CreatedAt, local.Add(-time.Hour))

	// Times outside the Unix nanosecond range survive too.
	far := time.Date(2999, 1, 2, 3, 4, 5, 6, time.UTC)
	old := time.Date(1601, 1, 1, 0, 0, 0, 1, time.UTC)
	must(t, s.CreateOrg(ctx, &ferry.Organization{ID: ferry.NewID(), Name: "far", CreatedAt: far}))
	must(t, s.CreateOrg(ctx, &ferry.Organization{ID: ferry.NewID(), Name: "old", CreatedAt: old}))
	orgs, err := s.ListOrgs(ctx)
	must(t, err)
	if len(orgs) != 3 || !orgs[0].CreatedAt.Equal(old) || !orgs[2].CreatedAt.Equal(far) {
		t.Fatalf("orgs with extreme times: %+v", orgs)
	}
}

func checkUTC(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("%s: location %v, want UTC", what, got.Location())
	}
	if !got.Equal(want) || got.Nanosecond() != want.Nanosecond() {
		t.Fatalf("%s = %v, want %v", what, got, want.UTC())
	}
}

func testUpdateProjectAndEndpoint(t *testing.T, s ferry.Store) {
	ctx := t.Context()
	o := newOrg(t, s, "one")
	p := newProject(t, s, o.ID, "prod")
	q := newProject(t, s, o.ID, "staging")

	// A rename keeps what the store owns even if fn tries to change it.
	up, err := s.UpdateProject(ctx, p.ID, func(x *ferry.Project) error {
		x.Name, x.ID, x.OrgID = "production", ferry.NewID(), ferry.NewID()
		return nil
	})
	must(t, err)
	if up.Name != "production" || up.ID != p.ID || up.OrgID != o.ID || !up.CreatedAt.Equal(p.CreatedAt) {
		t.Fatalf("UpdateProject = %+v", up)
	}
	got, err := s.GetProjectByName(ctx, o.ID, "production")
	must(t, err)
	diff(t, "renamed project", up, got)
	_, err = s.UpdateProject(ctx, q.ID, func(x *ferry.Project) error { x.Name = "production"; return nil })
	wantCode(t, err, ferry.ECONFLICT)
	boom := errors.New("boom")
	if _, err = s.UpdateProject(ctx, q.ID, func(x *ferry.Project) error { x.Name = "lost"; return boom }); !errors.Is(err, boom) {
		t.Fatalf("fn's error: %v", err)
	}
	if got, _ := s.GetProject(ctx, q.ID); got.Name != "staging" {
		t.Fatalf("a failed update changed the name to %q", got.Name)
	}
	_, err = s.UpdateProject(ctx, ferry.NewID(), func(*ferry.Project) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)

	e := &ferry.Endpoint{ProjectID: p.ID, Name: "src", Kind: ferry.KindMySQL, Addrs: []string{"a:3306"}, Password: "old"}
	must(t, s.CreateEndpoint(ctx, e))
	must(t, s.CreateEndpoint(ctx, &ferry.Endpoint{ProjectID: p.ID, Name: "dst", Kind: ferry.KindMySQL, Addrs: []string{"b:3306"}}))
	ue, err := s.UpdateEndpoint(ctx, e.ID, func(x *ferry.Endpoint) error {
		x.Addrs, x.Password, x.Kind, x.ProjectID = []string{"c:3306"}, "new", ferry.KindRedis, ferry.NewID()
		return nil
	})
	must(t, err)
	if ue.Kind != ferry.KindMySQL || ue.ProjectID != p.ID || ue.Password != "new" || ue.Addrs[0] != "c:3306" {
		t.Fatalf("UpdateEndpoint = %+v", ue)
	}
	got2, err := s.GetEndpointByName(ctx, p.ID, "src")
	must(t, err)
	diff(t, "updated endpoint", ue, got2)
	_, err = s.UpdateEndpoint(ctx, e.ID, func(x *ferry.Endpoint) error { x.Name = "dst"; return nil })
	wantCode(t, err, ferry.ECONFLICT)
	_, err = s.UpdateEndpoint(ctx, ferry.NewID(), func(*ferry.Endpoint) error { return nil })
	wantCode(t, err, ferry.ENOTFOUND)
}
