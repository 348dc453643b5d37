package main

import (
	"flag"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	pipelineexp "github.com/ferrymigrate/ferry/pipeline"
)

// pipelineFlags say where pipeline runs publish their datasets. The S3
// server of s3://bucket/prefix sink locations is the one of --s3-endpoint
// (shared with the Redis backups); its keys come from this configuration
// only, never from the API.
type pipelineFlags struct {
	dir         string
	allowedDirs listFlag
	compression string
}

func (p *pipelineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.dir, "dataset-dir", "", "directory of pipeline datasets (default <data-dir>/datasets)")
	fs.Var(&p.allowedDirs, "dataset-allowed-dirs", "further local directories a pipeline's sink.location may name (comma separated)")
	fs.StringVar(&p.compression, "dataset-compression", "zstd", "Parquet compression of datasets: zstd, snappy or none")
}

// config returns the exporters' configuration.
func (p *pipelineFlags) config(dataDir string, b *backupFlags, log *slog.Logger) (pipelineexp.Config, error) {
	c := pipelineexp.Config{Dir: p.dir, AllowedDirs: p.allowedDirs, Compression: p.compression, Logger: log}
	if c.Dir == "" {
		c.Dir = filepath.Join(dataDir, "datasets")
	}
	switch strings.ToLower(c.Compression) {
	case "zstd", "snappy", "none":
	default:
		return c, fmt.Errorf("--dataset-compression %q: want zstd, snappy or none", c.Compression)
	}
	if b != nil && b.s3Endpoint != "" {
		if strings.Contains(b.s3Endpoint, "://") {
			return c, fmt.Errorf("--s3-endpoint %q: give host:port (and --s3-tls), not a URL", b.s3Endpoint)
		}
		c.S3 = &pipelineexp.S3Config{Endpoint: b.s3Endpoint, AccessKey: b.s3AccessKey, SecretKey: b.s3SecretKey,
			Region: b.s3Region, TLS: b.s3TLS, PathStyle: b.s3PathStyle}
	}
	return c, nil
}
