package ferry

import (
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		from, to State
		ok       bool
	}{
		{StateCreated, StateRunning, true},
		{StateCreated, StateCompleted, false},
		{StateRunning, StatePaused, true},
		{StateRunning, StateCuttingOver, true},
		{StateRunning, StateDeleted, false},
		{StatePaused, StateRunning, true},
		{StatePaused, StateCuttingOver, false},
		{StateCuttingOver, StateCompleted, true},
		{StateCuttingOver, StateExpired, false},
		{StateCuttingOver, StateReleasing, true}, // after the cutover step (reverse sync runs until release)
		{StateCompleted, StateRunning, false},
		{StateCompleted, StateReleasing, true},
		{StateFailed, StateRunning, true},
		{StateExpired, StateRunning, false},
		{StateReleasing, StateReleased, true},
		{StateReleased, StateRunning, false},
		{StateDeleted, StateRunning, false},
	}
	for _, tt := range tests {
		m := &Migration{ID: "x", State: tt.from}
		err := m.Transition(tt.to, now)
		if (err == nil) != tt.ok {
			t.Errorf("%s -> %s: err = %v, want ok=%v", tt.from, tt.to, err, tt.ok)
		}
		if err != nil {
			if ErrorCode(err) != ECONFLICT {
				t.Errorf("%s -> %s: code %q, want conflict", tt.from, tt.to, ErrorCode(err))
			}
			if m.State != tt.from {
				t.Errorf("state changed on illegal transition")
			}
		} else if m.State != tt.to {
			t.Errorf("state = %s, want %s", m.State, tt.to)
		}
	}
}

func TestTransitionSideEffects(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	lag := int64(3)
	m := &Migration{State: StateRunning, Lease: &Lease{AgentID: "a"}, LagSeconds: &lag}
	if err := m.Transition(StateCompleted, now); err != nil {
		t.Fatal(err)
	}
	if m.Lease != nil || m.LagSeconds != nil || m.FinishedAt == nil || !m.FinishedAt.Equal(now) {
		t.Fatalf("completed job keeps lease/lag or lacks finish time: %+v", m)
	}
}

func TestInitSteps(t *testing.T) {
	tests := []struct {
		modes Modes
		want  []StepName
	}{
		{Modes{Full: true}, []StepName{StepPrecheck, StepFull}},
		{Modes{Schema: true, Full: true, Incremental: true, Verify: true},
			[]StepName{StepPrecheck, StepSchema, StepFull, StepIncremental, StepCutover, StepVerify}},
		{Modes{Full: true, Incremental: true, ReverseIncremental: true},
			[]StepName{StepPrecheck, StepFull, StepIncremental, StepCutover, StepReverseIncremental}},
	}
	for _, tt := range tests {
		m := &Migration{Modes: tt.modes}
		m.InitSteps()
		if len(m.Steps) != len(tt.want) {
			t.Fatalf("%+v: steps %v, want %v", tt.modes, m.Steps, tt.want)
		}
		for i, s := range m.Steps {
			if s.Name != tt.want[i] || s.State != StepPending {
				t.Errorf("%+v: step %d = %s/%s, want %s/pending", tt.modes, i, s.Name, s.State, tt.want[i])
			}
		}
	}
}

func TestReadinessAndDeadline(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	m := &Migration{State: StateRunning, CurrentStep: StepIncremental}
	m.UpdateReadiness(now)
	if m.ReadyForCutover || m.CutoverDeadline != nil {
		t.Fatal("ready without a lag")
	}
	lag := int64(30)
	m.LagSeconds = &lag
	m.UpdateReadiness(now)
	if m.ReadyForCutover {
		t.Fatal("ready with lag 30s over the default 5s threshold")
	}
	lag = 2
	m.UpdateReadiness(now)
	if !m.ReadyForCutover || m.CutoverDeadline == nil || !m.CutoverDeadline.Equal(now.Add(120*time.Hour)) {
		t.Fatalf("ready=%v deadline=%v, want ready with a 120h deadline", m.ReadyForCutover, m.CutoverDeadline)
	}
	// The window does not restart when readiness flaps.
	later := now.Add(time.Hour)
	lag = 60
	m.UpdateReadiness(later)
	lag = 1
	m.UpdateReadiness(later)
	if !m.CutoverDeadline.Equal(now.Add(120 * time.Hour)) {
		t.Fatalf("deadline moved to %v", m.CutoverDeadline)
	}
	if err := m.ExtendCutover(24*time.Hour, later); err != nil {
		t.Fatal(err)
	}
	if !m.CutoverDeadline.Equal(now.Add(144 * time.Hour)) {
		t.Fatalf("extended deadline %v", m.CutoverDeadline)
	}
	m2 := &Migration{}
	if err := m2.ExtendCutover(time.Hour, now); ErrorCode(err) != ECONFLICT {
		t.Fatalf("extend without deadline: %v", err)
	}
}

