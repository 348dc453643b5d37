package testharness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// ferretMu serializes ferretdb.New, which is not safe to call concurrently
// (it sets package-level state).
var ferretMu sync.Mutex

// FerretDBOplogSize is the size in bytes of the capped local.oplog.rs that
// StartFerretDB creates (FerretDB v1 writes an oplog only once that
// collection exists; the embedded server never trims it).
const FerretDBOplogSize = 1 << 30

// StartFerretDB runs FerretDB v1.24 embedded in the test process, with the
// SQLite handler over a fresh temporary directory (its path free of '#',
// which the SQLite URL cannot carry), listening on a random loopback port.
// It creates the capped collection local.oplog.rs so that FerretDB writes
// an oplog, as a FerretDB user enabling change capture does. It returns the
// server's MongoDB URI (mongodb://127.0.0.1:PORT/); t.Cleanup stops it and
// removes its files.
func StartFerretDB(t testing.TB) (uri string) {
	t.Helper()
	dir, err := tempDir("ferretdb")
	if err != nil {
		t.Fatalf("testharness: %v", err)
	}
	if strings.ContainsAny(dir, "#?") {
		t.Fatalf("testharness: temp dir %q holds a character a SQLite URL cannot carry", dir)
	}
	logLevel := slog.LevelError
	if os.Getenv("FERRY_TEST_FERRETDB_LOG") != "" {
		logLevel = slog.LevelDebug
	}
	cfg := &ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
	}
	ferretMu.Lock()
	f, err := ferretdb.New(cfg)
	ferretMu.Unlock()
	if err != nil {
		_ = os.RemoveAll(dir)
		t.Fatalf("testharness: start FerretDB: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		_ = os.RemoveAll(dir)
	})
	// MongoDBURI needs the listener up; Run starts it.
	uriCh := make(chan string, 1)
	go func() { uriCh <- f.MongoDBURI() }()
	select {
	case uri = <-uriCh:
	case <-time.After(30 * time.Second):
		t.Fatalf("testharness: FerretDB did not start listening")
	}
	if err := createOplog(uri); err != nil {
		t.Fatalf("testharness: FerretDB at %s: %v", uri, err)
	}
	return uri
}

func createOplog(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var c *mongo.Client
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		c, err = mongo.Connect(options.Client().ApplyURI(uri).SetDirect(true))
		if err == nil {
			if err = c.Ping(ctx, nil); err == nil {
				break
			}
			_ = c.Disconnect(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not reachable: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer c.Disconnect(context.Background())
	err = c.Database("local").RunCommand(ctx, bson.D{{Key: "create", Value: "oplog.rs"}, {Key: "capped", Value: true}, {Key: "size", Value: int64(FerretDBOplogSize)}}).Err()
	if err != nil {
		return fmt.Errorf("create local.oplog.rs: %w", err)
	}
	return nil
}
