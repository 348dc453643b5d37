package dcs

import (
	"context"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dcsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/dcs/v2/model"
	goredis "github.com/redis/go-redis/v9"

	"github.com/ferrymigrate/ferry"
	"github.com/ferrymigrate/ferry/internal/testharness"
)

// writeKeys writes n keys of every common type into db of c.
func writeKeys(t *testing.T, c *goredis.Client, prefix string, n int) {
	t.Helper()
	ctx := context.Background()
	pipe := c.Pipeline()
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("%s:%d", prefix, i)
		switch i % 6 {
		case 0:
			pipe.Set(ctx, k+":str", strings.Repeat("v", i%97), 0)
		case 1:
			pipe.HSet(ctx, k+":hash", "a", i, "b", "x\x00y")
		case 2:
			pipe.RPush(ctx, k+":list", "1", "2", i)
		case 3:
			pipe.SAdd(ctx, k+":set", "m1", i)
		case 4:
			pipe.ZAdd(ctx, k+":zset", goredis.Z{Score: float64(i) / 3, Member: "z"}, goredis.Z{Score: -1, Member: "y"})
		case 5:
			pipe.Set(ctx, k+":ttl", i, time.Hour)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// value reads a key's type and contents in a comparable form.
func value(ctx context.Context, c *goredis.Client, k string) (string, error) {
	typ, err := c.Type(ctx, k).Result()
	if err != nil {
		return "", err
	}
	var v any
	switch typ {
	case "string":
		v, err = c.Get(ctx, k).Result()
	case "hash":
		var h map[string]string
		h, err = c.HGetAll(ctx, k).Result()
		keys := make([]string, 0, len(h))
		for f, x := range h {
			keys = append(keys, f+"="+x)
		}
		sort.Strings(keys)
		v = keys
	case "list":
		v, err = c.LRange(ctx, k, 0, -1).Result()
	case "set":
		var s []string
		s, err = c.SMembers(ctx, k).Result()
		sort.Strings(s)
		v = s
	case "zset":
		v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
	case "none":
		v = nil
	default:
		return "", fmt.Errorf("key %q: type %s not compared", k, typ)
	}
	if err != nil {
		return "", err
	}
	ttl, err := c.PTTL(ctx, k).Result()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s %q ttl=%v", typ, v, ttl > 0), nil
}

// compareKeyByKey compares every key of src and dst, independently of
// ferry's verification.
func compareKeyByKey(t *testing.T, src, dst *goredis.Client) int {
	t.Helper()
	ctx := context.Background()
	keys := func(c *goredis.Client) []string {
		var out []string
		it := c.Scan(ctx, 0, "*", 1000).Iterator()
		for it.Next(ctx) {
			out = append(out, it.Val())
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(out)
		return out
	}
	sk, dk := keys(src), keys(dst)
	if len(sk) != len(dk) {
		t.Fatalf("source has %d keys, target %d", len(sk), len(dk))
	}
	for i, k := range sk {
		if dk[i] != k {
			t.Fatalf("key %d: source %q, target %q", i, k, dk[i])
		}
		sv, err := value(ctx, src, k)
		if err != nil {
			t.Fatal(err)
		}
		dv, err := value(ctx, dst, k)
		if err != nil {
			t.Fatal(err)
		}
		if sv != dv {
			t.Fatalf("key %q: source %s, target %s", k, sv, dv)
		}
	}
	return len(sk)
}

// TestSDKRedisMigrationExchangeIP migrates a live Redis through the SDK's
// online-migration flow (create the task, then configure it), with data
// written before and during the sync, cuts over with exchange-ip and checks
// the target equals the source (ferry's verification and a key-by-key
// comparison here).
func TestSDKRedisMigrationExchangeIP(t *testing.T) {
	e := newSDKEnv(t)
	src := testharness.StartRedis(t)
	dst := testharness.StartRedis(t)
	srcC := goredis.NewClient(&goredis.Options{Addr: src})
	dstC := goredis.NewClient(&goredis.Options{Addr: dst})
	defer srcC.Close()
	defer dstC.Close()
	writeKeys(t, srcC, "before", 6000)
	c := e.client(e.pub, e.priv)

	co, err := c.CreateOnlineMigrationTask(&dcsmodel.CreateOnlineMigrationTaskRequest{Body: &dcsmodel.CreateOnlineMigrationTaskBody{
		Name: "live-move", Description: ptr("two-step"), VpcId: "vpc-1", SubnetId: "subnet-1", SecurityGroupId: "sg-1"}})
	if err != nil {
		t.Fatal(err)
	}
	id := val(co.InstanceId)
	if !ferry.ValidID(id) {
		t.Fatalf("create online: %+v", co)
	}
	// Not configured yet: no endpoints, not run.
	if m, err := e.store.GetMigration(context.Background(), id); err != nil || !m.Draft() || m.Lease != nil {
		t.Fatalf("draft: %+v %v", m, err)
	}
	if dr, err := c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id}); err != nil || dr.Status == nil || dr.Status.Value() != "RUNNING" ||
		val(dr.TaskName) != "live-move" || val(dr.TenantSubnetId) != "subnet-1" || dr.SourceInstance != nil || dr.TargetInstance != nil {
		t.Fatalf("show draft: %+v %v", dr, err)
	}
	// exchange-ip before the task is configured: a DCS state error.
	_, err = c.ExchangeInstanceIp(&dcsmodel.ExchangeInstanceIpRequest{TaskId: id})
	sdkError(t, err, 400, CodeStateConflict, "is not configured yet")
	set, err := c.SetOnlineMigrationTask(&dcsmodel.SetOnlineMigrationTaskRequest{TaskId: id, Body: &dcsmodel.SetOnlineMigrationTaskBody{
		MigrationMethod:  dcsmodel.GetSetOnlineMigrationTaskBodyMigrationMethodEnum().INCREMENTAL_MIGRATION,
		ResumeMode:       dcsmodel.GetSetOnlineMigrationTaskBodyResumeModeEnum().AUTO,
		BandwidthLimitMb: ptr("100"),
		SourceInstance:   &dcsmodel.ConfigMigrationInstanceBody{Addrs: ptr(src)},
		TargetInstance:   &dcsmodel.ConfigMigrationInstanceBody{Addrs: ptr(dst)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if val(set.Id) != id || val(set.Name) != "live-move" || set.Status == nil {
		t.Fatalf("set: %+v", set)
	}
	// Configuring twice is a DCS state error.
	_, err = c.SetOnlineMigrationTask(&dcsmodel.SetOnlineMigrationTaskRequest{TaskId: id, Body: &dcsmodel.SetOnlineMigrationTaskBody{
		MigrationMethod: dcsmodel.GetSetOnlineMigrationTaskBodyMigrationMethodEnum().FULL_AMOUNT_MIGRATION,
		ResumeMode:      dcsmodel.GetSetOnlineMigrationTaskBodyResumeModeEnum().MANUAL,
		SourceInstance:  &dcsmodel.ConfigMigrationInstanceBody{Addrs: ptr(src)},
		TargetInstance:  &dcsmodel.ConfigMigrationInstanceBody{Addrs: ptr(dst)},
	}})
	sdkError(t, err, 400, CodeStateConflict, "already configured")

	// Writes during the copy and the sync.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var written int
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		r := rand.New(rand.NewSource(1))
		for i := 0; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			k := fmt.Sprintf("during:%d", r.Intn(3000))
			var err error
			switch i % 5 {
			case 0:
				err = srcC.Set(ctx, k+":str", i, 0).Err()
			case 1:
				err = srcC.HIncrBy(ctx, k+":hash", "n", 1).Err()
			case 2:
				err = srcC.LPush(ctx, k+":list", i).Err()
			case 3:
				err = srcC.Del(ctx, fmt.Sprintf("before:%d:str", r.Intn(6000))).Err()
			case 4:
				err = srcC.ZIncrBy(ctx, k+":zset", 1.5, "m").Err()
			}
			if err != nil {
				t.Error(err)
				return
			}
			if i%200 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	m := e.wait(id, "incremental sync", 90*time.Second, syncing)
	// Keep writing into the sync for a while, then let it catch up.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if m, err = e.store.GetMigration(context.Background(), id); err != nil {
			t.Fatal(err)
		}
		if inc := m.Step(ferry.StepIncremental); inc != nil && inc.Counters.Ops >= 2000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sync applied too little: %+v", m.Step(ferry.StepIncremental))
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	st, err := c.ShowMigrationTaskStats(&dcsmodel.ShowMigrationTaskStatsRequest{TaskId: id})
	if err != nil || !val(st.IsMigrating) || val(st.Offset) == "0" {
		t.Fatalf("stats while syncing: %+v %v", st, err)
	}

	// Cut over through the SDK.
	if _, err := c.ExchangeInstanceIp(&dcsmodel.ExchangeInstanceIpRequest{TaskId: id, Body: &dcsmodel.IpExchangeRequest{ExchangedIp: []string{"10.0.0.1", "10.0.0.2"}}}); err != nil {
		t.Fatal(err)
	}
	m = e.wait(id, "completed", 90*time.Second, func(m *ferry.Migration) bool { return m.State == ferry.StateCompleted })
	sr, err := c.ShowMigrationTask(&dcsmodel.ShowMigrationTaskRequest{TaskId: id})
	if err != nil || sr.Status == nil || sr.Status.Value() != "SUCCESS" || val(sr.TenantVpcId) != "vpc-1" || val(sr.Description) != "two-step" || val(sr.BandwidthLimitMb) != "100" {
		t.Fatalf("show: %+v %v", sr, err)
	}

	// ferry's verification ...
	v := m.Step(ferry.StepVerify)
	if v == nil || v.State != ferry.StepDone || v.Counters.Done == 0 || v.Counters.Missing+v.Counters.Extra+v.Counters.Different != 0 {
		t.Fatalf("ferry's verification: %+v", v)
	}
	// ... and an independent key-by-key comparison.
	n := compareKeyByKey(t, srcC, dstC)
	if int64(n) != v.Counters.Done {
		t.Fatalf("compared %d keys, ferry verified %d", n, v.Counters.Done)
	}
	t.Logf("%d keys equal after %d writes during the migration; %d commands applied by the sync", n, written, m.Step(ferry.StepIncremental).Counters.Ops)
}
