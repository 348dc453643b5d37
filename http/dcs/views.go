package dcs

import (
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/engine/redis/config"
)

// Status maps a job to DCS's task status (the seed's enum, with its
// documented misspelling INCRMIGEATING):
//
//	created                      -> RUNNING (DCS: "pending configuration")
//	running, backup import       -> MIGRATING
//	running in precheck/schema/full -> FULLMIGRATING
//	running in incremental       -> INCRMIGEATING
//	running in cutover/verify    -> MIGRATING
//	cutting_over                 -> MIGRATING
//	paused                       -> TERMINATED (stopped; DCS can restart it)
//	expired                      -> TERMINATED (sync ended without cutover)
//	releasing                    -> TERMINATING
//	completed                    -> SUCCESS
//	failed in precheck           -> FAILED (the task could not be set up)
//	failed in a data step        -> MIGRATION_FAILED
//	released, deleted            -> RELEASED
func Status(m *ferry.Migration) string {
	switch m.State {
	case ferry.StateCreated:
		return "RUNNING"
	case ferry.StateRunning:
		if config.IsBackupImport(m) {
			return "MIGRATING"
		}
		switch m.CurrentStep {
		case ferry.StepPrecheck, ferry.StepSchema, ferry.StepFull, "":
			return "FULLMIGRATING"
		case ferry.StepIncremental, ferry.StepReverseIncremental:
			return "INCRMIGEATING"
		}
		return "MIGRATING"
	case ferry.StateCuttingOver:
		return "MIGRATING"
	case ferry.StatePaused, ferry.StateExpired:
		return "TERMINATED"
	case ferry.StateReleasing:
		return "TERMINATING"
	case ferry.StateCompleted:
		return "SUCCESS"
	case ferry.StateFailed:
		if m.CurrentStep == ferry.StepPrecheck {
			return "FAILED"
		}
		return "MIGRATION_FAILED"
	case ferry.StateReleased, ferry.StateDeleted:
		return "RELEASED"
	}
	return "RUNNING"
}

// instanceStatus is an instance's task_status: RUNNING while the job's data
// path runs, else the task's status.
func instanceStatus(m *ferry.Migration) string {
	if m.State.Active() {
		return "RUNNING"
	}
	return Status(m)
}

// timeLayout is DCS's time format ("2019/10/22 14:44:30"), in UTC.
const timeLayout = "2006/01/02 15:04:05"

func dcsTime(t *time.Time) *string {
	if t == nil || t.IsZero() {
		return nil
	}
	s := t.UTC().Format(timeLayout)
	return &s
}

func migrationType(m *ferry.Migration) string {
	if t := m.Labels[labelMigrationType]; t != "" {
		return t
	}
	if config.IsBackupImport(m) {
		return typeBackupImport
	}
	return typeOnline
}

// migrationMethod is "" for a task not configured yet (an online task made
// by CreateOnlineMigrationTask).
func migrationMethod(m *ferry.Migration) string {
	if m.Draft() {
		return ""
	}
	if m.Modes.Incremental {
		return methodIncr
	}
	return methodFull
}

// instanceView is DCS's Source/TargetInstanceBody, without the password.
type instanceView struct {
	Addrs        string `json:"addrs"`
	TaskStatus   string `json:"task_status"`
	ID           string `json:"id"`
	IP           string `json:"ip"`
	Port         string `json:"port"`
	Name         string `json:"name"`
	ProxyMultiDB bool   `json:"proxy_multi_db"`
	DB           string `json:"db"`
}

func instanceOf(m *ferry.Migration, e ferry.Endpoint, idKey, nameKey, multiKey string) *instanceView {
	if len(e.Addrs) == 0 && e.Name == "" {
		return nil
	}
	v := &instanceView{
		Addrs:        strings.Join(e.Addrs, ","),
		TaskStatus:   instanceStatus(m),
		ID:           m.Labels[idKey],
		Name:         m.Labels[nameKey],
		ProxyMultiDB: m.Labels[multiKey] == "true",
		DB:           e.Database,
	}
	if v.ID == "" {
		v.ID = e.ID
	}
	if v.Name == "" {
		v.Name = e.Name
	}
	if len(e.Addrs) > 0 {
		if host, port, err := net.SplitHostPort(e.Addrs[0]); err == nil {
			v.IP, v.Port = host, port
		}
	}
	return v
}