func TestMigrationValidate(t *testing.T) {
	ok := func() *Migration {
		return &Migration{ProjectID: NewID(), Engine: KindRedis,
			Source: Endpoint{Kind: KindRedis, Addrs: []string{"127.0.0.1:6379"}},
			Target: Endpoint{Kind: KindRedis, Addrs: []string{"127.0.0.1:6380"}},
			Modes:  Modes{Full: true}}
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid job: %v", err)
	}
	tests := []struct {
		name  string
		edit  func(m *Migration)
		field string
	}{
		{"bad project", func(m *Migration) { m.ProjectID = "nope" }, "projectId"},
		{"unknown engine", func(m *Migration) { m.Engine = "oracle" }, "engine"},
		{"no target addr", func(m *Migration) { m.Target.Addrs = nil }, "target.addrs"},
		{"kind mismatch", func(m *Migration) { m.Source.Kind = KindMySQL }, "source.kind"},
		{"no modes", func(m *Migration) { m.Modes = Modes{} }, "modes"},
		{"reverse without incr", func(m *Migration) { m.Modes.ReverseIncremental = true }, "modes.reverseIncremental"},
		{"resume mode", func(m *Migration) { m.Options.ResumeMode = "sometimes" }, "options.resumeMode"},
		{"importance", func(m *Migration) { m.Importance = "URGENT" }, "importance"},
		{"bandwidth", func(m *Migration) { m.Options.BandwidthLimitMB = -1 }, "options.bandwidthLimitMb"},
	}
	for _, tt := range tests {
		m := ok()
		tt.edit(m)
		err := m.Validate()
		if err == nil {
			err = m.ValidateSource() // the engines' Check calls it
		}
		e := AsError(err)
		if e == nil || e.Code != EINVALID || e.Field != tt.field {
			t.Errorf("%s: err = %v, want invalid on %s", tt.name, err, tt.field)
		}
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	m := &Migration{Source: Endpoint{Password: "s3cret", Options: map[string]string{"sslKeyPassword": "x", "db": "0"}}, Target: Endpoint{Password: "t0p"}}
	r := m.Redacted()
	if r.Source.Password != "" || r.Target.Password != "" || r.Source.Options["sslKeyPassword"] != "" || r.Source.Options["db"] != "0" {
		t.Fatalf("redacted copy: %+v", r)
	}
	if m.Source.Password != "s3cret" || m.Source.Options["sslKeyPassword"] != "x" {
		t.Fatal("Redacted changed the original")
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID()
		if !ValidID(id) || seen[id] {
			t.Fatalf("bad or duplicate id %q", id)
		}
		seen[id] = true
	}
	for _, bad := range []string{"", "32B6E34B3D91647ABB20E7B8", "32b6e34b3d91647abb20e7b", "32b6e34b3d91647abb20e7b8a", "zzb6e34b3d91647abb20e7b8"} {
		if ValidID(bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
}

func TestRoleAccess(t *testing.T) {
	org, other := NewID(), NewID()
	proj := &Project{ID: NewID(), OrgID: org}
	tests := []struct {
		p    *Principal
		want Access
	}{
		{&Principal{OrgID: org, Role: RoleOrgOwner}, AccessOwner},
		{&Principal{OrgID: org, Role: RoleOrgMember}, AccessWrite},
		{&Principal{OrgID: org, Role: RoleOrgReadOnly}, AccessRead},
		{&Principal{OrgID: org, Role: RoleGroupOwner, ProjectID: proj.ID}, AccessWrite},
		{&Principal{OrgID: org, Role: RoleGroupReadOnly, ProjectID: proj.ID}, AccessRead},
		{&Principal{OrgID: org, Role: RoleGroupOwner, ProjectID: NewID()}, AccessNone},
		{&Principal{OrgID: other, Role: RoleOrgOwner}, AccessNone},
		{SystemPrincipal, AccessOwner},
		{nil, AccessNone},
	}
	for i, tt := range tests {
		if got := tt.p.AccessTo(proj); got != tt.want {
			t.Errorf("%d: access %v, want %v", i, got, tt.want)
		}
	}
}

func TestAPIKeySecret(t *testing.T) {
	k := &APIKey{PublicKey: "abcd1234"}
	k.SetSecret("priv")
	if !k.CheckSecret("priv") || k.CheckSecret("Priv") || k.CheckSecret("") {
		t.Fatal("CheckSecret")
	}
	// md5("abcd1234:ferry:priv")
	if len(k.DigestHA1) != 32 || k.SecretHash == "priv" {
		t.Fatalf("hashes %q %q", k.DigestHA1, k.SecretHash)
	}
}

func TestRetention(t *testing.T) {
	from := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		r    RetentionPolicy
		want time.Time
	}{
		{RetentionPolicy{Units: "DAYS", Value: 2}, time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)},
		{RetentionPolicy{Units: "WEEKS", Value: 1}, time.Date(2026, 2, 7, 0, 0, 0, 0, time.UTC)},
		{RetentionPolicy{Units: "MONTHS", Value: 1}, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		if got := tt.r.DeletionDate(from); !got.Equal(tt.want) {
			t.Errorf("%+v: %v, want %v", tt.r, got, tt.want)
		}
	}
	if err := (&RetentionPolicy{Units: "YEARS", Value: 1}).Validate("p"); ErrorCode(err) != EINVALID {
		t.Error("YEARS accepted")
	}
}