// backupFilesView is DCS's BackupFilesBody.
type backupFilesView struct {
	FileSource string     `json:"file_source"`
	BucketName string     `json:"bucket_name"`
	Files      []fileBody `json:"files"`
	BackupID   string     `json:"backup_id"`
}

func backupFilesOf(m *ferry.Migration) *backupFilesView {
	if !config.IsBackupImport(m) {
		return nil
	}
	b := config.BackupOf(m.Options.Extra)
	v := &backupFilesView{FileSource: b.FileSource, BucketName: b.Bucket, BackupID: b.ID, Files: []fileBody{}}
	for _, f := range b.Files {
		fb := fileBody{FileName: f.Name, UpdateAt: f.UpdateAt}
		if f.Size >= 0 {
			fb.Size = flexString(strconv.FormatInt(f.Size, 10))
		}
		v.Files = append(v.Files, fb)
	}
	return v
}

// taskView is the seed's task, every field, in its order of the table.
type taskView struct {
	TaskID                string           `json:"task_id"`
	TaskName              string           `json:"task_name"`
	Description           string           `json:"description"`
	Status                string           `json:"status"`
	MigrationType         string           `json:"migration_type"`
	MigrationMethod       string           `json:"migration_method"`
	EcsTenantPrivateIP    string           `json:"ecs_tenant_private_ip"`
	BackupFiles           *backupFilesView `json:"backup_files"`
	NetworkType           string           `json:"network_type"`
	SourceInstance        *instanceView    `json:"source_instance"`
	TargetInstance        *instanceView    `json:"target_instance"`
	CreatedAt             *string          `json:"created_at"`
	UpdatedAt             *string          `json:"updated_at"`
	ReleasedAt            *string          `json:"released_at"`
	Version               string           `json:"version"`
	ResumeMode            string           `json:"resume_mode"`
	SupportedFeatures     []string         `json:"supported_features"`
	TenantVpcID           string           `json:"tenant_vpc_id"`
	TenantSubnetID        string           `json:"tenant_subnet_id"`
	TenantSecurityGroupID string           `json:"tenant_security_group_id"`
	BandwidthLimitMB      string           `json:"bandwidth_limit_mb"`
	TaskStatus            string           `json:"task_status"`
}

// taskOf maps a job to the seed's task. ecs_tenant_private_ip is what the
// job's label holds (ferry's agents are not ECS instances: "" unless set);
// version is ferry's version; supported_features see supportedFeatures;
// bandwidth_limit_mb is "" when unlimited; task_status equals status
// (ferry's exchange-ip is its cutover and swaps no addresses, so never
// EXCHANGING).
func taskOf(m *ferry.Migration) taskView {
	v := taskView{
		TaskID:                m.ID,
		TaskName:              m.Name,
		Description:           m.Description,
		Status:                Status(m),
		MigrationType:         migrationType(m),
		MigrationMethod:       migrationMethod(m),
		EcsTenantPrivateIP:    m.Labels[labelEcsTenantPrivate],
		BackupFiles:           backupFilesOf(m),
		NetworkType:           m.Labels[labelNetworkType],
		SourceInstance:        instanceOf(m, m.Source, labelSourceID, labelSourceName, labelSourceMultiDB),
		TargetInstance:        instanceOf(m, m.Target, labelTargetID, labelTargetName, labelTargetMultiDB),
		CreatedAt:             dcsTime(&m.CreatedAt),
		UpdatedAt:             dcsTime(&m.UpdatedAt),
		ReleasedAt:            dcsTime(m.ReleasedAt),
		Version:               ferry.Version,
		ResumeMode:            string(m.Options.ResumeMode),
		SupportedFeatures:     supportedFeatures(m),
		TenantVpcID:           m.Labels[labelVpcID],
		TenantSubnetID:        m.Labels[labelSubnetID],
		TenantSecurityGroupID: m.Labels[labelSecurityGroupID],
		TaskStatus:            Status(m),
	}
	if m.Options.BandwidthLimitMB > 0 {
		v.BandwidthLimitMB = strconv.Itoa(m.Options.BandwidthLimitMB)
	}
	return v
}

// listItem is DCS's MigrationTaskList.
type listItem struct {
	TaskID              string  `json:"task_id"`
	TaskName            string  `json:"task_name"`
	Status              string  `json:"status"`
	MigrationType       string  `json:"migration_type"`
	MigrationMethod     string  `json:"migration_method"`
	EcsTenantPrivateIP  string  `json:"ecs_tenant_private_ip"`
	DataSource          string  `json:"data_source"`
	SourceInstanceName  string  `json:"source_instance_name"`
	SourceInstanceID    string  `json:"source_instance_id"`
	TargetInstanceAddrs string  `json:"target_instance_addrs"`
	TargetInstanceName  string  `json:"target_instance_name"`
	TargetInstanceID    string  `json:"target_instance_id"`
	CreatedAt           *string `json:"created_at"`
	// The SDK model's later fields.
	Description            string   `json:"description"`
	SourceInstanceStatus   string   `json:"source_instance_status"`
	TargetInstanceStatus   string   `json:"target_instance_status"`
	SourceInstanceSubnetID string   `json:"source_instance_subnet_id"`
	TargetInstanceSubnetID string   `json:"target_instance_subnet_id"`
	SourceInstanceSpecCode string   `json:"source_instance_spec_code"`
	TargetInstanceSpecCode string   `json:"target_instance_spec_code"`
	ErrorMessage           string   `json:"error_message"`
	ReleasedAt             *string  `json:"released_at"`
	Version                string   `json:"version"`
	ResumeMode             string   `json:"resume_mode"`
	SupportedFeatures      []string `json:"supported_features"`
}

// listItemOf maps a job to a list item; data_source is the source's
// host:port list, or the bucket name (or backup id) of a backup import.
// The instance statuses are the instances' task_status (RUNNING while the
// data path runs); subnet ids are the task's tenant subnet (ferry's
// instances have none of their own) and spec codes "" (ferry knows no DCS
// flavours); error_message is the job's failure reason ("" unless it
// failed).
func listItemOf(m *ferry.Migration) listItem {
	v := listItem{
		TaskID:              m.ID,
		TaskName:            m.Name,
		Status:              Status(m),
		MigrationType:       migrationType(m),
		MigrationMethod:     migrationMethod(m),
		EcsTenantPrivateIP:  m.Labels[labelEcsTenantPrivate],
		DataSource:          strings.Join(m.Source.Addrs, ","),
		SourceInstanceName:  m.Labels[labelSourceName],
		SourceInstanceID:    m.Labels[labelSourceID],
		TargetInstanceAddrs: strings.Join(m.Target.Addrs, ","),
		TargetInstanceName:  m.Labels[labelTargetName],
		TargetInstanceID:    m.Labels[labelTargetID],
		CreatedAt:           dcsTime(&m.CreatedAt),

		Description:            m.Description,
		SourceInstanceSubnetID: m.Labels[labelSubnetID],
		TargetInstanceSubnetID: m.Labels[labelSubnetID],
		ErrorMessage:           failureReason(m),
		ReleasedAt:             dcsTime(m.ReleasedAt),
		Version:                ferry.Version,
		ResumeMode:             string(m.Options.ResumeMode),
		SupportedFeatures:      supportedFeatures(m),
	}
	if len(m.Source.Addrs) > 0 || m.Source.Name != "" {
		v.SourceInstanceStatus = instanceStatus(m)
	}
	if len(m.Target.Addrs) > 0 || m.Target.Name != "" {
		v.TargetInstanceStatus = instanceStatus(m)
	}
	if config.IsBackupImport(m) {
		b := config.BackupOf(m.Options.Extra)
		v.DataSource = b.Bucket
		if v.DataSource == "" {
			v.DataSource = b.ID
		}
	}
	return v
}

// statsView is DCS's ShowMigrationTaskStatsResponse (strings, as DCS sends
// them) plus ferry's counters under documented names:
//
//	full_migration_progress  percent of the full copy ("0".."100", 2 decimals at most)
//	offset                   bytes of the replication stream applied by the incremental step
//	source_dbsize            keys on the source (the full copy's total)
//	target_dbsize            keys written to the target by the full copy
//	target_input_kbps        null: ferry does not measure the target's input rate
//	target_ops               commands per second the incremental step applies ("0" when not syncing)
//	is_migrating             the data path runs (running or cutting over)
//	keys_migrated, keys_total, bytes_migrated, bytes_total  the full copy's counters
//	commands_applied         commands applied by the incremental step
//	lag_seconds              replication lag while syncing, else null
//	lag_bytes                replication backlog in bytes
//	source_state             after cutover only: write_paused (ferry's CLIENT PAUSE WRITE holds) or writable
//	source_paused_until      after cutover only: when the source's write pause ends by itself
//	cutover_summary          after cutover only: what cutover left on the source, in words
type statsView struct {
	FullMigrationProgress string  `json:"full_migration_progress"`
	Offset                string  `json:"offset"`
	SourceDBSize          string  `json:"source_dbsize"`
	TargetDBSize          string  `json:"target_dbsize"`
	TargetInputKbps       *string `json:"target_input_kbps"`
	TargetOps             string  `json:"target_ops"`
	IsMigrating           bool    `json:"is_migrating"`
	KeysMigrated          int64   `json:"keys_migrated"`
	KeysTotal             int64   `json:"keys_total"`
	BytesMigrated         int64   `json:"bytes_migrated"`
	BytesTotal            int64   `json:"bytes_total"`
	CommandsApplied       int64   `json:"commands_applied"`
	LagSeconds            *int64  `json:"lag_seconds"`
	LagBytes              int64   `json:"lag_bytes"`
	SourceState           string  `json:"source_state,omitempty"`
	SourcePausedUntil     *string `json:"source_paused_until,omitempty"`
	CutoverSummary        string  `json:"cutover_summary,omitempty"`
}

func statsOf(m *ferry.Migration) statsView {
	var full, incr ferry.Step
	if s := m.Step(ferry.StepFull); s != nil {
		full = *s
	}
	if s := m.Step(ferry.StepIncremental); s != nil {
		incr = *s
	}
	v := statsView{
		FullMigrationProgress: strconv.FormatFloat(math.Round(clamp(full.Progress)*100)/100, 'f', -1, 64),
		Offset:                strconv.FormatInt(incr.Counters.Bytes, 10),
		SourceDBSize:          strconv.FormatInt(full.Counters.Total, 10),
		TargetDBSize:          strconv.FormatInt(full.Counters.Done, 10),
		TargetOps:             "0",
		IsMigrating:           m.State.Active(),
		KeysMigrated:          full.Counters.Done,
		KeysTotal:             full.Counters.Total,
		BytesMigrated:         full.Counters.Bytes,
		BytesTotal:            full.Counters.BytesTotal,
		CommandsApplied:       incr.Counters.Ops,
		LagSeconds:            m.LagSeconds,
		LagBytes:              incr.Counters.LagBytes,
	}
	if c := m.Cutover; c != nil && c.SourceWriteBlock != "" {
		now := time.Now()
		v.SourceState, v.CutoverSummary = c.SourceState(now), c.Summary(now)
		if c.SourceBlocked(now) && c.SourceBlockedUntil != nil {
			v.SourcePausedUntil = dcsTime(c.SourceBlockedUntil)
		}
	}
	if m.State.Active() && incr.State == ferry.StepRunning {
		v.TargetOps = strconv.FormatFloat(math.Round(incr.Counters.RatePerSec*100)/100, 'f', -1, 64)
	}
	return v
}

func clamp(p float64) float64 {
	if math.IsNaN(p) || p < 0 {
		return 0
	}
	if p > 100 {
		return 100
	}
	return p
}

// failureReason is a failed job's reason: its error, else the failed
// step's message.
func failureReason(m *ferry.Migration) string {
	if m.State != ferry.StateFailed {
		return ""
	}
	if m.Error != "" {
		return m.Error
	}
	for _, st := range m.Steps {
		if st.State == ferry.StepFailed && st.Message != "" {
			return string(st.Name) + ": " + st.Message
		}
	}
	return "the migration failed"
}

// supportedFeatures names the optional DCS operations the task supports in
// ferry: "exchange_ip" (ferry's cutover) for an incremental migration. It
// never lists "rollback_ip": the Redis engine has no reverse sync.
func supportedFeatures(m *ferry.Migration) []string {
	if m.Modes.Incremental {
		return []string{"exchange_ip"}
	}
	return []string{}
}
